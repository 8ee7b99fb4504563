"""The activity log: who did what to which download, and when (``ariabot activity``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from manager.store.database import StoreDatabase, utc_now

__all__ = ["ACTIVITY_DETAIL_MAX", "Activity", "ActivityEntry"]

ACTIVITY_DETAIL_MAX = 200
"""Activity details (magnets, reasons) are cut to this many characters."""


@dataclass(frozen=True)
class ActivityEntry:
    """One line of the activity log."""

    at: datetime
    chat_id: int
    user_id: int
    action: str
    download_id: int | None
    detail: str


class Activity:
    """The activity log of one store (``store.activity``), used from asyncio.

    Parameters:
        database: the store's database and thread.
    """

    def __init__(self, database: StoreDatabase) -> None:
        self._database = database

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
            table = self._database.tables.activity
            table.insert(at=utc_now(), chat_id=chat_id, user_id=user_id, action=action,
                         download_id=download_id, detail=detail).execute()

        await self._database.run(write)

    async def latest(self, *, chat_id: int | None = None, limit: int = 50) -> list[ActivityEntry]:
        """The latest activity, newest first."""
        def query() -> list[ActivityEntry]:
            table = self._database.tables.activity
            select = table.select()
            if chat_id is not None:
                select = select.where(table.chat_id == chat_id)
            rows = select.order_by(table.id.desc()).limit(limit)
            return [ActivityEntry(r.at, r.chat_id, r.user_id, r.action, r.download_id, r.detail)
                    for r in rows]

        return await self._database.run(query)
