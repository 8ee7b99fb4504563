"""The few file-system checks the bot makes before it uploads a finished download."""

from __future__ import annotations

from pathlib import Path

__all__ = ["deliverable_file"]


def deliverable_file(path: str | None, folder: Path, limit: int) -> Path | None:
    """The file to upload for a download, or None when it must not or cannot be sent.

    Parameters:
        path: the download's file or folder (``Torrent.path``).
        folder: the chat's folder; the file (symlinks resolved) must lie below it.
        limit: the largest size allowed, in bytes.

    Returns:
        The resolved path of a regular file inside ``folder`` of at most ``limit`` bytes;
        None for a folder (several files), a missing file, one outside the chat's folder, or
        one too large.
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
    try:
        stat = resolved.stat()
    except OSError:
        return None
    if not resolved.is_file() or stat.st_size > limit:
        return None
    return resolved
