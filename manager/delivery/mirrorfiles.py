"""What a mirror uploads (a download's own chosen files, complete on disk, and nothing else)
and what the bot may send into the chat (its own files, each one that is complete on disk).

They come from the download's metainfo (its stored .torrent, or the one aria2 saved for a
magnet), never from a name a user gave (a magnet's ``dn=``) nor from a listing of its
folder: another download's files, or anything a user dropped next to them, are never
uploaded or sent, and so never deleted after a move either.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from manager.downloads import Contents, is_pad
from manager.files import is_inside
from manager.models import FileEntry
from manager.sources import TorrentMeta
from manager.store import DownloadRecord, Store

__all__ = ["own_complete_files", "own_files"]


async def own_files(record: DownloadRecord, store: Store,
                    contents: Contents) -> tuple[FileEntry, ...]:
    """The download's files (pads left out) in the order ``/files`` numbers them, with
    paths relative to its chat folder; empty when the metainfo is unknown.

    Each entry's ``completed`` is its length when the file is on disk, inside the folder,
    with exactly that size (what may be sent); otherwise 0. ``selected`` follows the
    download's choice of files. Unlike aria2's file list, this stays known after aria2
    forgot a finished download (a restart, a purge of aria2's results).
    """
    stored = await store.downloads.source(record.id)
    kind, source = stored if stored is not None else (record.source_kind, b"")
    meta = await asyncio.to_thread(contents.known_meta, record, kind, source)
    if meta is None:
        return ()
    return await asyncio.to_thread(_on_disk, meta, Path(record.directory),
                                   _selected_indexes(record.selected_files))


def _on_disk(meta: TorrentMeta, folder: Path, selected: set[int] | None
             ) -> tuple[FileEntry, ...]:
    entries = []
    for entry in meta.files:
        if is_pad(entry.path):
            continue
        path = folder / entry.path
        try:
            complete = (is_inside(path, folder) and path.is_file()
                        and path.stat().st_size == entry.length)
        except OSError:
            complete = False
        entries.append(FileEntry(index=entry.index, path=entry.path, length=entry.length,
                                 completed=entry.length if complete else 0,
                                 selected=selected is None or entry.index in selected))
    return tuple(entries)


async def own_complete_files(record: DownloadRecord, store: Store,
                             contents: Contents) -> tuple[str, ...]:
    """The download's chosen files (pads left out) as POSIX paths relative to its chat
    folder; empty when the metainfo is unknown or a chosen file is missing or changed size
    (then nothing is uploaded rather than part of it)."""
    stored = await store.downloads.source(record.id)
    kind, source = stored if stored is not None else (record.source_kind, b"")
    meta = await asyncio.to_thread(contents.known_meta, record, kind, source)
    if meta is None:
        return ()
    return await asyncio.to_thread(_complete, meta, Path(record.directory),
                                   _selected_indexes(record.selected_files))


def _complete(meta: TorrentMeta, folder: Path, selected: set[int] | None) -> tuple[str, ...]:
    chosen = []
    for entry in meta.files:
        if (selected is not None and entry.index not in selected) or is_pad(entry.path):
            continue
        path = folder / entry.path
        if (not is_inside(path, folder) or not path.is_file()
                or path.stat().st_size != entry.length):
            return ()
        chosen.append(entry.path)
    return tuple(chosen)


def _selected_indexes(selected: str | None) -> set[int] | None:
    """aria2's ``select-file`` list as numbers, or None when every file is chosen."""
    if not selected:
        return None
    numbers: set[int] = set()
    for part in selected.split(","):
        with contextlib.suppress(ValueError):
            numbers.add(int(part))
    return numbers or None
