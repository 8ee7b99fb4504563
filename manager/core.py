"""TorrentManager: the one API through which downloads are added, watched and controlled.

It knows aria2 (through :class:`~manager.aria2rpc.Aria2Rpc`) and the store, and nothing of
Telegram. Identity is the row id (public) and the info-hash; aria2's GIDs are a column that
changes: a magnet's metadata GID is followed to its ``followedBy`` download, and every GID
is learned again by info-hash after aria2c restarts.

Where news comes from:

* aria2's WebSocket notifications (start, pause, stop, complete, error, bt-complete) trigger
  an immediate refresh of just those GIDs: completion is seen within milliseconds;
* one batched poll every ``progress_interval`` seconds (one ``system.multicall`` of
  tellActive/tellWaiting/tellStopped, only :data:`~manager.tracking.POLL_KEYS`) feeds progress,
  written in ONE transaction for the rows that changed;
* a reconcile after every (re)connection to aria2 re-learns GIDs and re-adds from the stored
  source any download aria2 lost, so nothing is lost and nothing is duplicated.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import peewee

from manager.aria2rpc import Aria2Rpc, RpcFault
from manager.compat import check_downloadable
from manager.errors import (
    AlreadyDownloading,
    Aria2Error,
    Aria2Unavailable,
    DownloadNotFound,
    InvalidSource,
    InvalidState,
    NotEnoughSpace,
)
from manager.events import (
    Aria2Down,
    Aria2Fatal,
    Aria2Restarted,
    Event,
    MetadataReceived,
    TorrentAdded,
    TorrentCancelled,
    TorrentCompleted,
    TorrentFailed,
    TorrentPaused,
    TorrentProgress,
    TorrentResumed,
    TorrentStateChanged,
)
from manager.files import (
    chat_folder,
    control_file,
    delete_download_files,
    free_bytes,
    has_unverified_data,
    is_inside,
    top_entry,
)
from manager.magnets import MagnetLink, parse_magnet
from manager.metainfo import TorrentMeta, parse_torrent
from manager.models import FileEntry, SourceKind, Torrent, TorrentState
from manager.notifications import ListenerHealth, NotificationListener
from manager.padfiles import is_pad, pad_options, pad_scratch, remove_pad_scratch
from manager.store import DownloadRecord, PurgedDownload, Store
from manager.tracking import (
    POLL_KEYS,
    Observation,
    StallWatch,
    derive_state,
    error_text,
    unreachable_reason,
)

__all__ = ["AddResult", "ManagerConfig", "Subscriber", "TorrentManager"]

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]

_LIVE_STATES = frozenset(s for s in TorrentState if not s.is_final)
_RESERVING_STATES = frozenset(s.value for s in (
    TorrentState.QUEUED, TorrentState.METADATA, TorrentState.DOWNLOADING))
"""States of downloads that will still write what they lack: the free space is theirs."""
_DUPLICATE = 12
"""aria2's error code for "InfoHash … is already registered"."""
_LIST_ALL = 100_000
"""tellWaiting/tellStopped page size: larger than any queue ariabot keeps."""


@dataclass(frozen=True)
class ManagerConfig:
    """What the manager needs to know of the settings.

    Attributes:
        download_dir: downloads root; a chat's files go to ``torrents/<chat_id>/`` below it.
        progress_interval: seconds between two progress polls.
        torrent_max_bytes: largest .torrent accepted.
        bt_stop_timeout: aria2's dead-torrent timeout, to explain such an error.
        folder_mode: permissions of new chat folders.
        aria2_version: the running aria2c's version, e.g. ``(1, 36, 0)``: what it cannot
            download is refused at add (:mod:`manager.compat`); None when not known.
        enable_dht: whether aria2 runs DHT; without it, udp:// trackers go unused too.
    """

    download_dir: Path
    progress_interval: float = 5.0
    torrent_max_bytes: int = 10_000_000
    bt_stop_timeout: int = 900
    folder_mode: int = 0o700
    aria2_version: tuple[int, ...] | None = None
    enable_dht: bool = True


@dataclass(frozen=True)
class AddResult:
    """What :meth:`TorrentManager.add` did: a new download, or the one already there."""

    torrent: Torrent
    existing: bool = False
    note: str | None = None


@dataclass
class _Live:
    """The manager's working memory of one unfinished download."""

    record: DownloadRecord
    watch: StallWatch
    queue_position: int | None = None
    stuck_reason: str | None = None
    metadata_gids: set[str] = field(default_factory=set)
    """GIDs known to be this magnet's metadata download (not its real one)."""
    trackers_checked: bool = False
    """With DHT off: its trackers were looked at for one aria2 can use."""

    @property
    def awaiting_metadata(self) -> bool:
        """A magnet whose files have not been checked yet (its size is still unknown)."""
        return (self.record.source_kind == SourceKind.MAGNET.value
                and self.record.total_bytes == 0)


def _size(value: int) -> str:
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"  # pragma: no cover - the loop always returns


class TorrentManager:
    """Adds, tracks, stores and controls downloads.

    Parameters:
        rpc: the aria2 adapter (loopback, secret).
        store: the opened store.
        config: paths and intervals.
        clock: monotonic clock (injected by tests).
        disk_usage: ``psutil.disk_usage``-like function (injected by tests).
    """

    def __init__(
        self,
        rpc: Aria2Rpc,
        store: Store,
        config: ManagerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        disk_usage: Callable[[str], object] | None = None,
    ) -> None:
        self.rpc = rpc
        self.store = store
        self.config = config
        self._clock = clock
        self._disk_usage = disk_usage
        self._subscribers: list[Subscriber] = []
        self._live: dict[int, _Live] = {}
        self._by_gid: dict[str, int] = {}
        self._purge: set[str] = set()
        self._listener: NotificationListener | None = None
        self._poller: asyncio.Task[None] | None = None
        self._pending_gids: set[str] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._aria2_up = True
        self._started = False
        self._closing = False
        self.polls = 0
        """Progress polls done (each is exactly one RPC request)."""

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Load unfinished downloads, reconcile with aria2, start listening and polling."""
        for record in await self.store.list(states=[s.value for s in _LIVE_STATES]):
            self._remember(record)
        loop = asyncio.get_running_loop()
        self._listener = NotificationListener(
            self.rpc.endpoint.ws_url, loop, self._on_notification, self._on_ws_connected,
        )
        self._listener.start()
        with contextlib.suppress(Aria2Unavailable):
            await self.reconcile()
        self._poller = asyncio.create_task(self._poll_forever(), name="manager-poll")
        self._started = True

    async def close(self) -> None:
        """Stop listening and polling; the store and aria2 are closed by their owner."""
        self._closing = True  # no new refresh or reconcile from here on
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
        tasks = {t for t in (self._poller, self._refresher, self._reconciler) if t is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded, so that one stuck call can never hang ariabot's shutdown.
            _done, stuck = await asyncio.wait(tasks, timeout=10)
            if stuck:
                log.warning("%d manager task(s) did not stop in 10 s", len(stuck))

    def listener_health(self) -> ListenerHealth | None:
        """How aria2's notification listener is doing; None before :meth:`start`."""
        return self._listener.health() if self._listener is not None else None

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(event)`` for every event; returns a function that unsubscribes.

        Subscribers run on the event loop and must not block; a failing one is logged and
        skipped, the others still get the event.
        """
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def _emit(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("an event subscriber failed on %s; skipped", type(event).__name__)

    # --- aria2c's own state, told by the supervisor -----------------------------------------

    def aria2_down(self, detail: str) -> None:
        """aria2c died or hung; calls fail until :meth:`aria2_up`."""
        if self._aria2_up:
            self._aria2_up = False
            self._emit(Aria2Down(detail))

    def aria2_up(self, session_id: str, detail: str = "") -> None:
        """aria2c answers again with a new session: reconcile everything."""
        was_down = not self._aria2_up
        self._aria2_up = True
        if not self._started:
            return  # start() reconciles on its own
        self._schedule_reconcile()
        if was_down:
            self._emit(Aria2Restarted(detail or "aria2c is running again", session_id))

    def aria2_fatal(self, detail: str) -> None:
        """aria2c could not be kept alive; ariabot is about to exit."""
        self._aria2_up = False
        self._emit(Aria2Fatal(detail))

    # --- queries -----------------------------------------------------------------------------

    async def list(self, chat_id: int | None = None, *, limit: int | None = None) -> list[Torrent]:
        """Downloads (of one chat, or all), newest first."""
        records = await self.store.list(chat_id=chat_id, limit=limit)
        return [self._snapshot(record) for record in records]

    async def get(self, download_id: int, chat_id: int | None = None) -> Torrent:
        """One download by public id; with ``chat_id``, only if it belongs to that chat.

        Raises:
            DownloadNotFound: no such id (or another chat's).
        """
        return self._snapshot(await self._record(download_id, chat_id))

    async def files(self, download_id: int, chat_id: int | None = None) -> tuple[FileEntry, ...]:
        """The files of a download as aria2 sees them now (empty before metadata).

        Raises:
            DownloadNotFound: no such id (or another chat's).
            Aria2Unavailable: aria2 does not answer.
        """
        record = await self._record(download_id, chat_id)
        if record.gid is None:
            return ()
        try:
            files = await self.rpc.call("aria2.getFiles", record.gid)
        except Aria2Error:
            if record.state in {s.value for s in TorrentState if s.is_final}:
                return ()
            raise
        return self._file_entries(record, files)

    async def activity(self, chat_id: int | None = None, limit: int = 50) -> list[Any]:
        """The activity log, newest first."""
        return await self.store.activity(chat_id=chat_id, limit=limit)

    async def _record(self, download_id: int, chat_id: int | None) -> DownloadRecord:
        live = self._live.get(download_id)
        record = live.record if live else await self.store.get(download_id)
        if record is None or (chat_id is not None and record.chat_id != chat_id):
            raise DownloadNotFound(f"no download #{download_id}")
        return record

    # --- adding ------------------------------------------------------------------------------

    async def add(
        self,
        source: str | bytes,
        chat_id: int,
        user_id: int,
        message_id: int | None = None,
    ) -> AddResult:
        """Validate ``source`` (a magnet link or .torrent bytes) and start downloading it.

        Returns:
            The new download, or the existing one when this chat already has the torrent.

        Raises:
            InvalidSource: not a magnet/torrent ariabot accepts (nothing is stored).
            AlreadyDownloading: another chat's copy of the torrent is still active.
            NotEnoughSpace: the torrent is larger than the free space.
        """
        # A hostile 10 MB .torrent costs seconds of CPU to check: keep it off the loop.
        parsed = await asyncio.to_thread(self._parse, source)
        folder = chat_folder(self.config.download_dir, chat_id, self.config.folder_mode)
        async with self._lock:
            existing = await self.store.find(parsed.info_hash, chat_id)
            if existing is not None and existing.state != TorrentState.CANCELLED.value:
                return AddResult(self._snapshot(existing), existing=True,
                                 note=f"already in the list as #{existing.id}")
            others = await self.store.find_in_states(parsed.info_hash,
                                                     [s.value for s in _LIVE_STATES])
            if any(other.chat_id != chat_id for other in others):
                raise AlreadyDownloading(
                    "this torrent is already being downloaded for another chat on this "
                    "ariabot; add it again once that download has finished"
                )
            total = parsed.total_bytes if isinstance(parsed, TorrentMeta) else 0
            if isinstance(parsed, TorrentMeta):
                clash = await self._name_clash(folder, parsed.name, parsed.info_hash)
                if clash is not None:
                    raise InvalidSource(clash)
            self._check_space(folder, total)
            record = await self._store_new(parsed, cancelled=existing, chat_id=chat_id,
                                           user_id=user_id, message_id=message_id,
                                           folder=folder)
            self._remember(record)
            note = None
            try:
                record = await self._submit(record)
            except Aria2Unavailable:
                # Perhaps aria2 took it and did not answer in time: the next poll sees a row
                # without a GID and reconciles, which adopts aria2's download by info-hash or
                # submits it then, so it runs exactly once either way.
                note = "the downloader did not answer; this download starts when it does"
            except Aria2Error as error:
                await self._forget_failed_add(record, existing)
                log.warning("aria2 refused download #%s (in %s): %s", record.id,
                            record.directory, error)
                raise InvalidSource("the torrent was refused by the downloader") from None
        await self.store.log("add", chat_id=chat_id, user_id=user_id, download_id=record.id,
                             detail=self._describe(parsed))
        torrent = self._snapshot(record)
        self._emit(TorrentAdded(torrent))
        return AddResult(torrent, note=note)

    def _parse(self, source: str | bytes) -> MagnetLink | TorrentMeta:
        parsed: MagnetLink | TorrentMeta
        if isinstance(source, bytes):
            parsed = parse_torrent(source, max_bytes=self.config.torrent_max_bytes)
        else:
            parsed = parse_magnet(source)
        check_downloadable(parsed, self.config.aria2_version)
        return parsed

    @staticmethod
    def _describe(parsed: MagnetLink | TorrentMeta) -> str:
        if isinstance(parsed, TorrentMeta):
            return f"torrent {parsed.info_hash} {parsed.name}"
        return f"magnet {parsed.info_hash} {parsed.name or ''}".rstrip()

    def _check_space(self, folder: Path, needed: int, *, download_id: int | None = None) -> None:
        """Refuse ``needed`` bytes more unless they fit beside what the downloads already
        running or queued will still write (the free space is theirs first).

        Raises:
            NotEnoughSpace: with the numbers, so the user knows what to free.
        """
        if needed <= 0:
            return
        free = (free_bytes(folder, self._disk_usage) if self._disk_usage
                else free_bytes(folder))
        owed = [max(0, live.record.total_bytes - live.record.completed_bytes)
                for i, live in self._live.items()
                if i != download_id and live.record.state in _RESERVING_STATES]
        reserved = sum(owed)
        if needed > free - reserved:
            detail = f"{_size(free)} free"
            if reserved:
                count = sum(1 for amount in owed if amount)
                detail += (f", of which {_size(reserved)} is reserved for {count} "
                           f"download{'s' if count != 1 else ''} already running or queued")
            raise NotEnoughSpace(f"not enough disk space: it needs {_size(needed)}, {detail}")

    async def _store_new(
        self,
        parsed: MagnetLink | TorrentMeta,
        *,
        cancelled: DownloadRecord | None,
        chat_id: int,
        user_id: int,
        message_id: int | None,
        folder: Path,
    ) -> DownloadRecord:
        if isinstance(parsed, TorrentMeta):
            kind, source = SourceKind.TORRENT, parsed.data
            name, total, state = parsed.name, parsed.total_bytes, TorrentState.QUEUED
        else:
            kind, source = SourceKind.MAGNET, parsed.uri.encode()
            name, total, state = parsed.name or parsed.info_hash, 0, TorrentState.METADATA
        if cancelled is not None:
            # The same torrent again in this chat after a cancel: the row (and its id) is
            # reused, since a chat holds one row per info-hash.
            await self.store.update_many({cancelled.id: {
                "user_id": user_id, "message_id": message_id, "name": name, "gid": None,
                "source_kind": kind.value, "state": state.value, "total_bytes": total,
                "completed_bytes": 0, "upload_bytes": 0, "download_speed": 0,
                "upload_speed": 0, "seeders": 0, "peers": 0, "error": None,
                "selected_files": None, "completed_at": None, "directory": str(folder),
            }})
            record = await self.store.get(cancelled.id)
            assert record is not None
            return record
        try:
            return await self.store.create(
                info_hash=parsed.info_hash, chat_id=chat_id, user_id=user_id, name=name,
                source_kind=kind.value, source=source, directory=str(folder),
                state=state.value, total_bytes=total, message_id=message_id,
            )
        except peewee.IntegrityError:  # pragma: no cover - guarded by the lock and find()
            raise AlreadyDownloading("this torrent was just added") from None

    async def _forget_failed_add(
        self, record: DownloadRecord, cancelled: DownloadRecord | None
    ) -> None:
        self._forget(record.id)
        if cancelled is None:
            await self.store.delete([record.id])
        else:
            await self.store.update_many({record.id: {"state": TorrentState.CANCELLED.value}})

    async def _submit(self, record: DownloadRecord, *, paused: bool = False) -> DownloadRecord:
        """Hand a stored download to aria2 (from its stored source) and keep the new GID."""
        stored = await self.store.source(record.id)
        if stored is None:
            raise DownloadNotFound(f"no download #{record.id}")
        kind, source = stored
        options: dict[str, Any] = {"dir": record.directory}
        if record.selected_files:
            options["select-file"] = record.selected_files
        if paused:
            options["pause"] = "true"
        meta = await asyncio.to_thread(self._known_meta, record, kind, source)
        name = record.name
        if meta is not None:
            name = meta.name
            options.update(self._pad_options(record, meta.files))
        if record.completed_at is not None:
            # Its data was complete: a control file left from before the end (a kill -9 in
            # the second after it) says less and would have aria2 fetch it all again.
            await asyncio.to_thread(_remove_control_file, Path(record.directory), name)
        if await asyncio.to_thread(has_unverified_data, Path(record.directory), name):
            # Finished data aria2 no longer holds: check it rather than refuse it.
            options["check-integrity"] = "true"
        if kind == SourceKind.TORRENT.value:
            encoded = base64.b64encode(source).decode("ascii")
            gid = await self.rpc.call("aria2.addTorrent", encoded, [], options)
        else:
            gid = await self.rpc.call("aria2.addUri", [source.decode()], options)
        return await self._set_gid(record.id, str(gid))

    async def _name_clash(self, folder: Path, name: str, info_hash: str) -> str | None:
        """Why this torrent may not write ``folder/name``: another listed download's files
        are there (a hash check would overwrite them). None when the name is free."""
        if not await asyncio.to_thread((folder / name).exists):
            return None
        for other in await self.store.named(str(folder), name):
            if other.info_hash != info_hash:
                return (f"another download in this chat (#{other.id}) already has files "
                        f"named {name!r}; cancel it with its files first")
        return None

    def _known_meta(self, record: DownloadRecord, kind: str, source: bytes) -> TorrentMeta | None:
        """The download's metainfo as far as it is known (runs in a worker thread): its
        .torrent, or for a magnet what aria2 saved of its metadata (``bt-save-metadata``).

        Only the metainfo names a magnet's files: its row carries the ``dn=`` until then.
        """
        if kind == SourceKind.TORRENT.value:
            try:
                return parse_torrent(source, max_bytes=self.config.torrent_max_bytes)
            except InvalidSource:
                return None
        return self._saved_metadata(Path(record.directory), record.info_hash)

    def _pad_options(self, record: DownloadRecord,
                     files: Iterable[FileEntry]) -> dict[str, str | list[str]]:
        return pad_options(files, directory=Path(record.directory),
                           scratch=self._pad_scratch(record), selected=record.selected_files)

    def _pad_scratch(self, record: DownloadRecord) -> Path:
        return pad_scratch(self.config.download_dir, record.chat_id, record.info_hash)

    def _saved_metadata(self, folder: Path, info_hash: str) -> TorrentMeta | None:
        """The .torrent aria2 saved for a magnet (``bt-save-metadata``), if there is one."""
        saved = folder / f"{info_hash}.torrent"
        try:
            if not is_inside(saved, folder) or (
                saved.stat().st_size > self.config.torrent_max_bytes
            ):
                return None
            return parse_torrent(saved.read_bytes(), max_bytes=self.config.torrent_max_bytes)
        except (OSError, InvalidSource):
            return None

    async def _verify_existing_data(self, record: DownloadRecord, gid: str, name: str) -> None:
        """Before a paused download starts: have aria2 hash-check finished data it would
        otherwise refuse (errorCode 13) because its control file is gone."""
        if await asyncio.to_thread(has_unverified_data, Path(record.directory), name):
            await self.rpc.call("aria2.changeOption", gid, {"check-integrity": "true"})

    async def _set_gid(self, download_id: int, gid: str) -> DownloadRecord:
        live = self._live.get(download_id)
        if live is not None and live.record.gid:
            self._by_gid.pop(live.record.gid, None)
        self._by_gid[gid] = download_id
        record = await self.store.update(download_id, gid=gid)
        assert record is not None
        if live is not None:
            live.record = record
        return record

    def _remember(self, record: DownloadRecord) -> None:
        live = self._live.get(record.id)
        if live is None:
            self._live[record.id] = _Live(record, StallWatch(self._clock()))
        else:
            live.record = record
        if record.gid:
            self._by_gid[record.gid] = record.id

    def _forget(self, download_id: int) -> None:
        live = self._live.pop(download_id, None)
        if live is not None and live.record.gid:
            self._by_gid.pop(live.record.gid, None)

    # --- control -----------------------------------------------------------------------------

    async def pause(self, download_id: int, chat_id: int | None = None,
                    user_id: int = 0) -> Torrent:
        """Pause a download (queued ones too).

        Raises:
            DownloadNotFound, InvalidState, Aria2Unavailable.
        """
        record = await self._record(download_id, chat_id)
        if record.state not in {s.value for s in (TorrentState.QUEUED, TorrentState.METADATA,
                                                  TorrentState.DOWNLOADING,
                                                  TorrentState.SEEDING)}:
            raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}; "
                               "only a running or queued download can be paused")
        async with self._lock:
            if record.gid is not None:
                await self._call_on(record, "aria2.forcePause")
            await self._set_state(record, TorrentState.PAUSED, user_id=user_id, action="pause")
        return await self.get(download_id)

    async def resume(self, download_id: int, chat_id: int | None = None,
                     user_id: int = 0) -> Torrent:
        """Resume a paused download (it may wait in the queue).

        Raises:
            DownloadNotFound, InvalidState, NotEnoughSpace, Aria2Unavailable.
        """
        record = await self._record(download_id, chat_id)
        if record.state != TorrentState.PAUSED.value:
            raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}; "
                               "only a paused download can be resumed")
        self._check_space(Path(record.directory), record.total_bytes - record.completed_bytes,
                          download_id=record.id)
        async with self._lock:
            if record.gid is not None:
                await self._verify_existing_data(record, record.gid, record.name)
                await self._call_on(record, "aria2.unpause")
            await self._set_state(record, TorrentState.QUEUED, user_id=user_id,
                                  action="resume")
        await self._refresh_now([record.gid] if record.gid else [])
        return await self.get(download_id)

    async def cancel(self, download_id: int, chat_id: int | None = None, user_id: int = 0,
                     *, delete_files: bool = False) -> Torrent:
        """Stop a download for good; with ``delete_files``, remove what it wrote.

        Raises:
            DownloadNotFound, Aria2Unavailable.
        """
        record = await self._record(download_id, chat_id)
        if record.state == TorrentState.CANCELLED.value and not delete_files:
            return self._snapshot(record)
        paths: list[Path] = []
        async with self._lock:
            if delete_files:
                paths = await self._download_paths(record)
            if record.gid is not None:
                await self._remove_from_aria2(record.gid)
            self._forget(record.id)
            if record.state != TorrentState.CANCELLED.value:
                await self._set_state(record, TorrentState.CANCELLED, user_id=user_id,
                                      action="cancel", extra={"download_speed": 0,
                                                              "upload_speed": 0})
        if delete_files:
            folder = Path(record.directory)
            # The top entry comes from the files, never from the row's name: before the
            # metadata arrives that is the magnet's dn=, which any file may be called.
            top = top_entry(folder, paths)
            deleted = await asyncio.to_thread(delete_download_files, folder, paths, top)
            await asyncio.to_thread(self._remove_saved_metadata, folder, record.info_hash)
            await asyncio.to_thread(remove_pad_scratch, self.config.download_dir,
                                    self._pad_scratch(record))
            await self.store.log("delete-files", chat_id=record.chat_id, user_id=user_id,
                                 download_id=record.id, detail=f"{deleted} files")
        return await self.get(download_id)

    async def _download_paths(self, record: DownloadRecord) -> list[Path]:
        """Every file of a download: from aria2 while it knows it, else from the metainfo
        (the stored .torrent, or the one aria2 saved for a magnet)."""
        folder = Path(record.directory)
        if record.gid is not None:
            with contextlib.suppress(Aria2Error):
                files = await self.rpc.call("aria2.getFiles", record.gid)
                # In the chat folder only: pad files are the scratch's, removed on their own.
                paths = [folder / entry.path for entry in self._all_file_entries(record, files)
                         if not Path(entry.path).is_absolute()]
                if paths:
                    return paths
        stored = await self.store.source(record.id)
        metainfo: bytes | None = None
        if stored is not None and stored[0] == SourceKind.TORRENT.value:
            metainfo = stored[1]
        else:
            saved = folder / f"{record.info_hash}.torrent"
            with contextlib.suppress(OSError):
                metainfo = await asyncio.to_thread(saved.read_bytes)
        if metainfo is None:
            return []
        try:
            meta = await asyncio.to_thread(parse_torrent, metainfo,
                                           max_bytes=self.config.torrent_max_bytes)
        except InvalidSource:
            return []
        return [folder / entry.path for entry in meta.files]

    @staticmethod
    def _remove_saved_metadata(folder: Path, info_hash: str) -> None:
        saved = folder / f"{info_hash}.torrent"
        if is_inside(saved, folder):
            saved.unlink(missing_ok=True)

    async def _remove_from_aria2(self, gid: str) -> None:
        try:
            await self.rpc.call("aria2.forceRemove", gid)
        except Aria2Unavailable:
            raise
        except Aria2Error:
            pass  # already stopped: only its result is left
        # Wait for the removal to land, then drop its result (aria2 keeps it otherwise).
        for _ in range(50):
            try:
                status = await self.rpc.call("aria2.tellStatus", gid, ["status"])
            except Aria2Error:
                return
            if status.get("status") in ("removed", "complete", "error"):
                break
            await asyncio.sleep(0.02)
        with contextlib.suppress(Aria2Error):
            await self.rpc.call("aria2.removeDownloadResult", gid)

    async def set_files(self, download_id: int, indexes: Iterable[int],
                        chat_id: int | None = None, user_id: int = 0) -> Torrent:
        """Download only the files with these numbers: 1-based places in :meth:`files`
        (the list users see, without pad files), not aria2's own indexes.

        Raises:
            DownloadNotFound, InvalidState (no metadata yet, or finished),
            InvalidSource (an index out of range or none selected), Aria2Unavailable.
        """
        record = await self._record(download_id, chat_id)
        if TorrentState(record.state).is_final or record.gid is None:
            raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}; "
                               "files can be chosen only while it is in the list")
        if record.state == TorrentState.METADATA.value:
            raise InvalidState("the file list is not known yet: wait for the metadata")
        files = await self.files(download_id, chat_id)
        wanted = sorted(set(indexes))
        if not wanted:
            raise InvalidSource("choose at least one file")
        if not files or wanted[0] < 1 or wanted[-1] > len(files):
            raise InvalidSource(f"file numbers go from 1 to {len(files)}")
        entries = [files[number - 1] for number in wanted]
        selection = ",".join(str(entry.index) for entry in entries)
        chosen = sum(entry.length for entry in entries)
        async with self._lock:
            record = await self._record(download_id, chat_id)  # as it is now, under the lock
            if record.gid is None or TorrentState(record.state).is_final:
                raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}")
            await self._change_paused(record, {"select-file": selection})
            updated = await self.store.update(record.id, selected_files=selection,
                                              total_bytes=chosen)
            assert updated is not None
            self._remember(updated)
            await self._refresh_locked([record.gid])
        await self.store.log("select-files", chat_id=record.chat_id, user_id=user_id,
                             download_id=record.id, detail=selection)
        return await self.get(download_id)

    async def _change_paused(self, record: DownloadRecord, options: dict[str, str]) -> None:
        """Change options that aria2 accepts only on a paused (or waiting) download.

        A running download is paused for it and always started again, also when a step
        fails: a failed file choice must not leave the download stopped.
        """
        assert record.gid is not None
        was_running = record.state != TorrentState.PAUSED.value
        try:
            if was_running:
                await self._call_on(record, "aria2.forcePause")
                await self._wait_status(record.gid, {"paused"})
            await self.rpc.call("aria2.changeOption", record.gid, options)
        finally:
            if was_running:
                await self._call_on(record, "aria2.unpause")

    async def set_message(self, download_id: int, message_id: int) -> None:
        """Remember which chat message shows this download's progress."""
        record = await self.store.update(download_id, message_id=message_id)
        if record is not None and download_id in self._live:
            self._remember(record)

    async def _call_on(self, record: DownloadRecord, method: str) -> None:
        assert record.gid is not None
        try:
            await self.rpc.call(method, record.gid)
        except Aria2Unavailable:
            raise
        except Aria2Error as error:
            log.warning("aria2 refused %s of download #%s (GID %s): %s", method, record.id,
                        record.gid, error)
            raise InvalidState("the downloader refused that just now; try again") from None

    async def _wait_status(self, gid: str, wanted: set[str]) -> None:
        deadline = self._clock() + 5.0
        while self._clock() < deadline:
            status = await self.rpc.call("aria2.tellStatus", gid, ["status"])
            if status.get("status") in wanted:
                return
            await asyncio.sleep(0.02)
        raise InvalidState("aria2 did not pause the download in time")

    async def _set_state(self, record: DownloadRecord, state: TorrentState, *, user_id: int,
                         action: str, extra: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = {"state": state.value, "error": None, **(extra or {})}
        updated = await self.store.update(record.id, **values)
        assert updated is not None
        if not state.is_final:
            self._remember(updated)
        await self.store.log(action, chat_id=record.chat_id, user_id=user_id,
                             download_id=record.id)
        torrent = self._snapshot(updated)
        event_type = {TorrentState.PAUSED: TorrentPaused, TorrentState.QUEUED: TorrentResumed,
                      TorrentState.CANCELLED: TorrentCancelled}[state]
        self._emit(event_type(torrent))

    # --- retention ---------------------------------------------------------------------------

    async def purge_finished(self, older_than: timedelta, *, delete_files: bool = False) -> int:
        """Remove finished downloads (complete, error, cancelled) from the list when their
        row last changed more than ``older_than`` ago. Their files stay unless asked.

        With ``delete_files``, each one's files (named by its .torrent, or by the metadata
        aria2 saved for a magnet) are deleted inside its chat folder, like ``cancel`` does;
        not when a download still in the list has the same name in that folder (the same
        files, most likely).

        Returns:
            How many downloads left the list.

        Raises:
            ValueError: ``older_than`` is negative.
        """
        if older_than < timedelta(0):
            raise ValueError("older_than must not be negative")
        cutoff = _utcnow() - older_than
        finished = [s.value for s in TorrentState if s.is_final]
        batch_size = 200  # bounds the memory sources take when files are deleted
        purged = deleted = 0
        while True:
            async with self._lock:
                batch = await self.store.purge_finished(
                    states=finished, before=cutoff, limit=batch_size, with_sources=delete_files
                )
            purged += len(batch)
            if delete_files and batch:
                in_use = await self.store.names_in_use(p.record.directory for p in batch)
                deleted += await asyncio.to_thread(self._delete_purged_files, batch, in_use)
            if len(batch) < batch_size:
                break
        if purged:
            days = older_than.total_seconds() / 86400
            detail = f"{purged} finished download(s) older than {days:g} days"
            if delete_files:
                detail += f", {deleted} file(s) deleted"
            await self.store.log("purge", chat_id=0, user_id=0, detail=detail)
            log.info("purged %s", detail)
        return purged

    def _delete_purged_files(self, batch: Sequence[PurgedDownload],
                             in_use: set[tuple[str, str]]) -> int:
        """Delete the files of purged downloads (runs in a worker thread)."""
        deleted = 0
        for purged in batch:
            record = purged.record
            folder = Path(record.directory)
            if (record.directory, record.name) in in_use:
                log.warning("purge kept the files of #%d: a listed download has the same name "
                            "%r in %s", record.id, record.name, folder)
                continue
            paths = [folder / f.path for f in self._purged_files(purged)]
            deleted += delete_download_files(folder, paths, top_entry(folder, paths))
            self._remove_saved_metadata(folder, record.info_hash)
            remove_pad_scratch(self.config.download_dir, self._pad_scratch(record))
        return deleted

    def _purged_files(self, purged: PurgedDownload) -> tuple[FileEntry, ...]:
        """The files a purged download wrote, from its metainfo (empty when unknown)."""
        record = purged.record
        # Without its stored .torrent, only what aria2 saved of the metadata can tell.
        kind = record.source_kind if purged.source else SourceKind.MAGNET.value
        meta = self._known_meta(record, kind, purged.source or b"")
        return meta.files if meta is not None else ()

    # --- tracking ----------------------------------------------------------------------------

    def _on_notification(self, method: str, gid: str) -> None:
        log.debug("aria2 %s %s", method, gid)
        self._refresh_soon(gid)

    def _refresh_soon(self, gid: str) -> None:
        """Read this GID's status as soon as the loop is free (coalescing bursts)."""
        self._pending_gids.add(gid)
        if self._closing:
            return
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_pending(), name="refresh")

    def _on_ws_connected(self) -> None:
        self._schedule_reconcile()

    def _schedule_reconcile(self) -> None:
        if self._closing:
            return
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.create_task(self._reconcile_quietly(), name="reconcile")

    async def _reconcile_quietly(self) -> None:
        try:
            await self.reconcile()
        except Aria2Unavailable:
            log.info("aria2 is not answering; reconcile waits for its restart")
        except Exception:
            log.exception("reconcile failed")

    async def _refresh_pending(self) -> None:
        while self._pending_gids:
            gids = sorted(self._pending_gids)
            self._pending_gids.clear()
            try:
                await self._refresh_now(gids)
            except Aria2Unavailable:
                log.info("aria2 did not answer a refresh; the next poll catches up")
            except Exception:
                log.exception("refresh after a notification failed")

    async def _refresh_now(self, gids: Sequence[str]) -> None:
        """Read these GIDs' status (one request) and apply what changed."""
        if not gids:
            return
        async with self._lock:
            await self._refresh_locked(gids)

    async def _refresh_locked(self, gids: Sequence[str]) -> None:
        """:meth:`_refresh_now` for a caller that holds the lock.

        Read and apply under the same lock: an answer read before a pause or resume and
        applied after it would undo what the user just did.
        """
        answers = await self.rpc.multicall(
            [("aria2.tellStatus", [gid, list(POLL_KEYS)]) for gid in gids]
        )
        statuses = [a for a in answers if isinstance(a, dict)]
        await self._apply(statuses, waiting_order=None)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.progress_interval)
            if not self._aria2_up:
                continue
            try:
                await self.poll_once()
            except Aria2Unavailable:
                log.info("aria2 did not answer the progress poll")
            except Exception:
                log.exception("progress poll failed")

    async def _list_everything(self, extra: Sequence[tuple[str, list[Any]]] = ()) -> list[Any]:
        keys = list(POLL_KEYS)
        return await self.rpc.multicall([
            ("aria2.tellActive", [keys]),
            ("aria2.tellWaiting", [0, _LIST_ALL, keys]),
            ("aria2.tellStopped", [0, _LIST_ALL, keys]),
            *extra,
        ])

    async def poll_once(self) -> None:
        """One progress cycle: ONE RPC request for every download, ONE transaction."""
        async with self._lock:
            # Read and apply under the lock: a list read before an add/pause and applied
            # after it would undo what the user just did.
            purge = sorted(self._purge)
            answers = await self._list_everything(
                [("aria2.removeDownloadResult", [gid]) for gid in purge]
            )
            self._purge.difference_update(purge)
            self.polls += 1
            active, waiting, stopped = (a if isinstance(a, list) else [] for a in answers[:3])
            missing = await self._apply([*active, *waiting, *stopped], waiting_order=waiting)
        if missing:
            log.warning("aria2 lost %d download(s); re-adding them", len(missing))
            self._schedule_reconcile()

    async def reconcile(self) -> None:
        """Match every unfinished download with aria2's list; re-add what aria2 lost.

        Run after every (re)connection to aria2: notifications sent while disconnected are
        lost, and after a restart aria2 restores downloads under other GIDs.
        """
        async with self._lock:
            answers = await self._list_everything()
            active, waiting, stopped = (a if isinstance(a, list) else [] for a in answers[:3])
            statuses = [*active, *waiting, *stopped]
            by_hash: dict[str, Observation] = {}
            for status in statuses:
                observation = Observation.parse(status)
                if observation.followed_by or observation.error_code == _DUPLICATE:
                    continue
                current = by_hash.get(observation.info_hash)
                # Prefer what is running over a finished result of the same torrent.
                if current is None or current.status in ("complete", "error", "removed"):
                    by_hash[observation.info_hash] = observation
            seen = {Observation.parse(s).gid for s in statuses}
            for download_id, live in list(self._live.items()):
                record = live.record
                if record.gid in seen and record.gid in self._by_gid:
                    continue
                match = by_hash.get(record.info_hash)
                if match is not None and not _restored_stale(record, match):
                    await self._set_gid(download_id, match.gid)
                    continue
                if match is not None:
                    # Finished data that aria2 restored from a session saved before the end,
                    # with a control file that says less (or none): check it, keep it.
                    log.info("#%d was complete; aria2 restored it as %s: checking its data",
                             download_id, match.status)
                    await self._remove_from_aria2(match.gid)
                    await asyncio.to_thread(_remove_control_file, Path(record.directory),
                                            record.name)
                try:
                    await self._submit(record, paused=record.state == TorrentState.PAUSED.value)
                except Aria2Unavailable:
                    raise
                except Aria2Error as error:
                    log.warning("aria2 refused to take download #%s back (in %s): %s",
                                download_id, record.directory, error)
                    await self._fail(live, "the downloader did not take it back after a "
                                     "restart")
            await self._apply(statuses, waiting_order=waiting)
        log.info("reconciled %d unfinished download(s) with aria2", len(self._live))

    async def _apply(
        self, statuses: Iterable[dict[str, Any]], waiting_order: Sequence[dict[str, Any]] | None
    ) -> list[int]:
        """Fold aria2's statuses into the store and emit events.

        Returns:
            Ids of unfinished downloads that aria2 does not hold under their GID, or that have
            none yet (an add that timed out: aria2 may or may not have taken it); only when
            given the full list, i.e. ``waiting_order`` is not None.
        """
        now = self._clock()
        positions: dict[str, int] = {}
        if waiting_order is not None:
            queued = [s["gid"] for s in waiting_order if s.get("status") == "waiting"]
            positions = {gid: place for place, gid in enumerate(queued, 1)}
        seen: set[int] = set()
        changes: dict[int, dict[str, Any]] = {}
        events: list[Event] = []
        for status in statuses:
            if isinstance(status, RpcFault):
                continue
            observation = Observation.parse(status)
            download_id = self._by_gid.get(observation.gid)
            if download_id is None or download_id not in self._live:
                continue
            if observation.error_code == _DUPLICATE:
                # A second add of a torrent aria2 already holds: not this row's real state.
                # Forget that GID; reconcile finds the real one by info-hash.
                self._by_gid.pop(observation.gid, None)
                self._purge.add(observation.gid)
                continue
            live = self._live[download_id]
            seen.add(download_id)
            if observation.followed_by:
                if observation.status in ("complete", "removed", "error"):
                    self._purge.add(observation.gid)
                await self._follow(live, observation.followed_by[0])
                continue
            if waiting_order is not None:
                live.queue_position = positions.get(observation.gid)
            values = await self._observe(live, observation, now, events)
            if values:
                changes[download_id] = values
        if any("completed_at" in values for values in changes.values()):
            # Before anyone is told: aria2's session (saved every few seconds) still lists a
            # download that has just finished; saved now, a kill -9 of aria2c cannot bring
            # it back as unfinished.
            with contextlib.suppress(Aria2Error):
                await self.rpc.call("aria2.saveSession")
        await self.store.update_many(changes)
        for event in events:
            self._emit(event)
        if waiting_order is None:
            return []
        return [i for i in self._live if i not in seen]

    async def _observe(self, live: _Live, observation: Observation, now: float,
                       events: list[Event]) -> dict[str, Any]:
        """Fold one observation into ``live``; returns the columns to store, adds events."""
        record = live.record
        state = derive_state(observation)
        if live.awaiting_metadata and not state.is_final:
            if not (observation.is_metadata or observation.gid in live.metadata_gids):
                # Perhaps the real download, paused by pause-metadata: check it, start it.
                events.extend(await self._metadata_arrived(live, observation))
                if observation.gid not in live.metadata_gids:
                    return {}
            if state in (TorrentState.DOWNLOADING, TorrentState.SEEDING):
                state = TorrentState.METADATA
        values = self._values(record, observation, state)
        if (not self.config.enable_dht and not live.trackers_checked
                and state in (TorrentState.METADATA, TorrentState.DOWNLOADING)):
            await self._check_trackers(live, observation.gid)
        stuck = live.watch.update(observation, state, now)
        stuck_changed = stuck != live.stuck_reason
        live.stuck_reason = stuck
        if not values and not stuck_changed:
            return {}
        record = replace(record, **values)
        if state.is_final:
            self._forget(record.id)
            self._purge.add(observation.gid)
        else:
            live.record = record
        events.append(self._event_for(record, values, live))
        return values

    async def _check_trackers(self, live: _Live, gid: str) -> None:
        """With DHT off, see once whether aria2 has a tracker it can use for this download.

        One ``tellStatus`` for its announce list (kept out of the poll's keys); the verdict
        becomes the stuck reason from the first poll instead of minutes of "metadata 0.0%".
        """
        try:
            status = await self.rpc.call("aria2.tellStatus", gid, ["bittorrent"])
        except Aria2Error:
            return  # gone, or aria2 is down: asked again at a later poll
        tiers = (status.get("bittorrent") or {}).get("announceList") or []
        urls = [url for tier in tiers if isinstance(tier, list) for url in tier
                if isinstance(url, str)]
        live.trackers_checked = True
        live.watch.unreachable = unreachable_reason(urls, dht_enabled=False)

    def _values(self, record: DownloadRecord, observation: Observation,
                state: TorrentState) -> dict[str, Any]:
        """The columns that differ from the stored row."""
        wanted: dict[str, Any] = {
            "state": state.value,
            "completed_bytes": observation.completed,
            "upload_bytes": observation.uploaded,
            # A seeding download fetches nothing: aria2's last figure would linger.
            "download_speed": observation.download_speed if state.value in (
                "downloading", "metadata") else 0,
            "upload_speed": observation.upload_speed if state.value in (
                "downloading", "seeding") else 0,
            "seeders": observation.seeders,
            "peers": observation.connections,
        }
        if state is TorrentState.METADATA or (
            state is TorrentState.PAUSED and observation.completed < record.completed_bytes
        ):
            # Metadata: bytes of the metadata itself, not of the torrent. Paused: aria2 has
            # not read the data of a download restored paused, and says 0; the row knows.
            del wanted["completed_bytes"]
        elif observation.total:
            wanted["total_bytes"] = observation.total
        if state is TorrentState.ERROR:
            wanted["error"] = error_text(observation, self.config.bt_stop_timeout)
        if (state in (TorrentState.SEEDING, TorrentState.COMPLETE)
                and record.completed_at is None):
            wanted["completed_at"] = _utcnow()
        return {k: v for k, v in wanted.items() if getattr(record, k) != v}

    def _event_for(self, record: DownloadRecord, values: dict[str, Any], live: _Live) -> Event:
        torrent = self._snapshot(record, live)
        if "completed_at" in values:
            return TorrentCompleted(torrent)
        new_state = values.get("state")
        if new_state == TorrentState.ERROR.value:
            return TorrentFailed(torrent)
        if new_state == TorrentState.CANCELLED.value:
            return TorrentCancelled(torrent)
        if new_state == TorrentState.PAUSED.value:
            return TorrentPaused(torrent)
        if new_state is not None:
            return TorrentStateChanged(torrent)
        return TorrentProgress(torrent)

    async def _follow(self, live: _Live, real_gid: str) -> None:
        """A magnet's metadata download finished: its real download is ``real_gid``."""
        if live.record.gid == real_gid:
            return
        await self._set_gid(live.record.id, real_gid)
        self._refresh_soon(real_gid)

    async def _metadata_arrived(self, live: _Live, observation: Observation) -> list[Event]:
        """Check a magnet's metadata (names, space) before its first byte is written."""
        record = live.record
        try:
            details = await self.rpc.call("aria2.tellStatus", observation.gid,
                                          ["bittorrent", "files", "status"])
        except Aria2Error:
            return []
        raw_files = details.get("files") or []
        if raw_files and str(raw_files[0].get("path", "")).startswith("[METADATA]"):
            live.metadata_gids.add(observation.gid)  # still fetching: nothing to check yet
            return []
        if not raw_files:
            return []  # aria2 is still setting the real download up: look again next time
        name = str(((details.get("bittorrent") or {}).get("info") or {}).get("name") or "")
        folder = Path(record.directory)
        files = self._file_entries(record, raw_files)
        problem = (self._unsafe_metadata(folder, name, raw_files)
                   or await self._name_clash(folder, name, record.info_hash))
        # A download paused by pause-metadata reports totalLength 0: add up its files.
        total = sum(f.length for f in files if f.selected)
        if problem is not None:
            await self._remove_from_aria2(observation.gid)
            return [await self._fail(live, problem)]
        padding = self._pad_options(record, self._all_file_entries(record, raw_files))
        if padding and details.get("status") == "paused":
            # Before its first byte: pad files are never selected, and go to the scratch.
            try:
                await self.rpc.call("aria2.changeOption", observation.gid, padding)
            except Aria2Error as error:
                log.warning("#%d: could not move its pad files out of the chat folder: %s",
                            record.id, error)
                await self._remove_from_aria2(observation.gid)
                return [await self._fail(live, "aria2 could not set the torrent up")]
        values: dict[str, Any] = {"name": name or record.name, "total_bytes": total}
        try:
            self._check_space(folder, total, download_id=record.id)
        except NotEnoughSpace as error:
            values.update(state=TorrentState.PAUSED.value, error=str(error))
            if details.get("status") != "paused":
                with contextlib.suppress(Aria2Error):
                    await self.rpc.call("aria2.forcePause", observation.gid)
        else:
            if record.state != TorrentState.PAUSED.value:  # unless the user paused it
                values["state"] = TorrentState.QUEUED.value
                if details.get("status") == "paused":
                    with contextlib.suppress(Aria2Error):
                        await self._verify_existing_data(record, observation.gid, name)
                        await self.rpc.call("aria2.unpause", observation.gid)
        updated = await self.store.update(record.id, **values)
        assert updated is not None
        live.record = updated
        self._refresh_soon(observation.gid)
        torrent = replace(self._snapshot(updated, live), files=files)
        return [MetadataReceived(torrent)]

    @staticmethod
    def _unsafe_metadata(folder: Path, name: str, files: Sequence[dict[str, Any]]) -> str | None:
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            return "unsafe torrent: its name is not a plain file name"
        for entry in files:
            path = str(entry.get("path") or "")
            if not path or not is_inside(Path(path), folder / name):
                return "unsafe torrent: a file would be written outside its folder"
        return None

    async def _fail(self, live: _Live, reason: str) -> TorrentFailed:
        updated = await self.store.update(live.record.id, state=TorrentState.ERROR.value,
                                          error=reason, download_speed=0, upload_speed=0)
        assert updated is not None
        self._forget(live.record.id)
        return TorrentFailed(self._snapshot(updated))

    def _file_entries(self, record: DownloadRecord,
                      files: Sequence[dict[str, Any]]) -> tuple[FileEntry, ...]:
        """The user's files of a download, from aria2's file list: pad files, and anything
        aria2 writes outside the chat folder (pads moved by ``index-out``), left out."""
        return tuple(entry for entry in self._all_file_entries(record, files)
                     if not is_pad(entry.path) and not Path(entry.path).is_absolute())

    @staticmethod
    def _all_file_entries(record: DownloadRecord,
                          files: Sequence[dict[str, Any]]) -> tuple[FileEntry, ...]:
        """Every file aria2 lists, pads included; paths relative to the chat folder (or
        absolute when aria2 writes it elsewhere: a pad file moved by ``index-out``)."""
        folder = Path(record.directory)
        entries = []
        for entry in files:
            path = str(entry.get("path") or "")
            if not path or path.startswith("[METADATA]"):
                continue
            absolute = Path(os.path.normpath(path))  # index-out paths keep their ".."
            try:
                relative = absolute.relative_to(folder).as_posix()
            except ValueError:
                relative = absolute.as_posix()
            entries.append(FileEntry(
                index=int(entry.get("index", 0)), path=relative,
                length=int(entry.get("length", 0)),
                completed=int(entry.get("completedLength", 0)),
                selected=entry.get("selected") == "true",
            ))
        return tuple(entries)

    # --- snapshots ---------------------------------------------------------------------------

    def _snapshot(self, record: DownloadRecord, live: _Live | None = None) -> Torrent:
        live = live or self._live.get(record.id)
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
            path=str(Path(record.directory) / record.name),
            created_at=record.created_at, completed_at=record.completed_at,
        )


def _restored_stale(record: DownloadRecord, observation: Observation) -> bool:
    """aria2 holds a download the row knows to be complete, but not as complete.

    A kill -9 of aria2c in the second after a download completes leaves a session and a
    control file from before the end: restored from them, aria2 would fetch again what the
    control file does not list, or refuse the files (errorCode 13) when it is gone.
    """
    if record.completed_at is None or observation.status == "paused":
        return False
    if observation.status == "error":
        return True
    return observation.status in ("active", "waiting") and not observation.data_complete


def _remove_control_file(folder: Path, name: str) -> None:
    """Delete a download's own control file (``folder/name.aria2``), nothing else."""
    if not name or name in (".", ".."):
        return
    stale = control_file(folder / name)
    if is_inside(stale, folder):
        stale.unlink(missing_ok=True)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
