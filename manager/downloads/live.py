"""The manager's shared working memory: the lock and the unfinished downloads it tracks.

Every part of the manager (adding, control, tracking, retention) receives the one
:class:`LiveDownloads`; none keeps its own copy of a row. Identity is the row id: aria2's
GIDs change (a magnet's metadata GID is followed to its real one, every GID is learned again
after aria2c restarts), so the GID index is kept here, next to the rows, and changed in one
place (:meth:`LiveDownloads.set_gid`).
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from manager.aria2 import StallWatch
from manager.errors import DownloadNotFound
from manager.models import SourceKind, Torrent, TorrentState
from manager.store import DownloadRecord, Store

__all__ = ["LIVE_STATES", "LiveDownload", "LiveDownloads", "snapshot"]

LIVE_STATES = frozenset(s for s in TorrentState if not s.is_final)
"""States of the downloads kept in memory: all but the final ones."""
_RESERVING_STATES = frozenset(s.value for s in (
    TorrentState.QUEUED, TorrentState.METADATA, TorrentState.DOWNLOADING))
"""States of downloads that will still write what they lack: the free space is theirs."""


@dataclass(slots=True)
class LiveDownload:
    """The manager's working memory of one unfinished download (slotted: there is one per
    unfinished download, 100,000 of them at scale)."""

    record: DownloadRecord
    watch: StallWatch
    queue_position: int | None = None
    stuck_reason: str | None = None
    metadata_gids: frozenset[str] = frozenset()
    """GIDs known to be this magnet's metadata download (not its real one); one shared
    empty set until there is one (a set each would be 21 MiB at 100,000 downloads)."""
    claimed_name: str | None = None
    """A magnet added again after a cancel: the name its row had, whose kept files are this
    torrent's (the row now carries the ``dn=``). In memory only: after a restart before the
    metadata, a clash with them refuses it, which is safe."""
    trackers_checked: bool = False
    """With DHT off: its trackers were looked at for one aria2 can use."""
    last_status: str | None = None
    """aria2's status of it (``waiting``, ``active``, …) when its full status was last
    applied: the poll reads a waiting or paused download in full only when it differs."""

    @property
    def awaiting_metadata(self) -> bool:
        """A magnet whose files have not been checked yet (its size is still unknown)."""
        return (self.record.source_kind == SourceKind.MAGNET.value
                and self.record.total_bytes == 0)


def snapshot(record: DownloadRecord, live: LiveDownload | None = None) -> Torrent:
    """The frozen :class:`~manager.models.Torrent` that callers see of ``record``.

    Parameters:
        record: the stored row.
        live: its working memory, for the queue position and the stuck reason (None for a
            finished download).
    """
    state = TorrentState(record.state)
    return Torrent(
        id=record.id, info_hash=record.info_hash, name=record.name, chat_id=record.chat_id,
        user_id=record.user_id, state=state, source_kind=SourceKind(record.source_kind),
        total_bytes=record.total_bytes, completed_bytes=record.completed_bytes,
        upload_bytes=record.upload_bytes, download_speed=record.download_speed,
        upload_speed=record.upload_speed, seeders=record.seeders, peers=record.peers,
        queue_position=live.queue_position if live and state is TorrentState.QUEUED
        else None,
        error=record.error, stuck_reason=live.stuck_reason if live else None,
        message_id=record.message_id,
        path=_path(record.directory, record.name), directory=record.directory,
        created_at=record.created_at, completed_at=record.completed_at, node=record.node,
    )


def _path(directory: str, name: str) -> str:
    """``str(Path(directory) / name)`` without building the Path: one snapshot is made per
    row of a page (``ariabot list``, ``/status``) on the event loop, and the Path was a
    quarter of its cost. The directory is stored normalized; a name is one sanitized path
    component (or a folder of them), so the two agree."""
    return posixpath.join(directory, name) if name else directory


class LiveDownloads:
    """The lock, and the unfinished downloads by row id and by GID.

    Whoever reads aria2 and applies what it read, or changes a download in aria2 and in the
    store, holds :attr:`lock` across both: an answer read before a pause and applied after it
    would undo what the user just did.

    Parameters:
        store: the opened store (GIDs are saved as they are learned).
        clock: monotonic clock, for when tracking of a download began.

    Attributes:
        lock: the one lock of the manager.
        results_to_drop: GIDs whose finished results aria2 keeps and the next poll removes.
        changes: counts every change made here of which downloads are tracked, of their
            GIDs, or of a tracked one's state (a pause, a resume); the poll reads aria2's
            waiting list again after one (:mod:`manager.tracking.sweep`).
    """

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.lock = asyncio.Lock()
        self.results_to_drop: set[str] = set()
        self.changes = 0
        self._store = store
        self._clock = clock
        self._by_id: dict[int, LiveDownload] = {}
        self._by_gid: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, download_id: object) -> bool:
        return download_id in self._by_id

    def __iter__(self) -> Iterator[LiveDownload]:
        """The tracked downloads (a copy: the loop body may forget one)."""
        return iter(list(self._by_id.values()))

    def ids(self) -> list[int]:
        """Ids of the tracked downloads."""
        return list(self._by_id)

    def get(self, download_id: int) -> LiveDownload | None:
        """The working memory of one unfinished download, None when it is not tracked."""
        return self._by_id.get(download_id)

    def by_gid(self, gid: str) -> LiveDownload | None:
        """The tracked download aria2 holds under ``gid``, if any."""
        download_id = self._by_gid.get(gid)
        return self._by_id.get(download_id) if download_id is not None else None

    def knows_gid(self, gid: str | None) -> bool:
        """``gid`` is the current GID of a tracked download."""
        return gid is not None and gid in self._by_gid

    def drop_gid(self, gid: str) -> None:
        """Forget ``gid`` (not the download's own): reconcile finds its real GID."""
        if self._by_gid.pop(gid, None) is not None:
            self.changes += 1

    def remember(self, record: DownloadRecord) -> LiveDownload:
        """Track ``record`` (or take this newer copy of a tracked row)."""
        live = self._by_id.get(record.id)
        if live is None:
            live = self._by_id[record.id] = LiveDownload(record, StallWatch(self._clock()))
            self.changes += 1
        else:
            if live.record.state != record.state:  # a pause or resume moves the queue
                self.changes += 1
            live.record = record
        if record.gid and self._by_gid.get(record.gid) != record.id:
            self._by_gid[record.gid] = record.id
            self.changes += 1
        return live

    def forget(self, download_id: int) -> None:
        """Stop tracking a download (it ended, was cancelled or its add failed)."""
        live = self._by_id.pop(download_id, None)
        if live is not None:
            self.changes += 1
            if live.record.gid:
                self._by_gid.pop(live.record.gid, None)

    async def set_gid(self, download_id: int, gid: str) -> DownloadRecord:
        """Store that aria2 now holds this download under ``gid``; returns the row.

        Memory follows the store: the GID is remembered once it is written.
        """
        record = await self._store.downloads.update(download_id, gid=gid)
        assert record is not None
        live = self._by_id.get(download_id)
        if live is not None and live.record.gid:
            self._by_gid.pop(live.record.gid, None)
        self._by_gid[gid] = download_id
        self.changes += 1
        if live is not None:
            live.record = replace(live.record, gid=gid)
        return record

    async def record(self, download_id: int, chat_id: int | None = None) -> DownloadRecord:
        """A download's row: the tracked copy, else the stored one.

        Raises:
            DownloadNotFound: no such id (or, with ``chat_id``, another chat's).
        """
        live = self._by_id.get(download_id)
        record = live.record if live else await self._store.downloads.get(download_id)
        if record is None or (chat_id is not None and record.chat_id != chat_id):
            raise DownloadNotFound(f"no download #{download_id}")
        return record

    def snapshot(self, record: DownloadRecord, live: LiveDownload | None = None) -> Torrent:
        """:func:`snapshot` of ``record``, with its working memory when it is tracked."""
        return snapshot(record, live or self._by_id.get(record.id))

    def reserved(self, except_id: int | None = None) -> list[int]:
        """Bytes each running or queued download will still write (but ``except_id``)."""
        return [max(0, live.record.total_bytes - live.record.completed_bytes)
                for i, live in self._by_id.items()
                if i != except_id and live.record.state in _RESERVING_STATES]

    async def fail(self, download: LiveDownload, reason: str) -> Torrent:
        """Store that a tracked download ended in error (``reason`` is what the user reads),
        stop tracking it; returns its snapshot. It is forgotten before anything else may
        run: the failure's notice wakes readers, who must find the row, not the tracked
        copy from before."""
        download_id = download.record.id
        await self._store.downloads.update_many({download_id: {
            "state": TorrentState.ERROR.value, "error": reason, "download_speed": 0,
            "upload_speed": 0}})
        self.forget(download_id)
        updated = await self._store.downloads.get(download_id)
        assert updated is not None
        return snapshot(updated)
