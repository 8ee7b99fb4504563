"""Claiming work from the queue that nodes share: this node takes what it has slots for.

A download added on a database that nodes share waits without a node
(:mod:`manager.store.placements`). Each node claims the oldest waiting downloads while it has
free slots and room, and no other live node has more free slots, and starts them in its
aria2c. It looks when it hears one was queued
(``NOTIFY``, the same instant on every node: whichever claims first takes it, the others skip
it), when one of its own downloads stops holding a slot (finished, paused, cancelled, failed),
after each (re)connection of its listener, and every :data:`LOOK_EVERY` seconds in case a
notification was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from manager.errors import NodeReplaced, StoreError
from manager.events import (
    Event,
    TorrentCancelled,
    TorrentCompleted,
    TorrentFailed,
    TorrentPaused,
    TorrentStateChanged,
)
from manager.nodes.passes import Passes
from manager.store import QUEUE_CHANNEL, DownloadRecord, Listener, Store

__all__ = ["LOOK_EVERY", "Placement"]

log = logging.getLogger(__name__)

LOOK_EVERY = 5.0
"""Seconds between two looks at the queue when nothing was heard (a lost notification)."""

_FREES_A_SLOT = (TorrentCompleted, TorrentStateChanged, TorrentFailed, TorrentPaused,
                 TorrentCancelled)
"""What this node's downloads do when one may have stopped holding a slot."""


class Placement:
    """Claims queued downloads for this node and hands them to ``start``.

    Parameters:
        store: the opened store (on a database nodes share).
        node: this node's name.
        slots: downloads that run here at once.
        dead_after: seconds of silence after which another node is not counted.
        room: bytes a new download may take here (free space less what is owed).
        directory_of: a chat's folder here, made when missing (runs on the store's thread).
        start: adds the claimed downloads to this node's aria2c.
    """

    def __init__(self, store: Store, node: str, slots: int, dead_after: float, *,
                 room: Callable[[], Awaitable[int]], directory_of: Callable[[int], str],
                 start: Callable[[Sequence[DownloadRecord]], Awaitable[None]]) -> None:
        self._store = store
        self._node = node
        self._slots = slots
        self._dead_after = dead_after
        self._room = room
        self._directory_of = directory_of
        self._start = start
        self._claiming = Passes(self._claim_once)
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener = Listener(store.url, (QUEUE_CHANNEL,), self._heard, self.look)

    def start(self) -> None:
        """Claim now, and whenever work may have come, until :meth:`close`."""
        self._spawn(self._listener.run(), "hear the queue")
        self._spawn(self._look_now_and_then(), "look at the queue")

    async def close(self) -> None:
        """Stop claiming (what was claimed runs on; the rest waits for the next look)."""
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def on_event(self, event: Event) -> None:
        """A publisher subscriber: one of this node's downloads may have freed its slot
        (another node's, published by :mod:`~manager.nodes.elsewhere`, frees none here)."""
        if isinstance(event, _FREES_A_SLOT) and event.torrent.node in (self._node, None):
            self.look()

    def look(self) -> None:
        """Claim what fits, soon (looks asked for while one runs are one more look)."""
        self._spawn(self.claim(), "claim from the queue")

    def _heard(self, _channel: str, _payload: str) -> None:
        self.look()

    async def _look_now_and_then(self) -> None:
        while True:
            await self.claim()
            await asyncio.sleep(LOOK_EVERY)  # a period: the fallback of the notifications

    async def claim(self) -> None:
        """Claim the oldest queued downloads this node has free slots and room for, and
        start them; a look asked for meanwhile runs once more after."""
        await self._claiming.run()

    async def _claim_once(self) -> bool:
        """One claim; True when it claimed some (perhaps more fit now)."""
        try:
            room = await self._room()
            claimed = await self._store.placements.claim(
                self._node, self._slots, room, self._directory_of, dead_after=self._dead_after)
        except NodeReplaced:
            return False  # the heartbeat finds out, and stops this node
        except (StoreError, OSError) as error:
            log.warning("cannot look at the queue (%s); looking again in %.0f s",
                        error, LOOK_EVERY)
            return False
        if not claimed:
            return False
        log.info("claimed %s from the queue", ", ".join(f"#{record.id}" for record in claimed))
        await self._start(claimed)
        return True

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
