"""BEP 47 pad files: zeros that align a torrent's files to pieces, never the user's business.

libtorrent 2.0 (qBittorrent 4.4+) puts ``.pad/<n>`` entries into v1 and hybrid torrents.
aria2 1.36 treats them as ordinary files, and since a pad shares its piece with the end of
the file before it, aria2 writes it even when it is not selected. So ariabot never selects
them, never shows them, and points aria2 (``index-out``) at a scratch folder outside the
chat folder for the bytes it must write: ``<download dir>/.pad-files/<chat>/<info-hash>/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from manager.files import is_inside
from manager.models import FileEntry

__all__ = ["PAD_AREA", "is_pad", "pad_options", "pad_scratch", "remove_pad_scratch"]

PAD_AREA = ".pad-files"
"""The folder below the download dir that holds every download's pad files."""


def is_pad(path: str) -> bool:
    """A pad file's path (``name/.pad/<n>``, ``/``-separated) by BEP 47's convention."""
    elements = path.split("/")
    return len(elements) >= 2 and elements[-2] == ".pad"


def pad_scratch(download_dir: Path, directory: Path, info_hash: str) -> Path:
    """Where aria2 writes one download's pad files: by its own folder's name (its chat's id
    when it was added; a chat Telegram moved to a new id keeps its downloads, and their pads,
    under the old one) and its info-hash."""
    return download_dir / PAD_AREA / directory.name / info_hash


def pad_options(files: Iterable[FileEntry], *, directory: Path, scratch: Path,
                selected: str | None) -> dict[str, str | list[str]]:
    """aria2 options that keep a download's pad files out of its chat folder.

    Parameters:
        files: every file of the torrent (aria2's 1-based indexes), pads included.
        directory: the download's ``dir`` (its chat folder); ``index-out`` is relative to it.
        scratch: :func:`pad_scratch` of the download.
        selected: the user's ``select-file`` choice (never a pad), or None for every file.

    Returns:
        ``select-file`` and ``index-out`` (one per pad), or nothing when there is no pad.
    """
    entries = list(files)
    pads = [entry.index for entry in entries if is_pad(entry.path)]
    if not pads:
        return {}
    relative = os.path.relpath(scratch, directory)
    wanted = selected or ",".join(str(e.index) for e in entries if not is_pad(e.path))
    return {"select-file": wanted,
            "index-out": [f"{index}={relative}/{index}" for index in pads]}


def remove_pad_scratch(download_dir: Path, scratch: Path) -> None:
    """Delete one download's pad files (zeros; nothing else is ever there)."""
    area = download_dir / PAD_AREA
    if scratch.is_dir() and is_inside(scratch, area) and scratch.resolve() != area.resolve():
        shutil.rmtree(scratch, ignore_errors=True)
