"""Outbox: the stored notices the bot must send, and aria2c's alerts written among them.

A download's notices are written by the store with the change that causes them (see
:mod:`manager.notices`); aria2c's alerts have no stored change to go with, so they are
written here first and published after, so that a subscriber woken by the event finds its
notice stored. Sent or given-up notices are kept a week (what was told, for the log), then
forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from manager.events import Aria2Down, Aria2Fatal, EngineEvent, Publisher
from manager.notices import Notice, NoticeKind
from manager.store import Store

__all__ = ["KEEP_SENT", "Outbox"]

log = logging.getLogger(__name__)

KEEP_SENT = timedelta(days=7)
"""How long a sent or given-up notice is kept before it is forgotten."""


class Outbox:
    """The manager's side of the notices: stores aria2c's alerts, lists and marks notices.

    Parameters:
        store: the opened store.
        publisher: where the alerts' events go once their notice is stored.
    """

    def __init__(self, store: Store, publisher: Publisher) -> None:
        self._store = store
        self._publisher = publisher
        self._writes: set[asyncio.Task[None]] = set()

    def alert(self, event: EngineEvent) -> None:
        """Store ``event``'s notice for the admin chat, then publish it (never blocks)."""
        kind = (NoticeKind.ARIA2_FATAL if isinstance(event, Aria2Fatal)
                else NoticeKind.ARIA2_DOWN if isinstance(event, Aria2Down)
                else NoticeKind.ARIA2_RESTARTED)
        task = asyncio.get_running_loop().create_task(self._store_then_publish(kind, event),
                                                       name="alert")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _store_then_publish(self, kind: NoticeKind, event: EngineEvent) -> None:
        try:
            await self._store.add_notice(kind, event.detail)
        except Exception:
            log.exception("could not store the alert %r; it is told without a record",
                          event.detail)
        self._publisher.emit(event)

    async def pending(self, per_chat: int = 50) -> list[Notice]:
        """Notices not yet sent nor given up, oldest first: at most ``per_chat`` of each
        chat, so one chat's failures never hide another chat's news."""
        return await self._store.pending_notices(per_chat)

    def watch(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call ``watcher()`` whenever a notice is stored; returns a function that stops it."""
        return self._store.watch_notices(watcher)

    async def done(self, notice_id: int, dropped: str | None = None) -> None:
        """Telegram confirmed the notice (or, with ``dropped``, it was given up: why)."""
        await self._store.notice_done(notice_id, dropped=dropped)

    async def failed(self, notice_id: int) -> None:
        """An attempt failed (network, outage); the notice stays pending."""
        await self._store.notice_failed(notice_id)

    async def forget_old(self) -> None:
        """Forget notices sent or given up more than :data:`KEEP_SENT` ago."""
        before = datetime.now(UTC).replace(tzinfo=None) - KEEP_SENT
        if forgotten := await self._store.forget_sent_notices(before):
            log.debug("forgot %d notices sent before %s", forgotten, before)

    async def close(self) -> None:
        """Let alerts still being written finish (a FATAL one is the last word)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
