"""The few file-system checks the bot makes before it uploads a finished download."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from bot.delivery import OutFile

__all__ = ["deliverable_file", "out_file"]


def out_file(folder: Path, index: int, relative: str, length: int) -> OutFile | None:
    """A download's own file, ready to send, or None when it must not or cannot be.

    Parameters:
        folder: the chat's folder; the file (symlinks resolved) must lie below it.
        index: aria2's 1-based index of the file in the download.
        relative: the file's path in that folder, from the download's metainfo.
        length: its size in the metainfo; a file of another size on disk is not it.

    Returns:
        The file with its resolved path, size and modification time; None when the path
        is absolute or climbs out, the file is missing, not a regular file, outside the
        folder once resolved, or of another size.
    """
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        return None
    try:
        root = folder.resolve(strict=True)
        resolved = (folder / relative).resolve(strict=True)
        stat = resolved.stat()
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(root) or not resolved.is_file() or stat.st_size != length:
        return None
    return OutFile(index, relative, resolved, stat.st_size, stat.st_mtime_ns)


def deliverable_file(path: str | None, folder: Path) -> Path | None:
    """The single file of a download, or None when it is a folder or cannot be sent.

    Parameters:
        path: the download's file or folder (``Torrent.path``).
        folder: the chat's folder; the file (symlinks resolved) must lie below it.
        index: aria2's 1-based index of the file in the download.

    Returns:
        The resolved path of a regular file inside ``folder`` (any size: a big one is sent
        in parts); None for a folder (several files), a missing file, or one outside the
        chat's folder.
    """
    if not path:
        return None
    try:
        resolved = Path(path).resolve(strict=True)
        root = folder.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if resolved == root or not resolved.is_relative_to(root):
        return None
    return resolved if resolved.is_file() else None
