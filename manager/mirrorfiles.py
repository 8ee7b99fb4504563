"""What a mirror uploads: a download's own chosen files, complete on disk, and nothing else.

They come from the download's metainfo (its stored .torrent, or the one aria2 saved for a
magnet), never from a name a user gave (a magnet's ``dn=``) nor from a listing of its
folder: another download's files, or anything a user dropped next to them, are never
uploaded, and so never deleted after a move either.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from manager.contents import Contents
from manager.files import is_inside
from manager.metainfo import TorrentMeta
from manager.padfiles import is_pad
from manager.store import DownloadRecord, Store

__all__ = ["own_complete_files"]


async def own_complete_files(record: DownloadRecord, store: Store,
                             contents: Contents) -> tuple[str, ...]:
    """The download's chosen files (pads left out) as POSIX paths relative to its chat
    folder; empty when the metainfo is unknown or a chosen file is missing or changed size
    (then nothing is uploaded rather than part of it)."""
    stored = await store.source(record.id)
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
