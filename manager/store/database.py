"""One store's database: its connection, its bound tables and the one thread they live on.

Every table family of :class:`~manager.store.Store` works through the same
:class:`StoreDatabase`, so that a write touching several families (a download's change and
its notice) is one transaction on one connection, run on the one thread
(:mod:`manager.store.dbthread`) that SQLite requires and that keeps the event loop off the
disk. What differs between SQLite and PostgreSQL is :mod:`manager.store.engine`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import peewee

from manager.errors import NodeReplaced, StoreError
from manager.store.dbthread import DatabaseThread
from manager.store.engine import engine_for
from manager.store.migrations import upgrade
from manager.store.tables import Tables, bind_tables

__all__ = ["StoreDatabase", "utc_now"]

T = TypeVar("T")


def utc_now() -> datetime:
    """Now, as every stored time is: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


class StoreDatabase:
    """The connection, tables and thread one store's families share.

    Parameters:
        url: ``sqlite:////var/lib/ariabot/ariabot.db``, ``sqlite:///:memory:`` or
            ``postgresql://user:password@host:port/database``.

    Raises:
        ValueError: the URL names another engine.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = engine_for(url)
        self._thread = DatabaseThread(self._engine)
        self._database: peewee.Database | None = None
        self._bound: Tables | None = None
        self._held: tuple[str, int] | None = None

    @property
    def statements(self) -> int:
        """SQL statements sent so far, on either engine: how benchmarks and tests see the
        write cost (:mod:`manager.store.engine` says how each counts)."""
        return self._engine.statements

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function`` on the store's thread.

        Raises:
            StoreError: the database could not do it (SQLite locked past ``busy_timeout``,
                read-only, disk I/O error; the PostgreSQL server gone); the message is fit
                for a user.
        """
        return await self._thread.run(function, *args, **kwargs)

    @property
    def db(self) -> peewee.Database:
        """The connected database (on the store's thread only)."""
        if self._database is None:
            raise RuntimeError("Store.open() has not been called")
        return self._database

    @property
    def tables(self) -> Tables:
        """This store's models, bound to its own database only."""
        if self._bound is None:
            raise RuntimeError("Store.open() has not been called")
        return self._bound

    def hold(self, node: str, epoch: int) -> None:
        """Fence this store's download writes on ``node``'s ``epoch`` from now on (the
        node joined; see :meth:`check_held`)."""
        self._held = (node, epoch)

    def check_held(self) -> None:
        """Inside a write transaction, after its writes (on the store's thread): refuse it
        when this process's node no longer holds its epoch. Another node raised it: it took
        this node's unfinished downloads while this one was not heard from (frozen, cut
        off), or a newer start took its name. Nothing of the transaction is kept, so a node
        that wakes up too late announces nothing and changes no row.

        Raises:
            NodeReplaced: the epoch is another's now.
        """
        if self._held is None:
            return
        node, epoch = self._held
        if self._engine.node_epoch(self.db, node) != epoch:
            raise NodeReplaced

    async def open(self) -> None:
        """Connect, and create or migrate the schema up to
        :data:`~manager.store.migrations.SCHEMA_VERSION`.

        Raises:
            StoreError: the database cannot be opened or migrated.
        """
        try:
            await self._thread.call(self._open)
        except (peewee.PeeweeException, OSError) as error:
            where = self.url.split("@")[-1]  # never show a password of a server URL
            raise StoreError(f"cannot open the database {where}: {error}") from None

    def _open(self) -> None:
        database = self._engine.connect(self.url)
        tables = bind_tables(database)
        self._database, self._bound = database, tables
        upgrade(database, tables)

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        if self._database is not None:
            await self.run(self._database.close)
            self._database = None
        self._thread.shutdown()
