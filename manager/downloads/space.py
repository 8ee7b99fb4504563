"""Disk space for a new download: free space minus what the downloads already running or
queued will still write (that space is theirs first)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from manager.downloads.live import LiveDownloads
from manager.errors import NotEnoughSpace
from manager.files import free_bytes
from manager.units import human_size

__all__ = ["SpaceCheck"]


class SpaceCheck:
    """Refuses downloads that do not fit beside the reservations of the others.

    Parameters:
        live: the tracked downloads (their missing bytes are reserved).
        disk_usage: ``psutil.disk_usage``-like function (injected by tests); None for psutil.
    """

    def __init__(self, live: LiveDownloads,
                 disk_usage: Callable[[str], object] | None = None) -> None:
        self._live = live
        self._disk_usage = disk_usage

    def check(self, folder: Path, needed: int, *, download_id: int | None = None) -> None:
        """Refuse ``needed`` bytes more in ``folder`` unless they fit beside what the
        downloads already running or queued (but ``download_id`` itself) will still write.

        Raises:
            NotEnoughSpace: with the numbers, so the user knows what to free.
        """
        if needed <= 0:
            return
        free = self._free(folder)
        owed = self._live.reserved(except_id=download_id)
        reserved = sum(owed)
        if needed > free - reserved:
            detail = f"{human_size(free)} free"
            if reserved:
                count = sum(1 for amount in owed if amount)
                detail += (f", of which {human_size(reserved)} is reserved for {count} "
                           f"download{'s' if count != 1 else ''} already running or queued")
            raise NotEnoughSpace(f"not enough disk space: it needs {human_size(needed)}, {detail}")

    def room(self, folder: Path) -> int:
        """Bytes a new download may take in ``folder`` (free space minus what the downloads
        running or queued will still write): what a node claims from the shared queue fits
        (:mod:`~manager.store.placements`). Runs in a worker thread (a disk call)."""
        return max(0, self._free(folder) - sum(self._live.reserved()))

    def _free(self, folder: Path) -> int:
        return free_bytes(folder, self._disk_usage) if self._disk_usage else free_bytes(folder)
