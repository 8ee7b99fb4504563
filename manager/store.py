"""Persistent record of downloads and of who did what, with peewee.

SQLite (WAL) in the data dir by default, or PostgreSQL (``postgresql://``); what differs
between the two is in :mod:`manager.engine` only. All database work runs on the store's
own thread (:mod:`manager.dbthread`), with the store's own bound tables
(:mod:`manager.schema`), so two stores in one process never share a connection or a binding.
The schema is created or migrated at :meth:`Store.open`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

import peewee

from manager.dbthread import DatabaseThread
from manager.engine import engine_for
from manager.errors import StoreError
from manager.models import FilePlan
from manager.notices import COALESCED, Notice, NoticeKind, download_notices, mirror_notices
from manager.schema import Tables, bind_tables, upgrade

__all__ = [
    "ActivityEntry",
    "DownloadRecord",
    "MirrorRecord",
    "MovedChat",
    "PurgedDownload",
    "Store",
]

T = TypeVar("T")

ACTIVITY_DETAIL_MAX = 200
"""Activity details (magnets, reasons) are cut to this many characters."""


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


_RECORD_FIELDS = tuple(f.name for f in fields(DownloadRecord))
# ``source`` is not on the record (it can be a large .torrent) but a re-add rewrites it.
_WRITABLE = (frozenset(_RECORD_FIELDS) | {"source"}) - {"id", "created_at"}


@dataclass(frozen=True)
class MirrorRecord:
    """A stored mirror row (a download's upload to the rclone destination)."""

    id: int
    download_id: int
    chat_id: int
    user_id: int
    state: str
    remote: str
    move: bool
    attempt: int
    bytes: int
    total_bytes: int
    error: str | None
    link: str | None
    local_deleted: bool
    pid: int | None
    created_at: datetime
    updated_at: datetime
    folder: str | None
    """The download's own place below ``remote``; None for a mirror stored before it had
    one (its files went to ``remote`` itself)."""


_MIRROR_FIELDS = tuple(f.name for f in fields(MirrorRecord))
_MIRROR_WRITABLE = frozenset(_MIRROR_FIELDS) - {"id", "download_id", "created_at",
                                                 "updated_at"}


@dataclass(frozen=True)
class PurgedDownload:
    """A download :meth:`Store.purge_finished` removed, with its source when asked for."""

    record: DownloadRecord
    source: bytes | None = None
    """The magnet URI (``record.source_kind == "magnet"``) or the .torrent file's bytes."""


@dataclass(frozen=True)
class MovedChat:
    """What :meth:`Store.move_chat` did: the rows that follow the chat to its new id, and
    those that stay with the old one (their torrent is already listed in the new chat)."""

    moved: list[DownloadRecord]
    stayed: list[DownloadRecord]
    replaced: list[int]
    """The new chat's rows (ids) that gave way to a moved one, now removed."""


@dataclass(frozen=True)
class ActivityEntry:
    """One line of the activity log."""

    at: datetime
    chat_id: int
    user_id: int
    action: str
    download_id: int | None
    detail: str


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_SHARED_TEXT = ("directory", "state", "source_kind")
"""Columns that hold a few values over many rows: one string each, not one per row (the
manager keeps a record per unfinished download)."""


def _record(row: Mapping[str, Any]) -> DownloadRecord:
    values = {name: row[name] for name in _RECORD_FIELDS}
    for name in _SHARED_TEXT:
        values[name] = sys.intern(values[name])
    return DownloadRecord(**values)


class Store:
    """The downloads table and the activity log, used from asyncio.

    Parameters:
        url: ``sqlite:////var/lib/ariabot/ariabot.db``, ``sqlite:///:memory:`` or
            ``postgresql://user:password@host:port/database``.

    Raises:
        ValueError: the URL names another engine.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._thread = DatabaseThread()
        self._database: peewee.Database | None = None
        self._bound: Tables | None = None
        self._columns: tuple[peewee.Field, ...] = ()
        self._engine = engine_for(url)
        self._notice_watchers: list[Callable[[], None]] = []

    # --- plumbing --------------------------------------------------------------------------

    @property
    def statements(self) -> int:
        """SQL statements sent so far, on either engine: how benchmarks and tests see the
        write cost (:mod:`manager.engine` says how each counts)."""
        return self._engine.statements

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function`` on the store's thread.

        Raises:
            StoreError: the database could not do it (SQLite locked past ``busy_timeout``,
                read-only, disk I/O error; the PostgreSQL server gone); the message is fit
                for a user.
        """
        return await self._thread.run(function, *args, **kwargs)

    @property
    def _db(self) -> peewee.Database:
        if self._database is None:
            raise RuntimeError("Store.open() has not been called")
        return self._database

    @property
    def _tables(self) -> Tables:
        """This store's models, bound to its own database only."""
        if self._bound is None:
            raise RuntimeError("Store.open() has not been called")
        return self._bound

    async def open(self) -> None:
        """Connect, and create or migrate the schema up to :data:`~manager.schema.SCHEMA_VERSION`.

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
        self._columns = tuple(getattr(tables.download, name) for name in _RECORD_FIELDS)
        upgrade(database, tables)

    async def close(self) -> None:
        """Close the connection and stop the store's thread."""
        if self._database is not None:
            await self._run(self._database.close)
            self._database = None
        self._thread.shutdown()

    # --- downloads -------------------------------------------------------------------------

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
    ) -> DownloadRecord:
        """Insert a download and return it (with its new public id).

        Raises:
            peewee.IntegrityError: the same info-hash is already stored for this chat.
        """
        def insert() -> DownloadRecord:
            table = self._tables.download
            now = _now()
            with self._db.atomic():
                new_id = table.insert(
                    info_hash=info_hash, chat_id=chat_id, user_id=user_id, name=name,
                    source_kind=source_kind, source=source, directory=directory, state=state,
                    total_bytes=total_bytes, message_id=message_id, created_at=now,
                    updated_at=now,
                ).execute()
            return self._get(new_id)

        return await self._run(insert)

    def _get(self, download_id: int) -> DownloadRecord | None:
        table = self._tables.download
        row = table.select(*self._columns).where(table.id == download_id).dicts().first()
        return _record(row) if row else None

    async def get(self, download_id: int) -> DownloadRecord | None:
        """The download with this public id, or ``None``."""
        return await self._run(self._get, download_id)

    async def find(self, info_hash: str, chat_id: int) -> DownloadRecord | None:
        """The download of this torrent in this chat, or ``None``."""
        def query() -> DownloadRecord | None:
            table = self._tables.download
            row = (table.select(*self._columns)
                   .where((table.info_hash == info_hash) & (table.chat_id == chat_id))
                   .dicts().first())
            return _record(row) if row else None

        return await self._run(query)

    async def find_in_states(
        self, info_hash: str, states: Iterable[str]
    ) -> list[DownloadRecord]:
        """Downloads of this torrent, in any chat, whose state is one of ``states``."""
        wanted = list(states)

        def query() -> list[DownloadRecord]:
            table = self._tables.download
            rows = (table.select(*self._columns)
                    .where((table.info_hash == info_hash) & table.state.in_(wanted))
                    .dicts())
            return [_record(row) for row in rows]

        return await self._run(query)

    async def list(
        self,
        *,
        chat_id: int | None = None,
        states: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[DownloadRecord]:
        """Downloads, newest first, optionally of one chat and in some states."""
        wanted = list(states) if states is not None else None

        def query() -> list[DownloadRecord]:
            table = self._tables.download
            select = table.select(*self._columns)
            if chat_id is not None:
                select = select.where(table.chat_id == chat_id)
            if wanted is not None:
                select = select.where(table.state.in_(wanted))
            select = select.order_by(table.id.desc())
            if limit is not None:
                select = select.limit(limit)
            return [_record(row) for row in select.dicts()]

        return await self._run(query)

    async def page(
        self,
        *,
        chat_id: int | None = None,
        states: Iterable[str] | None = None,
        before_id: int | None = None,
        from_id: int | None = None,
        offset: int = 0,
        limit: int | None,
    ) -> list[DownloadRecord]:
        """One page of downloads, newest first: at most ``limit`` rows with an id below
        ``before_id`` (a cursor: the last id of the previous page) and, given ``from_id``,
        not below it, after skipping ``offset``. Whatever the size of the list, a page costs
        the store ``offset + limit`` index entries (``downloads(chat_id, id)`` or the
        primary key), or the id range, not the whole table.
        """
        wanted = list(states) if states is not None else None

        def query() -> list[DownloadRecord]:
            table = self._tables.download
            select = table.select(*self._columns)
            if chat_id is not None:
                select = select.where(table.chat_id == chat_id)
            if wanted is not None:
                select = select.where(table.state.in_(wanted))
            if before_id is not None:
                select = select.where(table.id < before_id)
            if from_id is not None:
                select = select.where(table.id >= from_id)
            select = select.order_by(table.id.desc()).limit(limit).offset(offset)
            return [_record(row) for row in select.dicts()]

        return await self._run(query)

    async def state_counts(self, *, chat_id: int | None = None) -> dict[str, int]:
        """How many downloads are in each state (of one chat, or all), in one query."""
        def query() -> dict[str, int]:
            table = self._tables.download
            select = table.select(table.state, peewee.fn.COUNT(table.id).alias("n"))
            if chat_id is not None:
                select = select.where(table.chat_id == chat_id)
            return {row["state"]: row["n"] for row in select.group_by(table.state).dicts()}

        return await self._run(query)

    async def source(self, download_id: int) -> tuple[str, bytes] | None:
        """The stored magnet URI or .torrent bytes of a download, to re-add it to aria2."""
        def query() -> tuple[str, bytes] | None:
            table = self._tables.download
            row = (table.select(table.source_kind, table.source)
                   .where(table.id == download_id).first())
            return (row.source_kind, bytes(row.source)) if row else None

        return await self._run(query)

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
        now = _now()
        for download_id, values in changes.items():
            unknown = set(values) - _WRITABLE
            if unknown:
                raise ValueError(f"not writable columns: {sorted(unknown)}")
            columns = tuple(sorted(values))
            fields = self._tables.download._meta.fields
            groups.setdefault(columns, []).append((
                *(fields[name].db_value(values[name]) for name in columns),
                fields["updated_at"].db_value(now),
                download_id,
            ))

        notices = [(download_id, kind) for download_id, values in changes.items()
                   for kind in download_notices(values)]

        def write() -> None:
            param = self._db.param
            # peewee maps the driver's errors (a locked database) to its own only around the
            # statements it runs itself: these raw ones need its wrapper too (StoreError).
            with peewee.__exception_wrapper__, self._db.atomic():
                cursor = self._db.cursor()
                for columns, rows in groups.items():
                    # Column names come from _WRITABLE only (checked above); values are bound.
                    assignments = ", ".join(f'"{name}" = {param}' for name in columns)
                    cursor.executemany(
                        f'UPDATE "downloads" SET {assignments}, "updated_at" = {param} '  # noqa: S608
                        f'WHERE "id" = {param}',
                        rows,
                    )
                for download_id, kind in notices:
                    self._write_notice(download_id, kind, now)

        await self._run(write)
        if notices:
            self._notices_stored()

    async def delete(self, download_ids: Sequence[int]) -> int:
        """Remove downloads from the list (their files are not touched); returns the count."""
        def write() -> int:
            with self._db.atomic():
                return self._delete_rows(list(download_ids))

        return await self._run(write)

    def _delete_rows(self, gone: list[int]) -> int:
        """Remove these downloads with their mirrors, notices and sent parts (on the store's
        thread, inside the caller's transaction)."""
        if not gone:
            return 0
        table = self._tables.download
        mirrors, notices = self._tables.mirror, self._tables.notice
        mirrors.delete().where(mirrors.download_id.in_(gone)).execute()
        notices.delete().where(notices.download_id.in_(gone)).execute()
        self._forget_sent_parts(gone)
        return table.delete().where(table.id.in_(gone)).execute()

    # --- retention -------------------------------------------------------------------------

    async def purge_finished(
        self,
        *,
        states: Iterable[str],
        before: datetime,
        limit: int = 500,
        with_sources: bool = False,
    ) -> list[PurgedDownload]:
        """Remove up to ``limit`` downloads in ``states`` whose row last changed before
        ``before`` (naive UTC, like every stored time), oldest first, in ONE transaction.

        Parameters:
            states: the finished states that may go (e.g. complete, error, cancelled).
            before: rows changed at or after this moment stay.
            limit: at most this many rows per call (call again while it returns ``limit``).
            with_sources: also return each row's magnet or .torrent bytes (to find its
                files); costs memory, so only when the files are to be deleted.

        Returns:
            The removed rows, as they were.
        """
        wanted = list(states)

        def write() -> list[PurgedDownload]:
            table = self._tables.download
            columns = list(self._columns)
            if with_sources:
                columns.append(table.source)
            with self._db.atomic():
                rows = list(
                    table.select(*columns)
                    .where(table.state.in_(wanted) & (table.updated_at < before))
                    .order_by(table.id).limit(limit).dicts()
                )
                if rows:
                    gone = [r["id"] for r in rows]
                    mirrors, notices = self._tables.mirror, self._tables.notice
                    mirrors.delete().where(mirrors.download_id.in_(gone)).execute()
                    notices.delete().where(notices.download_id.in_(gone)).execute()
                    self._forget_sent_parts(gone)
                    table.delete().where(table.id.in_(gone)).execute()
            return [PurgedDownload(_record(row), bytes(row["source"]) if with_sources else None)
                    for row in rows]

        return await self._run(write)

    async def named(self, directory: str, name: str) -> list[DownloadRecord]:
        """Downloads in the list (any state) named ``name`` in ``directory``; which of them
        own ``directory/name`` is :meth:`manager.contents.Contents.owner`'s rule."""

        def query() -> list[DownloadRecord]:
            table = self._tables.download
            rows = (table.select(*self._columns)
                    .where((table.directory == directory) & (table.name == name))
                    .dicts())
            return [_record(row) for row in rows]

        return await self._run(query)

    # --- mirrors ---------------------------------------------------------------------------

    async def start_mirror(self, download_id: int, *, chat_id: int, user_id: int, remote: str,
                           move: bool, state: str, folder: str | None = None) -> MirrorRecord:
        """Store a new mirror of a download, replacing a finished one (there is one per
        download); returns it as stored."""
        def write() -> MirrorRecord:
            table = self._tables.mirror
            now = _now()
            with self._db.atomic():
                table.delete().where(table.download_id == download_id).execute()
                table.insert(download_id=download_id, chat_id=chat_id, user_id=user_id,
                             state=state, remote=remote, move=move, folder=folder,
                             created_at=now, updated_at=now).execute()
            found = self._mirror(download_id)
            assert found is not None
            return found

        return await self._run(write)

    def _mirror(self, download_id: int) -> MirrorRecord | None:
        table = self._tables.mirror
        row = table.select().where(table.download_id == download_id).dicts().first()
        return MirrorRecord(**{name: row[name] for name in _MIRROR_FIELDS}) if row else None

    async def mirror(self, download_id: int) -> MirrorRecord | None:
        """The mirror of this download, or None."""
        return await self._run(self._mirror, download_id)

    async def forget_mirror(self, download_id: int) -> None:
        """Delete the download's stored mirror (a cancelled download added again starts
        without one; what was uploaded stays at the destination)."""
        def write() -> None:
            table = self._tables.mirror
            table.delete().where(table.download_id == download_id).execute()

        await self._run(write)

    async def mirrors(self, *, states: Iterable[str] | None = None,
                      download_ids: Iterable[int] | None = None) -> list[MirrorRecord]:
        """Mirrors in these states, or of these downloads (all when neither is given)."""
        wanted = list(states) if states is not None else None
        ids = list(download_ids) if download_ids is not None else None

        def query() -> list[MirrorRecord]:
            table = self._tables.mirror
            select = table.select()
            if wanted is not None:
                select = select.where(table.state.in_(wanted))
            if ids is not None:
                select = select.where(table.download_id.in_(ids))
            return [MirrorRecord(**{name: row[name] for name in _MIRROR_FIELDS})
                    for row in select.order_by(table.id).dicts()]

        return await self._run(query)

    async def update_mirror(self, download_id: int, /, **values: Any) -> MirrorRecord | None:
        """Change some columns of a download's mirror; returns it as stored."""
        unknown = set(values) - _MIRROR_WRITABLE
        if unknown:
            raise ValueError(f"not writable columns: {sorted(unknown)}")

        def write() -> MirrorRecord | None:
            table = self._tables.mirror
            now = _now()
            with self._db.atomic():
                table.update(**values, updated_at=now).where(
                    table.download_id == download_id).execute()
                for kind in mirror_notices(values):
                    self._write_notice(download_id, kind, now)
            return self._mirror(download_id)

        stored = await self._run(write)
        if mirror_notices(values):
            self._notices_stored()
        return stored

    # --- notices (the outbox) ---------------------------------------------------------------

    def _write_notice(self, download_id: int, kind: NoticeKind, now: datetime) -> None:
        """Inside a write's transaction: the notice ``kind`` for the download's chat.

        None for a download of the local CLI (chat 0: nobody to tell), no final edit for a
        download without a progress message, and one pending final edit per download.
        """
        table, notice = self._tables.download, self._tables.notice
        where = (table.id == download_id) & (table.chat_id != 0)
        if kind is NoticeKind.FINAL:
            where &= table.message_id.is_null(False)
        if kind in COALESCED:
            pending = (notice.select(notice.id).where(
                (notice.download_id == download_id) & (notice.kind == kind.value)
                & notice.sent_at.is_null()))
            where &= ~peewee.fn.EXISTS(pending)
        source = table.select(peewee.Value(kind.value), table.id, table.chat_id,
                              peewee.Value(""), peewee.Value(now), peewee.Value(0)).where(where)
        notice.insert_from(source, [notice.kind, notice.download_id, notice.chat_id,
                                    notice.detail, notice.created_at, notice.tries]).execute()

    async def add_notice(self, kind: NoticeKind, detail: str) -> None:
        """Store an aria2c alert for the admin chat (no download's change goes with it)."""
        def write() -> None:
            self._tables.notice.insert(kind=kind.value, download_id=None, chat_id=None,
                                       detail=detail, created_at=_now()).execute()

        await self._run(write)
        self._notices_stored()

    def watch_notices(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call ``watcher()`` on the event loop after every write that stored a notice,
        whoever wrote it (a poll, a reconcile, a mirror, an alert), so that the reader never
        waits for an event that a write path may not send. Returns a function that stops it.
        """
        self._notice_watchers.append(watcher)
        return lambda: self._notice_watchers.remove(watcher)

    def _notices_stored(self) -> None:
        for watcher in list(self._notice_watchers):
            watcher()

    async def pending_notices(self, per_chat: int = 50) -> list[Notice]:
        """Notices not yet sent nor given up, oldest first: the ``per_chat`` oldest of each
        chat (the admin chat's alerts count as one chat), so that a chat whose notices keep
        failing cannot hide another chat's behind them."""
        def query() -> list[Notice]:
            notice = self._tables.notice
            place = peewee.fn.ROW_NUMBER().over(partition_by=[notice.chat_id],
                                                 order_by=[notice.id])
            ranked = (notice.select(notice.id, place.alias("place"))
                      .where(notice.sent_at.is_null()).alias("ranked"))
            wanted = (peewee.Select([ranked], [ranked.c.id])
                      .where(ranked.c.place <= per_chat))
            rows = notice.select().where(notice.id.in_(wanted)).order_by(notice.id)
            return [Notice(row.id, NoticeKind(row.kind), row.download_id, row.chat_id,
                           row.detail, row.created_at, row.tries) for row in rows]

        return await self._run(query)

    async def notice_done(self, notice_id: int, *, dropped: str | None = None) -> None:
        """Mark a notice sent (Telegram confirmed it) or given up (``dropped`` says why)."""
        def write() -> None:
            notice = self._tables.notice
            notice.update(sent_at=_now(), dropped=dropped).where(
                notice.id == notice_id).execute()

        await self._run(write)

    async def notice_failed(self, notice_id: int) -> None:
        """Count a failed attempt (network, outage): the next one waits longer."""
        def write() -> None:
            notice = self._tables.notice
            notice.update(tries=notice.tries + 1).where(notice.id == notice_id).execute()

        await self._run(write)

    async def forget_sent_notices(self, before: datetime) -> int:
        """Remove notices marked before ``before``; returns how many."""
        def write() -> int:
            notice = self._tables.notice
            return notice.delete().where(notice.sent_at < before).execute()

        return await self._run(write)

    # --- a chat that changed its id ----------------------------------------------------------

    async def move_chat(self, old_chat_id: int, new_chat_id: int, *,
                        giving_way: Collection[str] = ()) -> MovedChat:
        """A group became a supergroup (Telegram's ``migrate_to_chat_id``): its downloads,
        mirrors and pending notices belong to the new chat id from now on, and the move
        itself is kept (:meth:`chat_moves`), in ONE transaction. The old chat's messages
        cannot be edited any more (Telegram answers every request there with the
        migration), so the downloads' progress messages are forgotten and the chat's
        overview too. Files stay where they are (each row keeps its ``directory``).

        A download whose torrent the new chat already lists (one row per torrent and chat)
        stays with the old id, its progress message forgotten: the new chat's own row is the
        one its users see and act on, and the old row keeps its files until it is purged.
        Unless the new chat's row is in a state of ``giving_way`` and the old one is not:
        then the new chat's row is removed (with its mirror, notices and sent parts) and the
        old one takes its place.

        Parameters:
            old_chat_id: the id Telegram no longer serves.
            new_chat_id: the chat's id from now on.
            giving_way: states (values) of a new chat's row that owns nothing (cancelled).

        Returns:
            The downloads moved (none when the chat was moved before) and those that stayed,
            as now stored, and the rows that gave way.
        """
        def write() -> MovedChat:
            table, mirror = self._tables.download, self._tables.mirror
            notice, view = self._tables.notice, self._tables.chat_view
            moves = self._tables.chat_move
            with self._db.atomic():
                held = {row.info_hash: row for row in table.select(
                    table.id, table.info_hash, table.state).where(table.chat_id == new_chat_id)}
                rows = list(table.select(table.id, table.info_hash, table.state).where(
                    table.chat_id == old_chat_id))
                replaced = [held[row.info_hash].id for row in rows if row.info_hash in held
                            and held[row.info_hash].state in giving_way
                            and row.state not in giving_way]
                self._delete_rows(replaced)
                ids = [row.id for row in rows if row.info_hash not in held
                       or held[row.info_hash].id in replaced]
                kept = [row.id for row in rows if row.id not in ids]
                table.update(chat_id=new_chat_id, message_id=None, updated_at=_now()).where(
                    table.id.in_(ids)).execute()
                table.update(message_id=None, updated_at=_now()).where(
                    table.id.in_(kept) & table.message_id.is_null(False)).execute()
                mirror.update(chat_id=new_chat_id).where(
                    (mirror.chat_id == old_chat_id) & mirror.download_id.in_(ids)).execute()
                notice.update(chat_id=new_chat_id).where(
                    (notice.chat_id == old_chat_id) & notice.sent_at.is_null()).execute()
                view.delete().where(view.chat_id == old_chat_id).execute()
                (moves.insert(old_chat_id=old_chat_id, new_chat_id=new_chat_id,
                              moved_at=_now())
                 .on_conflict(conflict_target=[moves.old_chat_id],
                              update={moves.new_chat_id: new_chat_id}).execute())
                found = {row["id"]: _record(row) for row in table.select(*self._columns).where(
                    table.id.in_(ids + kept)).dicts()}
                return MovedChat([found[i] for i in ids], [found[i] for i in kept], replaced)

        return await self._run(write)

    async def chat_moves(self) -> dict[int, int]:
        """Every group Telegram upgraded to a supergroup: old chat id → new chat id."""
        def query() -> dict[int, int]:
            moves = self._tables.chat_move
            return {row.old_chat_id: row.new_chat_id for row in moves.select()}

        return await self._run(query)

    # --- chats' stored message ids ------------------------------------------------------

    async def overview_message(self, chat_id: int) -> int | None:
        """The message id of the chat's ``/status`` overview, if one is stored."""
        def query() -> int | None:
            view = self._tables.chat_view
            row = view.select().where(view.chat_id == chat_id).first()
            return row.overview_message_id if row else None

        return await self._run(query)

    async def set_overview_message(self, chat_id: int, message_id: int) -> None:
        """Store the message id of the chat's ``/status`` overview."""
        def write() -> None:
            view = self._tables.chat_view
            (view.insert(chat_id=chat_id, overview_message_id=message_id)
             .on_conflict(conflict_target=[view.chat_id],
                          update={view.overview_message_id: message_id}).execute())

        await self._run(write)

    # --- activity --------------------------------------------------------------------------

    async def log(
        self,
        action: str,
        *,
        chat_id: int,
        user_id: int,
        download_id: int | None = None,
        detail: str = "",
    ) -> None:
        """Append to the activity log; ``detail`` is cut to :data:`ACTIVITY_DETAIL_MAX`."""
        if len(detail) > ACTIVITY_DETAIL_MAX:
            detail = detail[: ACTIVITY_DETAIL_MAX - 1] + "…"

        def write() -> None:
            table = self._tables.activity
            table.insert(at=_now(), chat_id=chat_id, user_id=user_id, action=action,
                         download_id=download_id, detail=detail).execute()

        await self._run(write)

    async def activity(self, *, chat_id: int | None = None, limit: int = 50) -> list[ActivityEntry]:
        """The latest activity, newest first."""
        def query() -> list[ActivityEntry]:
            table = self._tables.activity
            select = table.select()
            if chat_id is not None:
                select = select.where(table.chat_id == chat_id)
            rows = select.order_by(table.id.desc()).limit(limit)
            return [ActivityEntry(r.at, r.chat_id, r.user_id, r.action, r.download_id, r.detail)
                    for r in rows]

        return await self._run(query)

    # --- parts of files Telegram confirmed (sending) ------------------------------------------

    async def sent_parts(self, plan: FilePlan) -> frozenset[int]:
        """The part numbers of ``plan`` Telegram confirmed (never to be sent again)."""
        def query() -> frozenset[int]:
            sent = self._tables.sent_part
            rows = sent.select(sent.part).where(
                (sent.download_id == plan.download_id) & (sent.chat_id == plan.chat_id)
                & (sent.file_index == plan.file_index) & (sent.file_size == plan.file_size)
                & (sent.file_mtime_ns == plan.file_mtime_ns)
                & (sent.part_size == plan.part_size))
            return frozenset(row.part for row in rows)

        return await self._run(query)

    async def record_sent_part(self, plan: FilePlan, part: int) -> None:
        """Record that Telegram confirmed part ``part`` of ``plan`` (again: no change)."""
        def write() -> None:
            self._tables.sent_part.insert(
                download_id=plan.download_id, chat_id=plan.chat_id, file_index=plan.file_index,
                file_size=plan.file_size, file_mtime_ns=plan.file_mtime_ns,
                part_size=plan.part_size, part=part, sent_at=_now(),
            ).on_conflict_ignore().execute()

        await self._run(write)

    def _forget_sent_parts(self, download_ids: list[int]) -> None:
        """Inside a removal's transaction: a download that leaves the list takes its sent
        parts along (an older SQLite file could give its id to a later download)."""
        sent = self._tables.sent_part
        sent.delete().where(sent.download_id.in_(download_ids)).execute()
