"""Retention: finished downloads leave the list after a while, their files if asked."""

from __future__ import annotations

import logging
from datetime import timedelta

from manager.actions.control import StopMirror
from manager.clock import utcnow
from manager.downloads import Contents, LiveDownloads
from manager.events import DownloadsPurged, Publisher
from manager.models import TorrentState
from manager.store import Store

__all__ = ["Retention"]

log = logging.getLogger(__name__)

_BATCH = 200
"""Rows purged per transaction: bounds the memory sources take when files are deleted."""


class Retention:
    """Purges finished downloads.

    Parameters:
        live: the shared lock (a purge batch is taken under it).
        store: the opened store.
        contents: deletes a purged download's files.
        stop_mirror: stops a purged download's upload to the mirror (before its files go).
        publisher: where the event of each batch purged goes.
        node: this node: only its downloads are purged (their files are on its disk); None:
            all of them.
    """

    def __init__(self, live: LiveDownloads, store: Store, contents: Contents, *,
                 stop_mirror: StopMirror, publisher: Publisher, node: str | None) -> None:
        self._live = live
        self._publisher = publisher
        self._node = node
        self._store = store
        self._contents = contents
        self._stop_mirror = stop_mirror

    async def purge_finished(self, older_than: timedelta, *, delete_files: bool) -> int:
        """:meth:`TorrentManager.purge_finished` (see there)."""
        if older_than < timedelta(0):
            raise ValueError("older_than must not be negative")
        cutoff = utcnow() - older_than
        finished = [s.value for s in TorrentState if s.is_final]
        purged = deleted = 0
        while True:
            async with self._live.lock:
                batch = await self._store.downloads.purge_finished(
                    states=finished, before=cutoff, limit=_BATCH, with_sources=delete_files,
                    node=self._node)
            purged += len(batch)
            if batch:
                self._publisher.emit(DownloadsPurged(tuple(
                    (gone.record.id, gone.record.chat_id) for gone in batch)))
            for gone in batch:  # nothing of a download that left the list is uploaded
                await self._stop_mirror(gone.record.id, 0)
            if delete_files:
                for gone in batch:  # each through the ownership rule (Contents.owner)
                    deleted += (await self._contents.delete_purged(gone)).files
            if len(batch) < _BATCH:
                break
        if purged:
            days = older_than.total_seconds() / 86400
            detail = f"{purged} finished download(s) older than {days:g} days"
            if delete_files:
                detail += f", {deleted} file(s) deleted"
            await self._store.activity.log("purge", chat_id=0, user_id=0, detail=detail)
            log.info("purged %s", detail)
        return purged
