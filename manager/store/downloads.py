"""The downloads table: one row per torrent and chat, the record every layer reads.

A change of a download and the notices it calls for are written in ONE transaction
(:class:`~manager.store.outbox.Notices`, the outbox); a download that leaves the list takes
its mirror, notices and sent parts along (:meth:`Downloads.remove_rows`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol

import peewee

from manager.models import TorrentState
from manager.notices import download_notices
from manager.store.database import StoreDatabase, utc_now
from manager.store.outbox import Notices

__all__ = ["Dependent", "DownloadRecord", "Downloads", "PurgedDownload"]


@dataclass(frozen=True, slots=True)
class DownloadRecord:
    """A stored download row, detached from peewee (safe to pass between threads).

    Slotted: the manager keeps one per unfinished download, 100,000 of them at scale."""

    id: int
    info_hash: str
    chat_id: int
    user_id: int
    message_id: int | None
    name: str
    source_kind: str
    directory: str
    gid: str | None
    state: str
    total_bytes: int
    completed_bytes: int
    upload_bytes: int
    download_speed: int
    upload_speed: int
    seeders: int
    peers: int
    error: str | None
    selected_files: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    node: str | None = None
    """The node that holds it (see :class:`~manager.store.tables.Download`)."""


_UNFINISHED = tuple(state.value for state in TorrentState if not state.is_final)

_RECORD_FIELDS = tuple(f.name for f in fields(DownloadRecord))
# ``source`` is not on the record (it can be a large .torrent) but a re-add rewrites it.
_WRITABLE = (frozenset(_RECORD_FIELDS) | {"source"}) - {"id", "created_at"}


@dataclass(frozen=True)
class PurgedDownload:
    """A download :meth:`Downloads.purge_finished` removed, with its source when asked for."""

    record: DownloadRecord
    source: bytes | None = None
    """The magnet URI (``record.source_kind == "magnet"``) or the .torrent file's bytes."""


class Dependent(Protocol):
    """A table family whose rows belong to a download and go when it goes."""

    def forget_downloads(self, download_ids: list[int]) -> None:
        """Inside the removal's transaction: delete the rows of these downloads."""


_SHARED_TEXT = ("directory", "state", "source_kind", "node")
"""Columns that hold a few values over many rows: one string each, not one per row (the
manager keeps a record per unfinished download)."""


def _record(row: Mapping[str, Any]) -> DownloadRecord:
    values = {name: row[name] for name in _RECORD_FIELDS}
    for name in _SHARED_TEXT:
        if values[name] is not None:
            values[name] = sys.intern(values[name])
    return DownloadRecord(**values)


class Downloads:
    """The downloads table, used from asyncio (``store.downloads``).

    Parameters:
        database: the store's database and thread.
        notices: the outbox, written in the same transaction as a change that calls for one.
        dependents: the families whose rows a removed download takes along.
    """

    def __init__(self, database: StoreDatabase, notices: Notices,
                 dependents: Sequence[Dependent]) -> None:
        self._database = database
        self._notices = notices
        self._dependents = tuple(dependents)

    @property
    def columns(self) -> tuple[peewee.Field, ...]:
        """The record's columns (all but the source), for a select on the store's thread."""
        table = self._database.tables.download
        return tuple(getattr(table, name) for name in _RECORD_FIELDS)

    def records(self, where: peewee.Expression) -> list[DownloadRecord]:
        """On the store's thread: the rows ``where`` selects, by id."""
        table = self._database.tables.download
        rows = table.select(*self.columns).where(where).order_by(table.id).dicts()
        return [_record(row) for row in rows]

    async def create(
        self,
        *,
        info_hash: str,
        chat_id: int,
        user_id: int,
        name: str,
        source_kind: str,
        source: bytes,
        directory: str,
        state: str,
        total_bytes: int = 0,
        message_id: int | None = None,
        node: str | None = None,
    ) -> DownloadRecord:
        """Insert a download held by ``node`` and return it (with its new public id).

        Raises:
            peewee.IntegrityError: the same info-hash is already stored for this chat.
        """
        def insert() -> DownloadRecord:
            table = self._database.tables.download
            now = utc_now()
            with self._database.db.atomic():
                new_id = table.insert(
                    info_hash=info_hash, chat_id=chat_id, user_id=user_id, name=name,
                    source_kind=source_kind, source=source, directory=directory, state=state,
                    total_bytes=total_bytes, message_id=message_id, node=node,
                    created_at=now, updated_at=now,
                ).execute()
                self._database.check_held()
            return self._get(new_id)

        return await self._database.run(insert)

    def _get(self, download_id: int) -> DownloadRecord | None:
        table = self._database.tables.download
        row = table.select(*self.columns).where(table.id == download_id).dicts().first()
        return _record(row) if row else None

    async def get(self, download_id: int) -> DownloadRecord | None:
        """The download with this public id, or ``None``."""
        return await self._database.run(self._get, download_id)

    async def find(self, info_hash: str, chat_id: int) -> DownloadRecord | None:
        """The download of this torrent in this chat, or ``None``."""
        def query() -> DownloadRecord | None:
            table = self._database.tables.download
            row = (table.select(*self.columns)
                   .where((table.info_hash == info_hash) & (table.chat_id == chat_id))
                   .dicts().first())
            return _record(row) if row else None

        return await self._database.run(query)

    async def find_in_states(
        self, info_hash: str, states: Iterable[str]
    ) -> list[DownloadRecord]:
        """Downloads of this torrent, in any chat, whose state is one of ``states``."""
        wanted = list(states)

        def query() -> list[DownloadRecord]:
            table = self._database.tables.download
            rows = (table.select(*self.columns)
                    .where((table.info_hash == info_hash) & table.state.in_(wanted))
                    .dicts())
            return [_record(row) for row in rows]

        return await self._database.run(query)

    async def list(
        self,
        *,
        chat_id: int | None = None,
        states: Iterable[str] | None = None,
        limit: int | None = None,
        node: str | None = None,
    ) -> list[DownloadRecord]:
        """Downloads, newest first, optionally of one chat, in some states, of one node."""
        return await self.page(chat_id=chat_id, states=states, limit=limit, node=node)

    async def page(
        self,
        *,
        chat_id: int | None = None,
        states: Iterable[str] | None = None,
        before_id: int | None = None,
        from_id: int | None = None,
        offset: int = 0,
        limit: int | None,
        node: str | None = None,
    ) -> list[DownloadRecord]:
        """One page of downloads, newest first: at most ``limit`` rows with an id below
        ``before_id`` (a cursor: the last id of the previous page) and, given ``from_id``,
        not below it, after skipping ``offset``; given ``node``, only the ones it holds.
        Whatever the size of the list, a page costs the store ``offset + limit`` index
        entries (``downloads(chat_id, id)`` or the primary key), or the id range, not the
        whole table.
        """
        wanted = list(states) if states is not None else None

        def query() -> list[DownloadRecord]:
            table = self._database.tables.download
            select = table.select(*self.columns)
            if chat_id is not None:
                select = select.where(table.chat_id == chat_id)
            if wanted is not None:
                select = select.where(table.state.in_(wanted))
            if before_id is not None:
                select = select.where(table.id < before_id)
            if from_id is not None:
                select = select.where(table.id >= from_id)
            if node is not None:
                select = select.where(table.node == node)
            # No OFFSET clause for none: SQLite would add LIMIT -1 to an OFFSET 0.
            select = select.order_by(table.id.desc()).limit(limit).offset(offset or None)
            return [_record(row) for row in select.dicts()]

        return await self._database.run(query)

    async def state_counts(self, *, chat_id: int | None = None,
                           node: str | None = None) -> dict[str, int]:
        """How many downloads are in each state (of one chat, or all; of one node, or all),
        in one query."""
        def query() -> dict[str, int]:
            table = self._database.tables.download
            select = table.select(table.state, peewee.fn.COUNT(table.id).alias("n"))
            if chat_id is not None:
                select = select.where(table.chat_id == chat_id)
            if node is not None:
                select = select.where(table.node == node)
            return {row["state"]: row["n"] for row in select.group_by(table.state).dicts()}

        return await self._database.run(query)

    async def named(self, directory: str, name: str) -> list[DownloadRecord]:
        """Downloads in the list (any state) named ``name`` in ``directory``; which of them
        own ``directory/name`` is :meth:`manager.downloads.contents.Contents.owner`'s rule."""

        def query() -> list[DownloadRecord]:
            table = self._database.tables.download
            rows = (table.select(*self.columns)
                    .where((table.directory == directory) & (table.name == name))
                    .dicts())
            return [_record(row) for row in rows]

        return await self._database.run(query)

    async def source(self, download_id: int) -> tuple[str, bytes] | None:
        """The stored magnet URI or .torrent bytes of a download, to re-add it to aria2."""
        def query() -> tuple[str, bytes] | None:
            table = self._database.tables.download
            row = (table.select(table.source_kind, table.source)
                   .where(table.id == download_id).first())
            return (row.source_kind, bytes(row.source)) if row else None

        return await self._database.run(query)

    async def elsewhere(self, node: str, known: Sequence[int]) -> list[DownloadRecord]:
        """The chats' unfinished downloads that another node holds, or none yet, and the
        ``known`` ones whatever their state now (those that just finished), by id: what
        the front shows of the other nodes' work (:mod:`manager.nodes.elsewhere`)."""
        table = self._database.tables.download
        where = (((table.node != node) | table.node.is_null()) & (table.chat_id != 0)
                 & table.state.in_(_UNFINISHED))
        if known:
            where |= table.id.in_(list(known))
        return await self._database.run(self.records, where)

    async def update(self, download_id: int, **values: Any) -> DownloadRecord | None:
        """Change some columns of one download and return the row as stored."""
        await self.update_many({download_id: values})
        return await self.get(download_id)

    async def update_many(self, changes: Mapping[int, Mapping[str, Any]]) -> None:
        """Apply many rows' changes in ONE transaction (one UPDATE per changed row).

        This is the monitor's write path: it passes only the rows whose values moved. Rows
        that change the same columns (a poll's usual case: bytes, speeds, peers) share one
        prepared statement run with ``executemany``: building a peewee query per row cost
        57 µs a row, the prepared statement about 3.5 µs (``python -m tests.bench --only
        monitor``).
        """
        if not changes:
            return
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        now = utc_now()
        fields = self._database.tables.download._meta.fields
        for download_id, values in changes.items():
            unknown = set(values) - _WRITABLE
            if unknown:
                raise ValueError(f"not writable columns: {sorted(unknown)}")
            columns = tuple(sorted(values))
            groups.setdefault(columns, []).append((
                *(fields[name].db_value(values[name]) for name in columns),
                fields["updated_at"].db_value(now),
                download_id,
            ))

        notices = [(download_id, kind) for download_id, values in changes.items()
                   for kind in download_notices(values)]

        def write() -> None:
            db = self._database.db
            param = db.param
            # peewee maps the driver's errors (a locked database) to its own only around the
            # statements it runs itself: these raw ones need its wrapper too (StoreError).
            with peewee.__exception_wrapper__, db.atomic():
                cursor = db.cursor()
                for columns, rows in groups.items():
                    # Column names come from _WRITABLE only (checked above); values are bound.
                    assignments = ", ".join(f'"{name}" = {param}' for name in columns)
                    cursor.executemany(
                        f'UPDATE "downloads" SET {assignments}, "updated_at" = {param} '  # noqa: S608
                        f'WHERE "id" = {param}',
                        rows,
                    )
                for download_id, kind in notices:
                    self._notices.write(download_id, kind, now)
                self._database.check_held()

        await self._database.run(write)
        if notices:
            self._notices.stored()

    async def delete(self, download_ids: Sequence[int]) -> int:
        """Remove downloads from the list (their files are not touched); returns the count."""
        def write() -> int:
            with self._database.db.atomic():
                removed = self.remove_rows(list(download_ids))
                self._database.check_held()
                return removed

        return await self._database.run(write)

    def remove_rows(self, gone: list[int]) -> int:
        """Remove these downloads with their mirrors, notices and sent parts (on the store's
        thread, inside the caller's transaction); returns how many rows went."""
        if not gone:
            return 0
        for dependent in self._dependents:
            dependent.forget_downloads(gone)
        table = self._database.tables.download
        return table.delete().where(table.id.in_(gone)).execute()

    async def purge_finished(
        self,
        *,
        states: Iterable[str],
        before: datetime,
        limit: int = 500,
        with_sources: bool = False,
        node: str | None = None,
    ) -> list[PurgedDownload]:
        """Remove up to ``limit`` downloads in ``states`` whose row last changed before
        ``before`` (naive UTC, like every stored time), oldest first, in ONE transaction.

        Parameters:
            states: the finished states that may go (e.g. complete, error, cancelled).
            before: rows changed at or after this moment stay.
            limit: at most this many rows per call (call again while it returns ``limit``).
            with_sources: also return each row's magnet or .torrent bytes (to find its
                files); costs memory, so only when the files are to be deleted.
            node: only the downloads this node holds, and those no node ever claimed
                (cancelled while queued; every node may purge them), None: all.

        Returns:
            The removed rows, as they were.
        """
        wanted = list(states)

        def write() -> list[PurgedDownload]:
            table = self._database.tables.download
            columns = list(self.columns)
            if with_sources:
                columns.append(table.source)
            with self._database.db.atomic():
                where = table.state.in_(wanted) & (table.updated_at < before)
                if node is not None:
                    where &= (table.node == node) | table.node.is_null()
                rows = list(table.select(*columns).where(where)
                            .order_by(table.id).limit(limit).dicts())
                self.remove_rows([r["id"] for r in rows])
            return [PurgedDownload(_record(row), bytes(row["source"]) if with_sources else None)
                    for row in rows]

        return await self._database.run(write)
