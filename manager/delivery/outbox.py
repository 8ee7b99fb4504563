"""Outbox: the stored notices the bot must send, and aria2c's alerts written among them.

A download's notices are written by the store with the change that causes them (see
:mod:`manager.notices`); aria2c's alerts have no stored change to go with, so they are
written here first and published after, so that a subscriber woken by the event finds its
notice stored. An alert the store cannot take (locked, disk full) is kept in memory and
written again, in order, after a growing delay: the bot sends only stored notices, so an
alert never stored would never be told. Sent or given-up notices are kept a week (what was
told, for the log), then forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from manager.errors import StoreError
from manager.events import Aria2Down, Aria2Fatal, EngineEvent, Publisher
from manager.notices import Notice, NoticeKind
from manager.store import Store

__all__ = ["KEEP_SENT", "Outbox"]

log = logging.getLogger(__name__)

KEEP_SENT = timedelta(days=7)
"""How long a sent or given-up notice is kept before it is forgotten."""
_RETRY_FIRST = 1.0
"""Seconds before an alert the store refused is written again; doubles each time."""
_RETRY_MAX = 30.0
"""Longest wait between two attempts to store an alert (s)."""
_CLOSE_WAIT = 10.0
"""How long :meth:`Outbox.close` lets alerts still to be stored try (s): a write may wait
5 s for a lock (``busy_timeout``)."""


class Outbox:
    """The manager's side of the notices: stores aria2c's alerts, lists and marks notices.

    Parameters:
        store: the opened store.
        publisher: where the alerts' events go once their notice is stored.
    """

    def __init__(self, store: Store, publisher: Publisher) -> None:
        self._store = store
        self._publisher = publisher
        self._alerts: deque[tuple[NoticeKind, EngineEvent]] = deque()
        self._writer: asyncio.Task[None] | None = None

    def alert(self, event: EngineEvent) -> None:
        """Store ``event``'s notice for the admin chat, then publish it (never blocks).

        Alerts are stored one after the other, in the order they came; one the store
        refuses is tried again until it is stored.
        """
        kind = (NoticeKind.ARIA2_FATAL if isinstance(event, Aria2Fatal)
                else NoticeKind.ARIA2_DOWN if isinstance(event, Aria2Down)
                else NoticeKind.ARIA2_RESTARTED)
        self._alerts.append((kind, event))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._store_then_publish(),
                                                                  name="alerts")

    async def _store_then_publish(self) -> None:
        delay = _RETRY_FIRST
        while self._alerts:
            kind, event = self._alerts[0]
            try:
                await self._store.notices.add(kind, event.detail)
            except StoreError as error:
                log.warning("could not store the alert %r (%s); trying again in %.0f s",
                            event.detail, error, delay)
                await asyncio.sleep(delay)
                delay = min(_RETRY_MAX, delay * 2)
                continue
            except Exception:  # not the store's state: trying again cannot help
                log.exception("could not store the alert %r; it is told without a record",
                              event.detail)
            self._alerts.popleft()
            delay = _RETRY_FIRST
            self._publisher.emit(event)

    async def pending(self, per_chat: int = 50) -> list[Notice]:
        """Notices not yet sent nor given up, oldest first: at most ``per_chat`` of each
        chat, so one chat's failures never hide another chat's news."""
        return await self._store.notices.pending(per_chat)

    def watch(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call ``watcher()`` whenever a notice is stored; returns a function that stops it."""
        return self._store.notices.watch(watcher)

    async def done(self, notice_id: int, dropped: str | None = None) -> None:
        """Telegram confirmed the notice (or, with ``dropped``, it was given up: why)."""
        await self._store.notices.done(notice_id, dropped=dropped)

    async def failed(self, notice_id: int) -> None:
        """An attempt failed (network, outage); the notice stays pending."""
        await self._store.notices.failed(notice_id)

    async def forget_old(self) -> None:
        """Forget notices sent or given up more than :data:`KEEP_SENT` ago."""
        before = datetime.now(UTC).replace(tzinfo=None) - KEEP_SENT
        if forgotten := await self._store.notices.forget_sent(before):
            log.debug("forgot %d notices sent before %s", forgotten, before)

    async def close(self) -> None:
        """Let alerts still being written finish (a FATAL one is the last word), for at
        most :data:`_CLOSE_WAIT` seconds when the store keeps refusing them."""
        if self._writer is None or self._writer.done():
            return
        _done, pending = await asyncio.wait({self._writer}, timeout=_CLOSE_WAIT)
        if pending:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            log.error("stopping with %d aria2c alert(s) the database has not taken: %s",
                      len(self._alerts), "; ".join(event.detail for _, event in self._alerts))
