"""Pause, resume and cancel of a download that no node claimed yet: only its row changes.

On a database that nodes share, a new download waits in the shared queue
(:mod:`manager.store.placements`) until a node with a free slot claims it. Until then no
aria2c and no disk holds any of it, so whichever node a user reaches changes it. Each change
is written only while the download is still unclaimed: one that comes after a claim returns
None, and the caller reads the row again and has its node do it (:mod:`manager.actions.control`).
"""

from __future__ import annotations

from collections.abc import Collection

from manager.downloads import LiveDownloads
from manager.events import Publisher, TorrentCancelled, TorrentPaused, TorrentResumed
from manager.models import Torrent, TorrentState
from manager.store import CLAIMABLE, DownloadRecord, Store

__all__ = ["Unplaced"]

_CANCELLABLE = (*CLAIMABLE, TorrentState.PAUSED.value)

_EVENTS = {TorrentState.PAUSED: TorrentPaused, TorrentState.QUEUED: TorrentResumed,
           TorrentState.CANCELLED: TorrentCancelled}


class Unplaced:
    """Changes of downloads waiting in the shared queue.

    Parameters:
        live: the shared lock and tracked downloads (their snapshots).
        store: the opened store.
        publisher: where the events go (the chat's message changes as for any download).
    """

    def __init__(self, live: LiveDownloads, store: Store, publisher: Publisher) -> None:
        self._live = live
        self._store = store
        self._publisher = publisher

    async def pause(self, record: DownloadRecord, user_id: int) -> Torrent | None:
        """Hold it out of the queue: no node claims it until it is resumed."""
        return await self._change(record, CLAIMABLE, TorrentState.PAUSED, user_id, "pause")

    async def resume(self, record: DownloadRecord, user_id: int) -> Torrent | None:
        """Put it back in the queue, in its place (its id), and tell the nodes."""
        return await self._change(record, (TorrentState.PAUSED.value,), TorrentState.QUEUED,
                                  user_id, "resume")

    async def cancel(self, record: DownloadRecord, user_id: int) -> Torrent | None:
        """Take it out of the list's work for good (it has no files anywhere)."""
        return await self._change(record, _CANCELLABLE, TorrentState.CANCELLED, user_id,
                                  "cancel")

    async def _change(self, record: DownloadRecord, states: Collection[str],
                      state: TorrentState, user_id: int, action: str) -> Torrent | None:
        updated = await self._store.placements.change(record.id, states,
                                                      {"state": state.value, "error": None})
        if updated is None:
            return None
        await self._store.activity.log(action, chat_id=record.chat_id, user_id=user_id,
                                       download_id=record.id)
        torrent = self._live.snapshot(updated)
        self._publisher.emit(_EVENTS[state](torrent))
        return torrent
