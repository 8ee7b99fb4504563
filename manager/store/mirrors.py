"""The mirrors table: a download's upload to the rclone destination, one per download,
stored so that a restart of ariabot resumes it. A mirror's end writes its notice in the
same transaction (:mod:`manager.notices`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from manager.notices import mirror_notices
from manager.store.database import StoreDatabase, utc_now
from manager.store.outbox import Notices

__all__ = ["MirrorRecord", "Mirrors"]


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


def _mirror_record(row: Mapping[str, Any]) -> MirrorRecord:
    return MirrorRecord(**{name: row[name] for name in _MIRROR_FIELDS})


class Mirrors:
    """The mirrors of one store (``store.mirrors``), used from asyncio.

    Parameters:
        database: the store's database and thread.
        notices: the outbox, written with a mirror's end.
    """

    def __init__(self, database: StoreDatabase, notices: Notices) -> None:
        self._database = database
        self._notices = notices

    async def start(self, download_id: int, *, chat_id: int, user_id: int, remote: str,
                    move: bool, state: str, folder: str | None = None) -> MirrorRecord:
        """Store a new mirror of a download, replacing a finished one (there is one per
        download); returns it as stored."""
        def write() -> MirrorRecord:
            table = self._database.tables.mirror
            now = utc_now()
            with self._database.db.atomic():
                table.delete().where(table.download_id == download_id).execute()
                table.insert(download_id=download_id, chat_id=chat_id, user_id=user_id,
                             state=state, remote=remote, move=move, folder=folder,
                             created_at=now, updated_at=now).execute()
            found = self._get(download_id)
            assert found is not None
            return found

        return await self._database.run(write)

    def _get(self, download_id: int) -> MirrorRecord | None:
        table = self._database.tables.mirror
        row = table.select().where(table.download_id == download_id).dicts().first()
        return _mirror_record(row) if row else None

    async def get(self, download_id: int) -> MirrorRecord | None:
        """The mirror of this download, or None."""
        return await self._database.run(self._get, download_id)

    async def forget(self, download_id: int) -> None:
        """Delete the download's stored mirror (a cancelled download added again starts
        without one; what was uploaded stays at the destination)."""
        def write() -> None:
            self.forget_downloads([download_id])

        await self._database.run(write)

    def forget_downloads(self, download_ids: list[int]) -> None:
        """On the store's thread: delete these downloads' mirrors."""
        table = self._database.tables.mirror
        table.delete().where(table.download_id.in_(download_ids)).execute()

    def follow_chat(self, old_chat_id: int, new_chat_id: int, download_ids: list[int]) -> None:
        """Inside a chat move's transaction: the moved downloads' mirrors follow the chat."""
        table = self._database.tables.mirror
        table.update(chat_id=new_chat_id).where(
            (table.chat_id == old_chat_id) & table.download_id.in_(download_ids)).execute()

    async def list(self, *, states: Iterable[str] | None = None,
                   download_ids: Iterable[int] | None = None) -> list[MirrorRecord]:
        """Mirrors in these states, or of these downloads (all when neither is given)."""
        wanted = list(states) if states is not None else None
        ids = list(download_ids) if download_ids is not None else None

        def query() -> list[MirrorRecord]:
            table = self._database.tables.mirror
            select = table.select()
            if wanted is not None:
                select = select.where(table.state.in_(wanted))
            if ids is not None:
                select = select.where(table.download_id.in_(ids))
            return [_mirror_record(row) for row in select.order_by(table.id).dicts()]

        return await self._database.run(query)

    async def update(self, download_id: int, /, **values: Any) -> MirrorRecord | None:
        """Change some columns of a download's mirror; returns it as stored."""
        unknown = set(values) - _MIRROR_WRITABLE
        if unknown:
            raise ValueError(f"not writable columns: {sorted(unknown)}")

        def write() -> MirrorRecord | None:
            table = self._database.tables.mirror
            now = utc_now()
            with self._database.db.atomic():
                table.update(**values, updated_at=now).where(
                    table.download_id == download_id).execute()
                for kind in mirror_notices(values):
                    self._notices.write(download_id, kind, now)
            return self._get(download_id)

        stored = await self._database.run(write)
        if mirror_notices(values):
            self._notices.stored()
        return stored
