"""What a download owns on disk: its files, its saved metadata, its pad files, its control
file; found from aria2's file list or the download's metainfo, never from a name a user
supplied (a magnet's ``dn=``), and deleted only inside its chat folder.

One ownership rule (:meth:`Contents.owner`) decides both who may take a name and whose
files may go: a download in the list that is not cancelled, and whose name is known (a
.torrent's, or a magnet's once its metadata arrived), owns ``<chat folder>/<its name>``.
No second download may take that name, even before the first wrote a byte, and no delete
(cancel, purge, a mirror's move) removes files another download owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manager.aria2 import Aria2Rpc
from manager.config import ManagerConfig
from manager.downloads.padfiles import is_pad, pad_options, pad_scratch, remove_pad_scratch
from manager.errors import Aria2Error, InvalidSource
from manager.files import control_file, delete_download_files, is_inside, top_entry
from manager.models import FileEntry, SourceKind, TorrentState
from manager.sources import TorrentMeta, parse_torrent
from manager.store import DownloadRecord, PurgedDownload, Store

__all__ = ["Contents", "Deletion", "all_file_entries", "claims_its_files", "file_entries",
           "owns_its_name", "remove_control_file"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deletion:
    """What deleting a download's files did.

    Attributes:
        files: how many files were deleted.
        kept: why its data files were kept (another download owns their name), or None.
        kept_for: that other download's id, when they were kept.
    """

    files: int
    kept: str | None = None
    kept_for: int | None = None


_WRITING = frozenset(s.value for s in (TorrentState.DOWNLOADING, TorrentState.SEEDING,
                                       TorrentState.COMPLETE))


def owns_its_name(record: DownloadRecord) -> bool:
    """Whether a download owns ``<its folder>/<its name>`` (see the module's rule): it is
    not cancelled, and its name is known. A magnet's row carries its ``dn=`` until the
    metadata arrives and gives it its name and size; one still without a size that never
    downloaded (waiting for metadata, paused or failed before it: a dead swarm, a refused
    name) owns nothing.
    """
    return record.state != TorrentState.CANCELLED.value and _named(record)


def claims_its_files(record: DownloadRecord, info_hash: str) -> bool:
    """Whether a row of torrent ``info_hash`` claims the files named like it: it is that
    torrent, and its name came from the metainfo (a magnet's ``dn=`` claims nothing)."""
    return record.info_hash == info_hash and _named(record)


def _named(record: DownloadRecord) -> bool:
    """Whether the download ever held its name: a ``.torrent``'s, or a magnet's once its
    metadata passed the checks (it has a size) or it wrote (a magnet refused by its name, a
    dead swarm: never)."""
    return (record.source_kind != SourceKind.MAGNET.value or record.total_bytes > 0
            or record.state in _WRITING)


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


def _remove_saved_metadata(folder: Path, info_hash: str, kind: str,
                           source: bytes | None) -> None:
    """Delete the metainfo aria2 saved beside a download: ``<info-hash>.torrent`` for a
    magnet (``bt-save-metadata``), ``<SHA-1 of the file>.torrent`` for an added .torrent
    (``rpc-save-upload-metadata``)."""
    names = [f"{info_hash}.torrent"]
    if kind == SourceKind.TORRENT.value and source:
        names.append(f"{hashlib.sha1(source).hexdigest()}.torrent")  # noqa: S324 - aria2's name
    for name in names:
        saved = folder / name
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

    async def owner(self, folder: Path, name: str, info_hash: str) -> DownloadRecord | None:
        """The download other than ``info_hash``'s that owns ``folder/name`` (the rule of
        :func:`owns_its_name`), or None: that name is taken, and those files are not to
        be deleted for anyone else."""
        for other in await self._store.downloads.named(str(folder), name):
            if other.info_hash != info_hash and owns_its_name(other):
                return other
        return None

    async def name_clash(self, folder: Path, name: str, info_hash: str, *,
                         claimed: bool = False, arriving: int | None = None) -> str | None:
        """Why this torrent may not write ``folder/name``: another download owns the name
        (it may not have written a byte yet), or files are there that it does not claim (a
        cancelled download's, kept; a purge's, kept; the user's own): a hash check would
        overwrite them. A stored row of this same torrent in that folder claims its files
        (a finished download aria2 forgot, a cancelled one added again), and so does
        ``claimed`` (the caller knows they are this torrent's). The row of download
        ``arriving`` claims nothing: it has just come to this folder (claimed from the shared
        queue) and wrote nothing here yet. None when free."""
        other = await self.owner(folder, name, info_hash)
        if other is None and await asyncio.to_thread(os.path.lexists, folder / name):
            named = [o for o in await self._store.downloads.named(str(folder), name)
                     if o.id != arriving]
            other = next((o for o in named if o.info_hash != info_hash), None)
            if other is None and not claimed and not any(
                    claims_its_files(o, info_hash) for o in named):
                return (f"files named {name!r} are already in this chat's folder and no "
                        "download here owns them; move or delete them first")
        if other is None:
            return None
        return (f"another download in this chat (#{other.id}) already has files "
                f"named {name!r}; cancel it with its files first")

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
        if not record.directory:
            return None  # no node claimed it yet: nothing was saved anywhere
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
        return pad_scratch(self._config.download_dir, Path(record.directory), record.info_hash)

    async def paths(self, record: DownloadRecord) -> list[Path]:
        """Every file of a download: from aria2 while it knows it, else from the metainfo
        (the stored .torrent, or the one aria2 saved for a magnet); none for one that no
        node claimed yet."""
        if not record.directory:
            return []
        folder = Path(record.directory)
        if record.gid is not None:
            with contextlib.suppress(Aria2Error):
                files = await self._rpc.call("aria2.getFiles", record.gid)
                # In the chat folder only: pad files are the scratch's, removed on their own.
                paths = [folder / entry.path for entry in all_file_entries(record, files)
                         if not Path(entry.path).is_absolute()]
                if paths:
                    return paths
        stored = await self._store.downloads.source(record.id)
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

    async def delete(self, record: DownloadRecord, paths: list[Path]) -> Deletion:
        """Delete ``paths`` (from :meth:`paths`), the saved metadata and the pad files of a
        download; its data files stay when another download owns their name."""
        stored = await self._store.downloads.source(record.id)
        source = stored[1] if stored is not None else None
        return await self._delete_owned(record, paths, source)

    async def delete_purged(self, purged: PurgedDownload) -> Deletion:
        """Delete the files of one purged download (its row is gone already), like
        :meth:`delete`."""
        files = await asyncio.to_thread(self._purged_files, purged)
        folder = Path(purged.record.directory)
        return await self._delete_owned(purged.record, [folder / f.path for f in files],
                                        purged.source)

    async def _delete_owned(self, record: DownloadRecord, paths: list[Path],
                            source: bytes | None) -> Deletion:
        if not record.directory:
            return Deletion(0)  # no node ever claimed it: it wrote nothing anywhere
        folder = Path(record.directory)
        # The top entry comes from the files, never from the row's name: before the
        # metadata arrives that is the magnet's dn=, which any file may be called.
        top = top_entry(folder, paths)
        kept = kept_for = None
        for name in sorted({p.relative_to(folder).parts[0] for p in paths
                            if p.is_relative_to(folder) and p != folder}):
            other = await self.owner(folder, name, record.info_hash)
            if other is not None:
                kept, kept_for = f"#{other.id} in the list has the same name {name!r}", other.id
                log.warning("#%d: its files named %r are kept: %s", record.id, name, kept)
                paths, top = [], None
                break
        if paths and not _named(record):
            # A magnet that never held its name (refused by it): the metadata aria2 saved
            # names files that were there before it, someone else's, never its own.
            kept = "it never wrote them (they were there before it)"
            log.warning("#%d: the files its metadata names are kept: %s", record.id, kept)
            paths, top = [], None
        deleted = await asyncio.to_thread(delete_download_files, folder, paths, top)
        await asyncio.to_thread(_remove_saved_metadata, folder, record.info_hash,
                                record.source_kind, source)
        await asyncio.to_thread(remove_pad_scratch, self._config.download_dir,
                                self._pad_scratch(record))
        return Deletion(deleted, kept, kept_for)

    def _purged_files(self, purged: PurgedDownload) -> tuple[FileEntry, ...]:
        """The files a purged download wrote, from its metainfo (empty when unknown)."""
        record = purged.record
        # Without its stored .torrent, only what aria2 saved of the metadata can tell.
        kind = record.source_kind if purged.source else SourceKind.MAGNET.value
        meta = self.known_meta(record, kind, purged.source or b"")
        return meta.files if meta is not None else ()
