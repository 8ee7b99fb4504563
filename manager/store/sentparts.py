"""The parts of files Telegram confirmed in a chat (sending): never sent there again, across
restarts."""

from __future__ import annotations

from manager.models import FilePlan
from manager.store.database import StoreDatabase, utc_now

__all__ = ["SentParts"]


class SentParts:
    """The sent parts of one store (``store.sent_parts``), used from asyncio.

    Parameters:
        database: the store's database and thread.
    """

    def __init__(self, database: StoreDatabase) -> None:
        self._database = database

    async def confirmed(self, plan: FilePlan) -> frozenset[int]:
        """The part numbers of ``plan`` Telegram confirmed (never to be sent again)."""
        def query() -> frozenset[int]:
            sent = self._database.tables.sent_part
            rows = sent.select(sent.part).where(
                (sent.download_id == plan.download_id) & (sent.chat_id == plan.chat_id)
                & (sent.file_index == plan.file_index) & (sent.file_size == plan.file_size)
                & (sent.file_mtime_ns == plan.file_mtime_ns)
                & (sent.part_size == plan.part_size))
            return frozenset(row.part for row in rows)

        return await self._database.run(query)

    async def record(self, plan: FilePlan, part: int) -> None:
        """Record that Telegram confirmed part ``part`` of ``plan`` (again: no change)."""
        def write() -> None:
            self._database.tables.sent_part.insert(
                download_id=plan.download_id, chat_id=plan.chat_id, file_index=plan.file_index,
                file_size=plan.file_size, file_mtime_ns=plan.file_mtime_ns,
                part_size=plan.part_size, part=part, sent_at=utc_now(),
            ).on_conflict_ignore().execute()

        await self._database.run(write)

    def forget_downloads(self, download_ids: list[int]) -> None:
        """Inside a removal's transaction: a download that leaves the list takes its sent
        parts along (an older SQLite file could give its id to a later download)."""
        sent = self._database.tables.sent_part
        sent.delete().where(sent.download_id.in_(download_ids)).execute()
