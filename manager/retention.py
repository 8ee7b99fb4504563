"""Retention: finished downloads leave the list after a while, their files if asked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from manager.clock import utcnow
from manager.contents import Contents
from manager.live import LiveDownloads
from manager.models import TorrentState
from manager.store import PurgedDownload, Store

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
    """

    def __init__(self, live: LiveDownloads, store: Store, contents: Contents) -> None:
        self._live = live
        self._store = store
        self._contents = contents

    async def purge_finished(self, older_than: timedelta, *, delete_files: bool) -> int:
        """:meth:`TorrentManager.purge_finished` (see there)."""
        if older_than < timedelta(0):
            raise ValueError("older_than must not be negative")
        cutoff = utcnow() - older_than
        finished = [s.value for s in TorrentState if s.is_final]
        purged = deleted = 0
        while True:
            async with self._live.lock:
                batch = await self._store.purge_finished(
                    states=finished, before=cutoff, limit=_BATCH, with_sources=delete_files
                )
            purged += len(batch)
            if delete_files and batch:
                in_use = await self._store.names_in_use(p.record.directory for p in batch)
                deleted += await asyncio.to_thread(self._delete_files, batch, in_use)
            if len(batch) < _BATCH:
                break
        if purged:
            days = older_than.total_seconds() / 86400
            detail = f"{purged} finished download(s) older than {days:g} days"
            if delete_files:
                detail += f", {deleted} file(s) deleted"
            await self._store.log("purge", chat_id=0, user_id=0, detail=detail)
            log.info("purged %s", detail)
        return purged

    def _delete_files(self, batch: Sequence[PurgedDownload],
                      in_use: set[tuple[str, str]]) -> int:
        """Delete the files of purged downloads (runs in a worker thread)."""
        deleted = 0
        for purged in batch:
            record = purged.record
            if (record.directory, record.name) in in_use:
                log.warning("purge kept the files of #%d: a listed download has the same name "
                            "%r in %s", record.id, record.name, Path(record.directory))
                continue
            deleted += self._contents.delete_purged(purged)
        return deleted
