"""Adding a download: check the source, refuse duplicates, name clashes and what does not
fit, store the row, hand it to aria2 (:meth:`Intake.submit`, also used to re-add what aria2
lost), and announce it."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee

from manager.aria2 import Aria2Rpc, check_downloadable
from manager.config import ManagerConfig
from manager.downloads import (
    LIVE_STATES,
    Contents,
    LiveDownloads,
    SpaceCheck,
    claims_its_files,
    remove_control_file,
)
from manager.errors import (
    AlreadyDownloading,
    Aria2Error,
    Aria2Unavailable,
    DownloadNotFound,
    InvalidSource,
    StoreError,
)
from manager.events import Publisher, TorrentAdded
from manager.fetch import TorrentFetcher
from manager.files import chat_folder, has_unverified_data
from manager.models import SourceKind, Torrent, TorrentState
from manager.sources import MagnetLink, TorrentMeta, is_http_url, parse_magnet, parse_torrent
from manager.store import DownloadRecord, Store

__all__ = ["AddResult", "Intake"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AddResult:
    """What :meth:`TorrentManager.add` did: a new download, or the one already there."""

    torrent: Torrent
    existing: bool = False
    note: str | None = None


class Intake:
    """Adds downloads and hands stored ones to aria2.

    Parameters:
        live: the shared lock and tracked downloads.
        store, rpc, config: the store, the aria2 adapter and the settings.
        contents: what a download owns on disk (name clashes, metainfo, pad files).
        space: the disk space check.
        publisher: where :class:`~manager.events.TorrentAdded` goes.
        forget_mirror: drops a download's earlier mirror, by id (a cancelled download added
            again is a new download in the same row).
        fetcher: fetches a ``.torrent`` given by its URL.
        node: this node's name (None: no nodes, in tests of the manager alone).
        placing: nodes share the database: a new download waits in the shared queue for the
            node that claims it (:mod:`~manager.store.placements`), which checks its names
            and room on its own disk and adds it (:meth:`start_claimed`).
    """

    def __init__(self, live: LiveDownloads, *, store: Store, rpc: Aria2Rpc,
                 config: ManagerConfig, contents: Contents, space: SpaceCheck,
                 publisher: Publisher,
                 forget_mirror: Callable[[int], Awaitable[None]],
                 fetcher: TorrentFetcher, node: str | None, placing: bool = False) -> None:
        self._live = live
        self._node = node
        self._placing = placing
        self._store = store
        self._rpc = rpc
        self._config = config
        self._contents = contents
        self._space = space
        self._publisher = publisher
        self._forget_mirror = forget_mirror
        self._fetcher = fetcher

    async def add(self, source: str | bytes, chat_id: int, user_id: int,
                  message_id: int | None) -> AddResult:
        """:meth:`TorrentManager.add` (see there)."""
        # A hostile 10 MB .torrent costs seconds of CPU to check: keep it off the loop.
        if isinstance(source, str) and is_http_url(source):
            source = await self._fetcher.fetch(source)  # its bytes, or the magnet it names
        parsed = await asyncio.to_thread(self._parse, source)
        async with self._live.lock:
            existing = await self._store.downloads.find(parsed.info_hash, chat_id)
            if existing is not None and existing.state != TorrentState.CANCELLED.value:
                return AddResult(self._live.snapshot(existing), existing=True,
                                 note=f"already in the list as #{existing.id}")
            others = await self._store.downloads.find_in_states(parsed.info_hash,
                                                                [s.value for s in LIVE_STATES])
            if any(other.chat_id != chat_id for other in others):
                raise AlreadyDownloading(
                    "this torrent is already being downloaded for another chat on this "
                    "ariabot; add it again once that download has finished"
                )
            # A cancelled download added again whose files this node kept resumes here.
            if self._placing and not (existing is not None and existing.node == self._node
                                      and claims_its_files(existing, parsed.info_hash)):
                record, note = await self._queue(parsed, existing, chat_id, user_id,
                                                 message_id)
            else:
                record, note = await self._start(parsed, existing, chat_id, user_id,
                                                 message_id)
        await self._store.activity.log(
            "add", chat_id=chat_id, user_id=user_id, download_id=record.id,
            detail=_describe(parsed))
        torrent = self._live.snapshot(record)
        self._publisher.emit(TorrentAdded(torrent))
        return AddResult(torrent, note=note)

    async def _start(self, parsed: MagnetLink | TorrentMeta, existing: DownloadRecord | None,
                     chat_id: int, user_id: int,
                     message_id: int | None) -> tuple[DownloadRecord, str | None]:
        """Under the lock: check the names and room here, store the download as this
        node's and hand it to aria2."""
        folder = await asyncio.to_thread(chat_folder, self._config.download_dir, chat_id,
                                         self._config.folder_mode)
        total = parsed.total_bytes if isinstance(parsed, TorrentMeta) else 0
        if isinstance(parsed, TorrentMeta):
            clash = await self._contents.name_clash(folder, parsed.name, parsed.info_hash)
            if clash is not None:
                raise InvalidSource(clash)
        self._space.check(folder, total)
        record = await self._store_new(parsed, cancelled=existing, chat_id=chat_id,
                                       user_id=user_id, message_id=message_id,
                                       folder=folder)
        live = self._live.remember(record)
        if existing is not None and claims_its_files(existing, parsed.info_hash):
            live.claimed_name = existing.name
        if existing is not None:
            await self._forget_mirror(record.id)
        try:
            return await self.submit(record), None
        except Aria2Unavailable:
            # Perhaps aria2 took it and did not answer in time: the next poll sees a row
            # without a GID and reconciles, which adopts aria2's download by info-hash or
            # submits it then, so it runs exactly once either way.
            return record, "the downloader did not answer; this download starts when it does"
        except Aria2Error as error:
            await self._forget_failed_add(record, existing)
            log.warning("aria2 refused download #%s (in %s): %s", record.id,
                        record.directory, error)
            raise InvalidSource("the torrent was refused by the downloader") from None

    async def _queue(self, parsed: MagnetLink | TorrentMeta, existing: DownloadRecord | None,
                     chat_id: int, user_id: int,
                     message_id: int | None) -> tuple[DownloadRecord, str | None]:
        """Under the lock: store the download without a node, for the node with a free
        slot and room that claims it first (perhaps this one), and say it waits."""
        record = await self._store_new(parsed, cancelled=existing, chat_id=chat_id,
                                       user_id=user_id, message_id=message_id, folder=None)
        if existing is not None:
            await self._forget_mirror(record.id)
        try:
            await self._store.placements.announce()
        except StoreError as error:  # the nodes' slow look at the queue finds it
            log.warning("#%d is queued, but the nodes could not be told at once (%s)",
                        record.id, error)
        return record, None

    async def start_claimed(self, records: Sequence[DownloadRecord]) -> None:
        """Add to aria2 the downloads this node claimed from the shared queue, checking
        first that nothing here already has their names (a .torrent's; a magnet's are
        checked once its metadata comes). One that cannot start here fails, with why."""
        for claimed in records:
            try:
                async with self._live.lock:
                    await self._start_claimed(claimed.id)
            except StoreError as error:  # tracked without a GID: the next poll reconciles
                log.warning("#%d was claimed, and its start could not be stored (%s); it is "
                            "added again at the next reconcile", claimed.id, error)

    async def _start_claimed(self, download_id: int) -> None:
        record = await self._store.downloads.get(download_id)  # as it is now
        if (record is None or record.node != self._node
                or TorrentState(record.state).is_final):
            return  # cancelled meanwhile, or taken by another node
        live = self._live.remember(record)
        if record.source_kind == SourceKind.TORRENT.value:
            clash = await self._contents.name_clash(Path(record.directory), record.name,
                                                    record.info_hash, arriving=record.id)
            if clash is not None:
                await self._live.fail(live, clash)
                return
        try:
            await self.submit(record, paused=record.state == TorrentState.PAUSED.value)
        except Aria2Unavailable:
            log.info("#%d was claimed; it starts when aria2 answers", record.id)
        except Aria2Error as error:
            log.warning("aria2 refused download #%s (in %s): %s", record.id,
                        record.directory, error)
            await self._live.fail(live, "the torrent was refused by the downloader")

    def _parse(self, source: str | bytes) -> MagnetLink | TorrentMeta:
        parsed: MagnetLink | TorrentMeta
        if isinstance(source, bytes):
            parsed = parse_torrent(source, max_bytes=self._config.torrent_max_bytes)
        else:
            parsed = parse_magnet(source)
        check_downloadable(parsed, self._config.aria2_version)
        return parsed

    async def _store_new(
        self,
        parsed: MagnetLink | TorrentMeta,
        *,
        cancelled: DownloadRecord | None,
        chat_id: int,
        user_id: int,
        message_id: int | None,
        folder: Path | None,
    ) -> DownloadRecord:
        """Store the download, in ``folder`` on this node, or (None) on no node yet."""
        node = self._node if folder is not None else None
        directory = str(folder) if folder is not None else ""
        if isinstance(parsed, TorrentMeta):
            kind, source = SourceKind.TORRENT, parsed.data
            name, total, state = parsed.name, parsed.total_bytes, TorrentState.QUEUED
        else:
            kind, source = SourceKind.MAGNET, parsed.uri.encode()
            # Waiting in the queue, it fetches nothing: metadata once a node claims it.
            name, total = parsed.name or parsed.info_hash, 0
            state = TorrentState.METADATA if folder is not None else TorrentState.QUEUED
        if cancelled is not None:
            # The same torrent again in this chat after a cancel: the row (and its id) is
            # reused, since a chat holds one row per info-hash. The source is the one given
            # now, with its kind in the same write: it may come in the other form (a magnet
            # after a .torrent, or back), and submit() reads the two together.
            await self._store.downloads.update_many({cancelled.id: {
                "user_id": user_id, "message_id": message_id, "name": name, "gid": None,
                "source_kind": kind.value, "source": source, "state": state.value,
                "total_bytes": total,
                "completed_bytes": 0, "upload_bytes": 0, "download_speed": 0,
                "upload_speed": 0, "seeders": 0, "peers": 0, "error": None,
                "selected_files": None, "completed_at": None, "directory": directory,
                "node": node,
            }})
            record = await self._store.downloads.get(cancelled.id)
            assert record is not None
            return record
        try:
            return await self._store.downloads.create(
                info_hash=parsed.info_hash, chat_id=chat_id, user_id=user_id, name=name,
                source_kind=kind.value, source=source, directory=directory,
                state=state.value, total_bytes=total, message_id=message_id, node=node,
            )
        except peewee.IntegrityError:  # pragma: no cover - guarded by the lock and find()
            raise AlreadyDownloading("this torrent was just added") from None

    async def _forget_failed_add(
        self, record: DownloadRecord, cancelled: DownloadRecord | None
    ) -> None:
        self._live.forget(record.id)
        if cancelled is None:
            await self._store.downloads.delete([record.id])
        else:
            await self._store.downloads.update_many(
                {record.id: {"state": TorrentState.CANCELLED.value}})

    async def submit(self, record: DownloadRecord, *, paused: bool = False) -> DownloadRecord:
        """Hand a stored download to aria2 (from its stored source) and keep the new GID.

        Raises:
            DownloadNotFound: the row is gone.
            InvalidSource: its stored magnet link is damaged (not text).
            Aria2Error: aria2 refused it, or (Aria2Unavailable) did not answer.
        """
        stored = await self._store.downloads.source(record.id)
        if stored is None:
            raise DownloadNotFound(f"no download #{record.id}")
        kind, source = stored
        if kind == SourceKind.MAGNET.value:
            try:
                uri = source.decode()
            except UnicodeDecodeError:
                raise InvalidSource(f"the stored magnet link of #{record.id} is damaged") from None
        options: dict[str, Any] = {"dir": record.directory}
        if record.selected_files:
            options["select-file"] = record.selected_files
        if paused:
            options["pause"] = "true"
        meta = await asyncio.to_thread(self._contents.known_meta, record, kind, source)
        name = record.name
        if meta is not None:
            name = meta.name
            options.update(self._contents.pad_options(record, meta.files))
            if kind == SourceKind.MAGNET.value and record.total_bytes == 0:
                # aria2 starts a magnet from the metadata it saved at once (no
                # pause-metadata stop): held paused, its names are checked and stored by
                # the metadata step (MetadataCheck) before aria2 writes a byte.
                options["pause"] = "true"
        if record.completed_at is not None:
            # Its data was complete: a control file left from before the end (a kill -9 in
            # the second after it) says less and would have aria2 fetch it all again.
            await asyncio.to_thread(remove_control_file, Path(record.directory), name)
        if await asyncio.to_thread(has_unverified_data, Path(record.directory), name):
            # Finished data aria2 no longer holds: check it rather than refuse it.
            options["check-integrity"] = "true"
        if kind == SourceKind.TORRENT.value:
            encoded = base64.b64encode(source).decode("ascii")
            gid = await self._rpc.call("aria2.addTorrent", encoded, [], options)
        else:
            gid = await self._rpc.call("aria2.addUri", [uri], options)
        return await self._live.set_gid(record.id, str(gid))


def _describe(parsed: MagnetLink | TorrentMeta) -> str:
    if isinstance(parsed, TorrentMeta):
        return f"torrent {parsed.info_hash} {parsed.name}"
    return f"magnet {parsed.info_hash} {parsed.name or ''}".rstrip()
