"""The notices table (the outbox): what a chat must be told, kept until Telegram has it.

Notices are written by the other families inside the transaction of the change that causes
them (:meth:`Notices.write`); which change calls for which notice is
:mod:`manager.notices`' rule. The bot reads them (:meth:`Notices.pending`) and marks each
one sent or given up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import peewee

from manager.notices import COALESCED, Notice, NoticeKind
from manager.store.database import StoreDatabase, utc_now
from manager.store.engine import engine_of

__all__ = ["NOTICES_CHANNEL", "Notices"]

NOTICES_CHANNEL = "ariabot_notices"
"""The PostgreSQL channel every write of a notice announces itself on: the front, which
sends them, may run on another node (:mod:`manager.store.front` listens)."""


class Notices:
    """The outbox of one store (``store.notices``), used from asyncio.

    Parameters:
        database: the store's database and thread.
    """

    def __init__(self, database: StoreDatabase) -> None:
        self._database = database
        self._watchers: list[Callable[[], None]] = []

    def write(self, download_id: int, kind: NoticeKind, now: datetime, *,
              detail: str = "") -> None:
        """Inside a write's transaction: the notice ``kind`` for the download's chat.

        None for a download of the local CLI (chat 0: nobody to tell), no final edit for a
        download without a progress message, and one pending final edit per download.
        Call :meth:`stored` once the transaction is done.
        """
        table, notice = self._database.tables.download, self._database.tables.notice
        where = (table.id == download_id) & (table.chat_id != 0)
        if kind is NoticeKind.FINAL:
            where &= table.message_id.is_null(False)
        if kind in COALESCED:
            pending = (notice.select(notice.id).where(
                (notice.download_id == download_id) & (notice.kind == kind.value)
                & notice.sent_at.is_null()))
            where &= ~peewee.fn.EXISTS(pending)
        source = table.select(peewee.Value(kind.value), table.id, table.chat_id,
                              peewee.Value(detail), peewee.Value(now),
                              peewee.Value(0)).where(where)
        notice.insert_from(source, [notice.kind, notice.download_id, notice.chat_id,
                                    notice.detail, notice.created_at, notice.tries]).execute()
        self._announce()

    def write_chat(self, chat_id: int, kind: NoticeKind, detail: str, now: datetime) -> None:
        """Inside a write's transaction: a notice for a chat about no one download (a feed
        that keeps failing). None for chat 0 (the local CLI's: nobody to tell)."""
        if chat_id != 0:
            self._database.tables.notice.insert(
                kind=kind.value, download_id=None, chat_id=chat_id, detail=detail,
                created_at=now).execute()
            self._announce()

    def _announce(self) -> None:
        database = self._database.db
        engine_of(database).announce(database, NOTICES_CHANNEL)

    def stored(self) -> None:
        """On the event loop, after a write that stored notices: tell the watchers."""
        for watcher in list(self._watchers):
            watcher()

    def forget_downloads(self, download_ids: list[int]) -> None:
        """Inside a removal's transaction: the removed downloads' notices go too."""
        notice = self._database.tables.notice
        notice.delete().where(notice.download_id.in_(download_ids)).execute()

    def follow_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """Inside a chat move's transaction: pending notices go to the chat's new id."""
        notice = self._database.tables.notice
        notice.update(chat_id=new_chat_id).where(
            (notice.chat_id == old_chat_id) & notice.sent_at.is_null()).execute()

    async def add(self, kind: NoticeKind, detail: str) -> None:
        """Store an aria2c alert for the admin chat (no download's change goes with it)."""
        def write() -> None:
            with self._database.db.atomic():
                self._database.tables.notice.insert(
                    kind=kind.value, download_id=None, chat_id=None, detail=detail,
                    created_at=utc_now()).execute()
                self._announce()

        await self._database.run(write)
        self.stored()

    def watch(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call ``watcher()`` on the event loop after every write that stored a notice,
        whoever wrote it (a poll, a reconcile, a mirror, an alert), so that the reader never
        waits for an event that a write path may not send. Returns a function that stops it.
        """
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    async def pending(self, per_chat: int = 50) -> list[Notice]:
        """Notices not yet sent nor given up, oldest first: the ``per_chat`` oldest of each
        chat (the admin chat's alerts count as one chat), so that a chat whose notices keep
        failing cannot hide another chat's behind them."""
        def query() -> list[Notice]:
            notice = self._database.tables.notice
            place = peewee.fn.ROW_NUMBER().over(partition_by=[notice.chat_id],
                                                 order_by=[notice.id])
            ranked = (notice.select(notice.id, place.alias("place"))
                      .where(notice.sent_at.is_null()).alias("ranked"))
            wanted = (peewee.Select([ranked], [ranked.c.id])
                      .where(ranked.c.place <= per_chat))
            rows = notice.select().where(notice.id.in_(wanted)).order_by(notice.id)
            return [Notice(row.id, NoticeKind(row.kind), row.download_id, row.chat_id,
                           row.detail, row.created_at, row.tries) for row in rows]

        return await self._database.run(query)

    async def done(self, notice_id: int, *, dropped: str | None = None) -> None:
        """Mark a notice sent (Telegram confirmed it) or given up (``dropped`` says why)."""
        def write() -> None:
            notice = self._database.tables.notice
            notice.update(sent_at=utc_now(), dropped=dropped).where(
                notice.id == notice_id).execute()

        await self._database.run(write)

    async def failed(self, notice_id: int) -> None:
        """Count a failed attempt (network, outage): the next one waits longer."""
        def write() -> None:
            notice = self._database.tables.notice
            notice.update(tries=notice.tries + 1).where(notice.id == notice_id).execute()

        await self._database.run(write)

    async def forget_sent(self, before: datetime) -> int:
        """Remove notices marked before ``before``; returns how many."""
        def write() -> int:
            notice = self._database.tables.notice
            return notice.delete().where(notice.sent_at < before).execute()

        return await self._database.run(write)
