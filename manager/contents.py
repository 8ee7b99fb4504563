"""What a download owns on disk: its files, its saved metadata, its pad files, its control
file; found from aria2's file list or the download's metainfo, never from a name a user
supplied (a magnet's ``dn=``), and deleted only inside its chat folder."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from manager.aria2rpc import Aria2Rpc
from manager.config import ManagerConfig
from manager.errors import Aria2Error, InvalidSource
from manager.files import control_file, delete_download_files, is_inside, top_entry
from manager.metainfo import TorrentMeta, parse_torrent
from manager.models import FileEntry, SourceKind
from manager.padfiles import is_pad, pad_options, pad_scratch, remove_pad_scratch
from manager.store import DownloadRecord, PurgedDownload, Store

__all__ = ["Contents", "all_file_entries", "file_entries", "remove_control_file"]


def file_entries(record: DownloadRecord,
                 files: Sequence[dict[str, Any]]) -> tuple[FileEntry, ...]:
    """The user's files of a download, from aria2's file list: pad files, and anything
    aria2 writes outside the chat folder (pads moved by ``index-out``), left out."""
    return tuple(entry for entry in all_file_entries(record, files)
                 if not is_pad(entry.path) and not Path(entry.path).is_absolute())


def all_file_entries(record: DownloadRecord,
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


def remove_control_file(folder: Path, name: str) -> None:
    """Delete a download's own control file (``folder/name.aria2``), nothing else."""
    if not name or name in (".", ".."):
        return
    stale = control_file(folder / name)
    if is_inside(stale, folder):
        stale.unlink(missing_ok=True)


def _remove_saved_metadata(folder: Path, info_hash: str) -> None:
    saved = folder / f"{info_hash}.torrent"
    if is_inside(saved, folder):
        saved.unlink(missing_ok=True)


class Contents:
    """Finds and deletes what one download owns.

    Parameters:
        rpc: the aria2 adapter (for the file list while aria2 holds the download).
        store: the opened store (for the stored .torrent and the names in use).
        config: the download dir and the largest .torrent accepted.
    """

    def __init__(self, rpc: Aria2Rpc, store: Store, config: ManagerConfig) -> None:
        self._rpc = rpc
        self._store = store
        self._config = config

    async def current_files(self, record: DownloadRecord, *,
                            final: bool) -> tuple[FileEntry, ...]:
        """The user's files as aria2 sees them now (empty before metadata, or when a
        ``final`` download is no longer in aria2).

        Raises:
            Aria2Unavailable: aria2 does not answer.
            Aria2Error: aria2 does not know an unfinished download's GID.
        """
        if record.gid is None:
            return ()
        try:
            files = await self._rpc.call("aria2.getFiles", record.gid)
        except Aria2Error:
            if final:
                return ()
            raise
        return file_entries(record, files)

    async def name_clash(self, folder: Path, name: str, info_hash: str) -> str | None:
        """Why this torrent may not write ``folder/name``: another listed download's files
        are there (a hash check would overwrite them). None when the name is free."""
        if not await asyncio.to_thread((folder / name).exists):
            return None
        for other in await self._store.named(str(folder), name):
            if other.info_hash != info_hash:
                return (f"another download in this chat (#{other.id}) already has files "
                        f"named {name!r}; cancel it with its files first")
        return None

    def known_meta(self, record: DownloadRecord, kind: str, source: bytes) -> TorrentMeta | None:
        """The download's metainfo as far as it is known (runs in a worker thread): its
        .torrent, or for a magnet what aria2 saved of its metadata (``bt-save-metadata``).

        Only the metainfo names a magnet's files: its row carries the ``dn=`` until then.
        """
        if kind == SourceKind.TORRENT.value:
            try:
                return parse_torrent(source, max_bytes=self._config.torrent_max_bytes)
            except InvalidSource:
                return None
        return self._saved_metadata(Path(record.directory), record.info_hash)

    def _saved_metadata(self, folder: Path, info_hash: str) -> TorrentMeta | None:
        """The .torrent aria2 saved for a magnet (``bt-save-metadata``), if there is one."""
        saved = folder / f"{info_hash}.torrent"
        try:
            if not is_inside(saved, folder) or (
                saved.stat().st_size > self._config.torrent_max_bytes
            ):
                return None
            return parse_torrent(saved.read_bytes(), max_bytes=self._config.torrent_max_bytes)
        except (OSError, InvalidSource):
            return None

    def pad_options(self, record: DownloadRecord,
                    files: Iterable[FileEntry]) -> dict[str, str | list[str]]:
        """aria2 options that keep this download's pad files out of its chat folder."""
        return pad_options(files, directory=Path(record.directory),
                           scratch=self._pad_scratch(record), selected=record.selected_files)

    def _pad_scratch(self, record: DownloadRecord) -> Path:
        return pad_scratch(self._config.download_dir, record.chat_id, record.info_hash)

    async def paths(self, record: DownloadRecord) -> list[Path]:
        """Every file of a download: from aria2 while it knows it, else from the metainfo
        (the stored .torrent, or the one aria2 saved for a magnet)."""
        folder = Path(record.directory)
        if record.gid is not None:
            with contextlib.suppress(Aria2Error):
                files = await self._rpc.call("aria2.getFiles", record.gid)
                # In the chat folder only: pad files are the scratch's, removed on their own.
                paths = [folder / entry.path for entry in all_file_entries(record, files)
                         if not Path(entry.path).is_absolute()]
                if paths:
                    return paths
        stored = await self._store.source(record.id)
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
                                           max_bytes=self._config.torrent_max_bytes)
        except InvalidSource:
            return []
        return [folder / entry.path for entry in meta.files]

    async def delete(self, record: DownloadRecord, paths: list[Path]) -> int:
        """Delete ``paths`` (from :meth:`paths`), the saved metadata and the pad files of a
        download; returns how many files were deleted."""
        folder = Path(record.directory)
        # The top entry comes from the files, never from the row's name: before the
        # metadata arrives that is the magnet's dn=, which any file may be called.
        top = top_entry(folder, paths)
        deleted = await asyncio.to_thread(delete_download_files, folder, paths, top)
        await asyncio.to_thread(_remove_saved_metadata, folder, record.info_hash)
        await asyncio.to_thread(remove_pad_scratch, self._config.download_dir,
                                self._pad_scratch(record))
        return deleted

    def delete_purged(self, purged: PurgedDownload) -> int:
        """Delete the files of one purged download (runs in a worker thread)."""
        record = purged.record
        folder = Path(record.directory)
        paths = [folder / f.path for f in self._purged_files(purged)]
        deleted = delete_download_files(folder, paths, top_entry(folder, paths))
        _remove_saved_metadata(folder, record.info_hash)
        remove_pad_scratch(self._config.download_dir, self._pad_scratch(record))
        return deleted

    def _purged_files(self, purged: PurgedDownload) -> tuple[FileEntry, ...]:
        """The files a purged download wrote, from its metainfo (empty when unknown)."""
        record = purged.record
        # Without its stored .torrent, only what aria2 saved of the metadata can tell.
        kind = record.source_kind if purged.source else SourceKind.MAGNET.value
        meta = self.known_meta(record, kind, purged.source or b"")
        return meta.files if meta is not None else ()
