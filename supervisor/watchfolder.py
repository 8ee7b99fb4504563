"""The watch folder: a ``.torrent`` or ``.magnet`` file dropped in ``ARIABOT_WATCH_DIR`` is
added for ``ARIABOT_WATCH_CHAT``, then moved to ``added/`` or to ``failed/`` (with a
``.reason.txt`` of one line beside it), the "blackhole" Sonarr, Radarr and other local tools
write to.

A file is read once it has stopped changing: its size and modification time are the same at
two scans and it was last written :data:`SETTLE` seconds ago or more, so a file still being
written is never read (a writer that stalls longer than that is the limit of any watch
folder). Only regular files directly in the folder are read, never through a symlink, and
never more than the ``.torrent`` size cap. A file added and not yet moved when ariabot
stopped is added again at the next start: the download already in the list answers, and the
file moves to ``added/`` (nothing is added twice). A refusal the user must act on (a damaged
file, a name clash) moves it to ``failed/``; a passing one (the downloader restarting, the
database away) leaves it for the next scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from manager import AddResult, Aria2Unavailable, ManagerError, StoreError

__all__ = ["SCAN_INTERVAL", "SETTLE", "Adder", "WatchFolder"]

log = logging.getLogger(__name__)

SCAN_INTERVAL = 2.0
"""Seconds between two looks at the folder."""
SETTLE = 2.0
"""Seconds a file must have been left alone before it is read."""
_KINDS = (".torrent", ".magnet")
_MAGNET_MAX = 8192
_PASSING = (Aria2Unavailable, StoreError)
"""Refusals that pass by themselves: the file waits for the next scan."""


class Adder(Protocol):
    """What the watch folder needs of the manager."""

    async def add(self, source: str | bytes, chat_id: int, user_id: int,
                  message_id: int | None = None) -> AddResult: ...


@dataclass(frozen=True)
class _Seen:
    size: int
    mtime_ns: int


class WatchFolder:
    """Scans ``folder`` every :data:`SCAN_INTERVAL` seconds and adds what it finds.

    Parameters:
        manager: adds the downloads.
        folder: the watched folder (``added/`` and ``failed/`` are made inside it).
        chat_id: the chat the downloads belong to (0: the local one).
        max_bytes: the largest ``.torrent`` read.
        clock: wall-clock time in seconds (injected by tests), compared with mtimes.
    """

    def __init__(self, manager: Adder, folder: Path, chat_id: int, max_bytes: int, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._manager = manager
        self._folder = folder
        self._chat_id = chat_id
        self._max_bytes = max_bytes
        self._clock = clock
        self._seen: dict[str, _Seen] = {}
        self._waiting: set[str] = set()
        """Names said to be waiting to settle (said once per file)."""
        self._deferred: set[str] = set()
        """Names whose add waits for the downloader or the database (said once per file)."""

    async def run(self) -> None:
        """Scan until cancelled; a scan that fails is logged (once while it keeps failing)
        and made again."""
        log.info("watching %s for .torrent and .magnet files (for chat %d)", self._folder,
                 self._chat_id)
        unusable = False
        while True:
            try:
                await asyncio.to_thread(self._make_folders)
                await self.scan()
            except OSError as error:
                if not unusable:
                    log.warning("watch folder %s cannot be used: %s; it is tried again every "
                                "%.0f s", self._folder, error, SCAN_INTERVAL)
                unusable = True
            except Exception:
                log.exception("watch folder: a scan failed; the next one is in %.0f s",
                              SCAN_INTERVAL)
            else:
                if unusable:
                    log.info("watch folder %s can be used again", self._folder)
                unusable = False
            await asyncio.sleep(SCAN_INTERVAL)  # a period, not a wait for anything

    def _make_folders(self) -> None:
        for name in ("added", "failed"):
            (self._folder / name).mkdir(parents=True, exist_ok=True)

    async def scan(self) -> None:
        """One look: add each file that has settled."""
        found = await asyncio.to_thread(self._candidates)
        names = {name for name, _ in found}
        self._seen = {name: seen for name, seen in self._seen.items() if name in names}
        self._waiting &= names
        self._deferred &= names
        for name, seen in found:
            if self._seen.get(name) != seen or self._clock() - seen.mtime_ns / 1e9 < SETTLE:
                self._seen[name] = seen
                if name not in self._waiting:
                    self._waiting.add(name)
                    log.info("watch folder: %s is read once it has not changed for %.0f s",
                             name, SETTLE)
                continue
            await self._take(name)

    def _candidates(self) -> list[tuple[str, _Seen]]:
        """The regular ``.torrent`` and ``.magnet`` files in the folder (not hidden ones: a
        tool's temporary file), with their size and modification time."""
        found = []
        with os.scandir(self._folder) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.name.lower().endswith(_KINDS):
                    continue
                status = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(status.st_mode):
                    found.append((entry.name, _Seen(status.st_size, status.st_mtime_ns)))
        return found

    async def _take(self, name: str) -> None:
        try:
            source = await asyncio.to_thread(self._read, name)
            result = await self._manager.add(source, self._chat_id, 0)
        except _PASSING as error:
            if name not in self._deferred:
                self._deferred.add(name)
                log.info("watch folder: %s waits until it can be added: %s", name, error)
            return
        except ManagerError as error:
            self._forget(name)
            await asyncio.to_thread(self._move, name, "failed", str(error))
            log.warning("watch folder: %s was not added: %s", name, error)
            return
        self._forget(name)
        await asyncio.to_thread(self._move, name, "added", None)
        torrent = result.torrent
        log.info("watch folder: %s %s #%d for chat %d", name,
                 "is already in the list as" if result.existing else "added as", torrent.id,
                 self._chat_id)

    def _forget(self, name: str) -> None:
        """The file is taken: a new one of that name starts afresh."""
        self._seen.pop(name, None)
        self._waiting.discard(name)
        self._deferred.discard(name)

    def _read(self, name: str) -> str | bytes:
        """The file's content: a magnet link (text) or the ``.torrent``'s bytes.

        Raises:
            _Unreadable: it cannot be read, or is too large.
        """
        limit = _MAGNET_MAX if name.lower().endswith(".magnet") else self._max_bytes
        try:
            descriptor = os.open(self._folder / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as error:
            raise _Unreadable(f"it cannot be read ({error.strerror})") from None
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise _Unreadable(f"it is larger than {limit} bytes, the most such a file may be")
        if name.lower().endswith(".magnet"):
            return data.decode("utf-8", errors="replace").strip()
        return data

    def _move(self, name: str, where: str, reason: str | None) -> None:
        """Move the file into ``where``/ under a free name; a refusal's reason beside it."""
        target = self._folder / where / name
        number = 1
        while target.exists():
            target = target.with_name(f"{Path(name).stem}-{number}{Path(name).suffix}")
            number += 1
        try:
            (self._folder / name).rename(target)
        except OSError as error:
            log.warning("watch folder: %s cannot be moved to %s/: %s", name, where, error)
            return
        if reason is not None:
            with contextlib.suppress(OSError):
                target.with_name(target.name + ".reason.txt").write_text(reason + "\n")


class _Unreadable(ManagerError):
    """A dropped file that cannot be read as a source (the reason is its ``failed/`` note)."""
