"""The other nodes' downloads as events here: how the front's progress messages follow them.

A download's events come from the manager of the node that holds it, but the chat's progress
message is edited by the front's bot. While this node is the front, it reads every
:data:`LOOK_EVERY` seconds the rows that other nodes' polls keep up to date (bytes, speeds,
peers, state) and publishes what changed, as its own downloads' changes are published:
``TorrentStateChanged`` when the state moved, else ``TorrentProgress``. Completion and failure
news are stored notices, which reach the chat through the outbox whoever wrote them; these
events only keep the messages moving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from manager.errors import StoreError
from manager.events import Event, TorrentProgress, TorrentStateChanged
from manager.models import Torrent, TorrentState
from manager.store import DownloadRecord, Store

__all__ = ["LOOK_EVERY", "Elsewhere"]

log = logging.getLogger(__name__)

LOOK_EVERY = 2.0
"""Seconds between two reads of the other nodes' downloads (a progress message is edited
every 10 s at most)."""

Shown = Callable[[list[DownloadRecord]], Awaitable[list[Torrent]]]
"""Snapshots of rows as callers see them (with where each is)."""


def _key(record: DownloadRecord) -> tuple[object, ...]:
    """What a progress message shows of a download, and what moves it."""
    return (record.state, record.node, record.name, record.total_bytes, record.completed_bytes,
            record.upload_bytes, record.download_speed, record.upload_speed, record.seeders,
            record.peers, record.error, record.message_id)


class Elsewhere:
    """Publishes the changes of the downloads other nodes hold (or none yet).

    Parameters:
        store: the opened store.
        node: this node's name (its own downloads publish their own events).
        shown: makes the snapshots.
        emit: publishes an event to this node's subscribers.
    """

    def __init__(self, store: Store, node: str, shown: Shown,
                 emit: Callable[[Event], None]) -> None:
        self._store = store
        self._node = node
        self._shown = shown
        self._emit = emit

    async def run(self) -> None:
        """Publish what changed, every :data:`LOOK_EVERY` seconds, until cancelled; the
        first look publishes every one (the messages catch up with a new front)."""
        known: dict[int, tuple[object, ...]] = {}
        failing = False
        while True:
            try:
                records = await self._store.downloads.elsewhere(self._node, list(known))
                changed = [r for r in records
                           if r.node != self._node and known.get(r.id) != _key(r)]
                torrents = await self._shown(changed) if changed else []
            except StoreError as error:
                if not failing:
                    log.warning("cannot read the other nodes' downloads (%s); their progress "
                                "messages wait", error)
                failing = True
            else:
                failing = False
                for record, torrent in zip(changed, torrents, strict=True):
                    before = known.get(record.id)
                    moved = before is None or before[0] != record.state
                    self._emit(TorrentStateChanged(torrent) if moved
                               else TorrentProgress(torrent))
                known = {r.id: _key(r) for r in records
                         if r.node != self._node and not TorrentState(r.state).is_final}
            await asyncio.sleep(LOOK_EVERY)  # a period: nothing announces a progress write
