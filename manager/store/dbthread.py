"""The one thread a store's database work runs on.

SQLite connections stay on the thread that made them, no transaction ever spans an
``await``, and the event loop never waits on disk: every call goes to this thread. A
PostgreSQL connection the server dropped is replaced here too, by the engine
(:meth:`manager.store.engine.Engine.reconnecting`), between one call and the next.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from manager.errors import StoreError
from manager.store.engine import UNAVAILABLE, Engine

__all__ = ["DatabaseThread"]

T = TypeVar("T")


class DatabaseThread:
    """A single worker thread for one database, used from asyncio.

    Parameters:
        engine: the database's engine, which replaces a lost connection (none: calls run
            as they are).
    """

    def __init__(self, engine: Engine | None = None) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._engine = engine or Engine()

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function`` on the thread; its exceptions reach the caller as they are."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function`` on the thread.

        Raises:
            StoreError: the database could not do it (SQLite locked past ``busy_timeout``,
                read-only, disk I/O error; the PostgreSQL server gone); the message is fit
                for a user.
        """
        try:
            return await self.call(self._engine.reconnecting, function, *args, **kwargs)
        # The drivers' own errors too: a raw cursor (the poll's executemany) is not wrapped
        # by peewee, and an unavailable database must read the same whichever way it was
        # written (manager.store.engine).
        except UNAVAILABLE as error:
            reason = " ".join(str(error).split())  # psycopg's can span lines: one log line
            raise StoreError(f"the database is unavailable ({reason}); try again") from None

    def shutdown(self) -> None:
        """Stop the thread once its queued calls are done."""
        self._executor.shutdown(wait=True)
