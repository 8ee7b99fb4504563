"""Mirror jobs: a finished download's own files, uploaded to the rclone destination.

Each download uploads into a place of its own below the destination,
``<chat id>/<download id>-<first 8 digits of its info-hash>/`` (:func:`place_of`), so that
no download's upload ever lands on another's: same names from two chats, or in one chat
after a cancel or a purge, go to different places. The same torrent added again in its chat
after a cancel keeps its id and info-hash, so its place: the files there are the same.

A job is stored (table ``mirrors``) before it starts, so a restart of ariabot resumes it;
the transfer itself is the injected :class:`~manager.delivery.uploader.Uploader`'s (rclone). One job
at a time uploads (they share the uplink); the others wait as ``queued``. A failed attempt
is retried with a doubling delay, then reported with the uploader's reason. Only after the
upload is verified at the destination, and only in ``move`` mode, are the local files
deleted, and then only what :class:`~manager.downloads.contents.Contents` finds the download owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from manager.config import MirrorConfig
from manager.delivery.mirrorfiles import own_complete_files
from manager.delivery.uploader import Uploader, UploadError, UploadJob, UploadStats
from manager.downloads import Contents, Deletion, LiveDownloads
from manager.errors import (
    Aria2Unavailable,
    DownloadNotFound,
    InvalidState,
    MirrorOff,
    StoreError,
)
from manager.events import (
    Event,
    MirrorChanged,
    MirrorDone,
    MirrorFailed,
    Publisher,
    TorrentCompleted,
    TorrentEvent,
)
from manager.models import Mirror, MirrorState, Torrent, TorrentState
from manager.nodes import Ownership
from manager.store import DownloadRecord, MirrorRecord, Store
from manager.usertext import shown_destination

__all__ = ["Mirrors", "place_of"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_STORE_RETRY_FIRST = 0.5
_STORE_RETRY_MAX = 10.0
"""Seconds a mirror waits before it asks the store again (doubling up to the max)."""

_ACTIVE = frozenset(s.value for s in MirrorState if not s.is_final)
_FINISHED_DOWNLOAD = frozenset({TorrentState.COMPLETE.value, TorrentState.SEEDING.value})

StopSeeding = Callable[[int], Awaitable[None]]
"""Stops a seeding download (it becomes complete), by id."""

DeleteMoved = Callable[[int, Sequence[str]], Awaitable[Deletion | None]]
"""Deletes a finished download's uploaded files (by id, names in its folder) under the
manager's lock, deciding against its row there; None when it is no longer finished."""


def place_of(record: DownloadRecord) -> str:
    """The download's own place below the mirror destination (see the module's doc): only
    digits and hex, never a name a torrent chose, so it is short and safe everywhere."""
    return f"{record.chat_id}/{record.id}-{record.info_hash[:8]}"


@dataclass
class _Job:
    """One mirror in this process: its row, what is known of the transfer, its task."""

    record: MirrorRecord
    top: str = ""
    stats: UploadStats | None = None
    retry_at: float | None = None
    task: asyncio.Task[None] | None = None
    stopping: bool = False
    """Stopped by a user (not by ariabot's shutdown, which leaves it to resume)."""
    finishing: bool = False
    """Its upload is verified: it ends by itself (a move decides under the lock)."""
    files: tuple[str, ...] = field(default=())


class Mirrors:
    """Requests, runs, retries, verifies and stops mirror jobs.

    Parameters:
        config: the mirror settings, or None when mirroring is off.
        live: the manager's shared state (to find downloads).
        store: the opened store.
        contents: what a download owns on disk.
        uploader: does the transfers (rclone), or None when mirroring is off.
        publisher: where the events go.
        stop_seeding: stops a seeding download before a move uploads its files.
        delete_moved: deletes a moved download's files (see :data:`DeleteMoved`).
        ownership: mirrors upload this node's downloads only (their files are here).
        sleep: ``asyncio.sleep``-like (injected by tests).
        clock: monotonic clock (injected by tests).
    """

    def __init__(self, config: MirrorConfig | None, *, live: LiveDownloads, store: Store,
                 contents: Contents, uploader: Uploader | None, publisher: Publisher,
                 stop_seeding: StopSeeding, delete_moved: DeleteMoved, ownership: Ownership,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config if uploader is not None else None
        self._ownership = ownership
        self._live = live
        self._store = store
        self._contents = contents
        self._uploader = uploader
        self._publisher = publisher
        self._stop_seeding = stop_seeding
        self._delete_moved = delete_moved
        self._sleep = sleep
        self._clock = clock
        self._jobs: dict[int, _Job] = {}
        self._requesting: set[int] = set()
        """Downloads whose request is being stored (a double press must not start two)."""
        self._turn = asyncio.Lock()
        """One upload at a time."""
        self._tasks: set[asyncio.Task[object]] = set()
        self._closed = False

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume the mirrors a stopped (or killed) ariabot left unfinished."""
        if self._config is None or self._uploader is None:
            return
        for stored in await self._store.mirrors.list(states=_ACTIVE):
            download = await self._store.downloads.get(stored.download_id)
            if download is not None and not self._ownership.owns(download):
                continue  # its files are on another node's disk: that node resumes it
            log.info("resuming the mirror of #%s (%s)", stored.download_id, stored.state)
            record = stored
            if stored.folder is None and download is not None:
                # Stored before downloads had places: it goes on in its own, not the root.
                record = await self._store.mirrors.update(
                    stored.download_id, folder=place_of(download)) or stored
            self._launch(_Job(record))

    async def close(self) -> None:
        """Stop the transfers; unfinished mirrors stay stored and resume at the next start."""
        self._closed = True
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        tasks += list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- events in and out -------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """With automatic mirroring, a completed download is mirrored (a subscriber)."""
        if (self._config is None or not self._config.auto or self._closed
                or not isinstance(event, TorrentCompleted)):
            return
        torrent = event.torrent
        task = asyncio.get_running_loop().create_task(
            self._auto(torrent), name=f"mirror-auto-{torrent.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def forget(self, download_id: int) -> None:
        """A cancelled download is added again: its earlier mirror is no longer its own
        (stopped if it still ran; what was uploaded stays at the destination)."""
        job = self._jobs.pop(download_id, None)
        if job is not None and job.task is not None and not job.task.done():
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.task
        await self._store.mirrors.forget(download_id)

    async def _auto(self, torrent: Torrent) -> None:
        previous = await self._store.mirrors.get(torrent.id)
        if previous is not None and MirrorState(previous.state) is MirrorState.DONE:
            return  # mirrored once already: a completion told again is not a new request
        try:
            await self.request(torrent.id, None, torrent.user_id, auto=True)
        except (InvalidState, DownloadNotFound) as error:
            log.info("#%s is not mirrored automatically: %s", torrent.id, error)

    def enrich(self, event: Event) -> Event:
        """Put the download's mirror (as this process knows it) into a torrent event."""
        if not isinstance(event, TorrentEvent) or event.torrent.mirror is not None:
            return event
        job = self._jobs.get(event.torrent.id)
        if job is None:
            return event
        return dataclasses.replace(event, torrent=self._with_mirror(event.torrent, job))

    async def attach(self, torrents: list[Torrent]) -> list[Torrent]:
        """The same snapshots with their mirrors (one query for those not in memory)."""
        if self._config is None or not torrents:
            return torrents
        missing = [t.id for t in torrents if t.id not in self._jobs]
        stored = {r.download_id: r for r in await self._store.mirrors.list(download_ids=missing)
                  } if missing else {}
        result = []
        for torrent in torrents:
            job = self._jobs.get(torrent.id)
            if job is None and torrent.id in stored:
                job = _Job(stored[torrent.id], top=_top_of(torrent))
            result.append(self._with_mirror(torrent, job) if job is not None else torrent)
        return result

    @property
    def enabled(self) -> bool:
        """True when :meth:`request` can mirror (a destination is configured)."""
        return self._config is not None

    # --- what users ask ----------------------------------------------------------------------

    async def request(self, download_id: int, chat_id: int | None, user_id: int, *,
                      auto: bool = False) -> Torrent:
        """Mirror a finished download (again, if an earlier mirror ended).

        Raises:
            MirrorOff: mirroring is not configured.
            DownloadNotFound: no such download (in this chat).
            InvalidState: not finished, already being mirrored, or its files were moved.
        """
        if self._config is None:
            raise MirrorOff()
        if download_id in self._requesting:  # a second press while the first is stored
            raise InvalidState(f"#{download_id} is already being mirrored")
        self._requesting.add(download_id)
        try:
            return await self._request(self._config, download_id, chat_id, user_id, auto)
        finally:
            self._requesting.discard(download_id)

    async def _request(self, config: MirrorConfig, download_id: int, chat_id: int | None,
                       user_id: int, auto: bool) -> Torrent:
        record = await self._live.record(download_id, chat_id)
        await self._ownership.check(record)
        if record.state not in _FINISHED_DOWNLOAD:
            raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}; only a "
                               "finished download can be mirrored")
        job = self._jobs.get(download_id)
        if job is not None and not MirrorState(job.record.state).is_final:
            raise InvalidState(f"#{download_id} is already being mirrored")
        previous = await self._store.mirrors.get(download_id)
        if previous is not None and previous.local_deleted:
            raise InvalidState(f"#{download_id} was moved to the mirror already; its files "
                               "are no longer here")
        if previous is not None and not MirrorState(previous.state).is_final:
            raise InvalidState(f"#{download_id} is already being mirrored")
        mirror = await self._store.mirrors.start(
            download_id, chat_id=record.chat_id, user_id=user_id, remote=config.remote,
            move=config.move, state=MirrorState.QUEUED.value, folder=place_of(record))
        await self._store.activity.log("mirror", chat_id=record.chat_id, user_id=user_id,
                                       download_id=download_id, detail="auto" if auto else "")
        job = _Job(mirror, top=record.name)
        self._launch(job)
        return self._with_mirror(self._live.snapshot(record), job)

    async def stop(self, download_id: int, chat_id: int | None, user_id: int) -> Torrent:
        """Stop a download's mirror that is waiting or uploading; what was uploaded stays.

        Raises:
            MirrorOff, DownloadNotFound, InvalidState (no mirror under way).
        """
        if self._config is None:
            raise MirrorOff()
        record = await self._live.record(download_id, chat_id)
        job = self._jobs.get(download_id)
        if job is None or job.task is None or job.task.done():
            raise InvalidState(f"#{download_id} is not being mirrored")
        job.stopping = True
        job.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job.task
        await self._store.activity.log("mirror-stop", chat_id=record.chat_id, user_id=user_id,
                                       download_id=download_id)
        return self._with_mirror(self._live.snapshot(record), job)

    async def stop_with_download(self, download_id: int, user_id: int) -> bool:
        """The download was cancelled or purged: its upload stops (what was uploaded stays),
        so nothing more of it is uploaded and a move never deletes it. A job whose upload
        is verified already is left to end: its move decides under the lock, against the
        row, and finds the download gone or cancelled.

        Returns:
            Whether an upload (waiting or under way) was stopped.
        """
        job = self._jobs.get(download_id)
        if job is None or job.task is None or job.task.done() or job.finishing:
            return False
        job.stopping = True
        job.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job.task
        await self._store.activity.log("mirror-stop", chat_id=job.record.chat_id, user_id=user_id,
                                       download_id=download_id, detail="with the download")
        return True

    # --- one job -----------------------------------------------------------------------------

    def _launch(self, job: _Job) -> None:
        self._jobs[job.record.download_id] = job
        job.task = asyncio.get_running_loop().create_task(
            self._run(job), name=f"mirror-{job.record.download_id}")

    async def _run(self, job: _Job) -> None:
        """Wait for the turn, then upload with retries; a user's stop ends it as stopped."""
        try:
            download = await self._stored(job, "read its download",
                                          lambda: self._store.downloads.get(job.record.download_id))
            if job.record.pid is not None and self._uploader is not None and download:
                # A killed ariabot's rclone may still be uploading the same files.
                await asyncio.to_thread(self._uploader.stop_leftover, job.record.pid,
                                        Path(download.directory))
                await self._save(job, pid=None)
            async with self._turn:
                await self._attempts(job)
        except asyncio.CancelledError:
            if job.stopping:  # the user waits for it: asked once, not through an outage
                await self._save(job, state=MirrorState.STOPPED, pid=None, patient=False)
                self._emit(MirrorChanged, job)
            raise
        except Exception as error:  # a bug or the store: report it, never leave it hanging
            log.exception("the mirror of #%s broke", job.record.download_id)
            with contextlib.suppress(Exception):
                await self._finish_failed(job, f"ariabot could not run it ({type(error).__name__})")

    async def _attempts(self, job: _Job) -> None:
        config = self._config
        assert config is not None and self._uploader is not None
        record = await self._stored(job, "read its download",
                                    lambda: self._store.downloads.get(job.record.download_id))
        if record is None:  # the download left the list meanwhile
            await self._save(job, state=MirrorState.STOPPED)
            return
        # An attempt cut by a stop is tried again; never past the attempts allowed now
        # (ARIABOT_MIRROR_ATTEMPTS may have been lowered since), and never none.
        first = min(max(1, job.record.attempt), config.attempts)
        for attempt in range(first, config.attempts + 1):
            upload = await self._stored(job, "list its files", lambda: self._job_of(record, job))
            if not upload.files:
                await self._finish_failed(job, "its files are no longer complete on this "
                                          "server")
                return
            if job.record.move and record.state == TorrentState.SEEDING.value:
                await self._stop_seeding_when_able(job, record.id)
            job.retry_at = None
            await self._save(job, state=MirrorState.UPLOADING, attempt=attempt, error=None)
            self._emit(MirrorChanged, job)
            try:
                await self._uploader.copy(upload, lambda stats: self._progress(job, stats),
                                          lambda pid: self._started(job, pid))
                await self._save(job, state=MirrorState.VERIFYING, pid=None)
                self._emit(MirrorChanged, job)
                await self._uploader.verify(upload)
            except UploadError as error:
                await self._save(job, pid=None)
                if not error.retryable or attempt >= config.attempts:
                    await self._finish_failed(job, str(error))
                    return
                delay = min(config.retry_delay * 2 ** (attempt - 1), config.retry_delay_max)
                log.warning("mirror of #%s failed (attempt %d of %d), retrying in %.0fs: %s",
                            record.id, attempt, config.attempts, delay, error)
                await self._retry_after(job, delay, str(error))
                continue
            await self._finish_done(job, record, upload)
            return

    async def _stop_seeding_when_able(self, job: _Job, download_id: int) -> None:
        """A move's files must stay as they are: the download stops seeding first. aria2c
        restarting is waited out, not counted as a failed attempt: it comes back (or ariabot
        stops, and the move resumes at the next start)."""
        config = self._config
        assert config is not None
        delay = config.retry_delay
        while True:
            try:
                await self._stop_seeding(download_id)
                return
            except Aria2Unavailable as error:
                log.warning("the move of #%s waits for the downloader (%s)", download_id, error)
                await self._retry_after(job, delay, str(error))
                delay = min(delay * 2, config.retry_delay_max)

    async def _retry_after(self, job: _Job, delay: float, error: str) -> None:
        """Show the mirror as retrying in ``delay`` seconds (and why), then wait them."""
        job.retry_at = self._clock() + delay
        job.stats = None
        await self._save(job, state=MirrorState.RETRYING, error=error)
        self._emit(MirrorChanged, job)
        await self._sleep(delay)

    async def _job_of(self, record: DownloadRecord, job: _Job) -> UploadJob:
        """The upload of the download's own complete files (see
        :mod:`manager.delivery.mirrorfiles`)."""
        files = await own_complete_files(record, self._store, self._contents)
        job.files = files
        upload = UploadJob(record.id, Path(record.directory), files, job.record.remote,
                           job.record.folder or "")
        job.top = upload.top or job.top
        return upload

    async def _finish_done(self, job: _Job, record: DownloadRecord, upload: UploadJob) -> None:
        assert self._uploader is not None
        job.finishing = True
        link = await self._uploader.link(upload)
        deleted = False
        # Decided under the lock, against the row as it is then: not once it was cancelled
        # (its files stay then), purged or added again meanwhile.
        deletion = await self._delete_moved(record.id, upload.files) if job.record.move else None
        if deletion is not None:
            deleted = deletion.kept is None
            detail = f"{deletion.files} files, moved to the mirror"
            if deletion.kept is not None:
                detail = f"kept (not moved): {deletion.kept}"
            await self._stored(job, "log the deletion", lambda: self._store.activity.log(
                "delete-files", chat_id=record.chat_id, user_id=job.record.user_id,
                download_id=record.id, detail=detail))
        if job.stats is not None:
            job.stats = dataclasses.replace(job.stats, bytes=job.stats.total_bytes, speed=0,
                                            eta_seconds=None)
        await self._save(job, state=MirrorState.DONE, link=link, local_deleted=deleted,
                         error=None)
        await self._stored(job, "log its end", lambda: self._store.activity.log(
            "mirror-done", chat_id=record.chat_id, user_id=job.record.user_id,
            download_id=record.id))
        log.info("#%s is mirrored to %s", record.id, _shown(job.record, job.top))
        self._emit(MirrorDone, job)

    async def _finish_failed(self, job: _Job, reason: str) -> None:
        job.retry_at = None
        await self._save(job, state=MirrorState.FAILED, error=reason, pid=None)
        await self._stored(job, "log its end", lambda: self._store.activity.log(
            "mirror-failed", chat_id=job.record.chat_id, user_id=job.record.user_id,
            download_id=job.record.download_id, detail=reason))
        log.warning("mirror of #%s failed: %s", job.record.download_id, reason)
        self._emit(MirrorFailed, job)

    def _progress(self, job: _Job, stats: UploadStats) -> None:
        job.stats = stats
        self._emit(MirrorChanged, job)

    def _started(self, job: _Job, pid: int) -> None:
        # Asked once: a write still waiting for the store could land after the upload's end.
        task = asyncio.get_running_loop().create_task(self._save(job, pid=pid, patient=False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(self, job: _Job, *, state: MirrorState | None = None,
                    patient: bool = True, **values: object) -> None:
        """Write the job's row; ``patient``: through a store outage (else a failure is
        logged and the row stays as it was)."""
        if state is not None:
            values["state"] = state.value
        if job.stats is not None:
            values.setdefault("bytes", job.stats.bytes)
            values.setdefault("total_bytes", job.stats.total_bytes)
        def update() -> Awaitable[MirrorRecord | None]:
            return self._store.mirrors.update(job.record.download_id, **values)
        if patient:
            updated = await self._stored(job, "save its state", update)
        else:
            try:
                updated = await update()
            except StoreError as error:
                log.warning("the mirror of #%s could not write %s (%s)",
                            job.record.download_id, ", ".join(sorted(values)), error)
                return
        if updated is not None:
            job.record = updated

    async def _stored(self, job: _Job, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call`` (the store, for ``job``), asked again until the store answers: a mirror
        outlives a database restart or a lock held past its wait, and is never left
        "uploading" by a write that failed (the nodes' promises machine found that after a
        PostgreSQL restart)."""
        delay = _STORE_RETRY_FIRST
        while True:
            try:
                return await call()
            except StoreError as error:
                log.warning("the mirror of #%s waits for the database to %s (%s); asking "
                            "again in %.1f s", job.record.download_id, what, error, delay)
                await self._sleep(delay)
                delay = min(delay * 2, _STORE_RETRY_MAX)

    def _emit(self, kind: type[TorrentEvent], job: _Job) -> None:
        record = self._live.get(job.record.download_id)
        if record is not None:
            torrent = self._live.snapshot(record.record, record)
            self._publisher.emit(kind(self._with_mirror(torrent, job)))
            return
        task = asyncio.get_running_loop().create_task(self._emit_finished(kind, job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit_finished(self, kind: type[TorrentEvent], job: _Job) -> None:
        """Emit for a download that is no longer live (complete): read its row first."""
        row = await self._stored(job, "read its download",
                                 lambda: self._store.downloads.get(job.record.download_id))
        if row is not None:
            self._publisher.emit(kind(self._with_mirror(self._live.snapshot(row), job)))

    def _with_mirror(self, torrent: Torrent, job: _Job) -> Torrent:
        record, stats = job.record, job.stats
        state = MirrorState(record.state)
        top = job.top or _top_of(torrent)
        retry_in = (max(0.0, job.retry_at - self._clock())
                    if job.retry_at is not None and state is MirrorState.RETRYING else None)
        mirror = Mirror(
            state=state, destination=_shown(record, top), move=record.move,
            bytes=stats.bytes if stats else record.bytes,
            total_bytes=stats.total_bytes if stats else record.total_bytes,
            speed=stats.speed if stats and state is MirrorState.UPLOADING else 0,
            eta_seconds=stats.eta_seconds if stats and state is MirrorState.UPLOADING
            else None,
            attempt=record.attempt,
            attempts=self._config.attempts if self._config else record.attempt,
            retry_in=retry_in, error=record.error, link=record.link,
            local_deleted=record.local_deleted,
        )
        return dataclasses.replace(torrent, mirror=mirror)


def _shown(record: MirrorRecord, top: str) -> str:
    """Where the mirror goes, fit for a chat: its place, then its top entry."""
    return shown_destination(record.remote, "/".join(p for p in (record.folder, top) if p))


def _top_of(torrent: Torrent) -> str:
    return Path(torrent.path).name if torrent.path else torrent.name
