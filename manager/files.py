"""The chat folders on disk: creating them, checking space, deleting a download's files.

Every path that is deleted is resolved and checked to lie inside the chat's folder first, so
neither a hostile torrent nor a bug can make ariabot remove anything else.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

__all__ = [
    "chat_folder",
    "control_file",
    "delete_download_files",
    "free_bytes",
    "has_unverified_data",
    "is_inside",
    "top_entry",
]


def chat_folder(download_dir: Path, chat_id: int, mode: int = 0o700) -> Path:
    """``<download dir>/torrents/<chat_id>/``, created (with ``mode``) when missing."""
    folder = download_dir / "torrents" / str(int(chat_id))
    folder.mkdir(parents=True, exist_ok=True, mode=mode)
    return folder


def free_bytes(
    folder: Path, disk_usage: Callable[[str], object] = psutil.disk_usage
) -> int:
    """Free space where ``folder`` lives (``psutil.disk_usage``; injectable for tests)."""
    return int(disk_usage(str(folder)).free)  # type: ignore[attr-defined]


def is_inside(path: Path, folder: Path) -> bool:
    """True when ``path`` (symlinks resolved) is ``folder`` or lies below it."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def control_file(top: Path) -> Path:
    """aria2's control file (``<name>.aria2``) of the download whose top entry is ``top``."""
    return top.with_name(top.name + ".aria2")


def has_unverified_data(folder: Path, name: str) -> bool:
    """``folder/name`` exists, but aria2's control file beside it does not.

    That is what a finished download looks like once aria2 no longer holds it (after a
    restart, a cancel or a purge): aria2 refuses to add it again (errorCode 13, "exists, but
    a control file does not exist") unless it hash-checks the data first (``check-integrity``),
    which keeps what is good and downloads only what is missing.
    """
    if not name or name in (".", ".."):
        return False
    top = folder / name
    if not is_inside(top, folder) or top.resolve() == folder.resolve():
        return False
    return top.exists() and not control_file(top).exists()


def top_entry(folder: Path, paths: Iterable[Path]) -> Path | None:
    """The one top-level file or folder (``folder/<name>``) that holds all of ``paths``.

    None when there are no paths, or they do not share one entry below ``folder``: then
    nothing but the files themselves may be removed.
    """
    tops = set()
    for path in paths:
        try:
            tops.add(path.relative_to(folder).parts[0])
        except (ValueError, IndexError):
            return None
    return folder / tops.pop() if len(tops) == 1 else None


def delete_download_files(folder: Path, paths: Iterable[Path], top: Path | None) -> int:
    """Delete a download's files and aria2's control files, staying inside ``folder``.

    Parameters:
        folder: the chat's folder; nothing outside it is touched.
        paths: the download's files (absolute).
        top: the download's top-level file or folder (``folder/<name>``), removed last when
            it is empty (or is a file).

    Returns:
        How many files were deleted.
    """
    deleted = 0
    candidates = list(paths)
    if top is not None:
        candidates.append(control_file(top))
    for path in candidates:
        if path == folder or not is_inside(path, folder):
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() or path.is_symlink():
                path.unlink()
                deleted += 1
    if top is not None and top != folder and is_inside(top, folder):
        if top.is_dir() and not top.is_symlink():
            # Only empty folders left by the files above: never a user's other files.
            for root, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    Path(root).rmdir()
        elif top.is_file():
            top.unlink()
            deleted += 1
    return deleted

