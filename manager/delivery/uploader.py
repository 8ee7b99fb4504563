"""The seam between the manager's mirror jobs and the program that uploads (rclone).

The manager decides *what* is uploaded (a download's own files, nothing else), *when*
(retries with backoff, after a restart) and what happens afterwards (verify, then maybe
delete the local files). The :class:`Uploader` it is given does the transfers: the
supervisor's rclone runner in production. Keeping the protocol here lets the manager stay
ignorant of processes and of rclone's command line, like it is of aria2c's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["UploadError", "UploadJob", "UploadStats", "Uploader"]


@dataclass(frozen=True)
class UploadJob:
    """One download's files to upload.

    Attributes:
        download_id: the download's public id (for logs).
        source_dir: the download's chat folder; ``files`` are relative to it.
        files: the download's own files, relative POSIX paths inside ``source_dir``.
        remote: the rclone destination root (``gdrive:ariabot``).
        folder: the download's own place below ``remote`` (``<chat id>/<id>-<hash>``),
            where the files keep their relative paths; "" for the root itself (a mirror
            stored before downloads had places of their own).
    """

    download_id: int
    source_dir: Path
    files: tuple[str, ...]
    remote: str
    folder: str = ""

    @property
    def destination(self) -> str:
        """Where the files go: the download's own place at the destination."""
        return _below(self.remote, self.folder)

    @property
    def top_destination(self) -> str:
        """The download's top entry (its file, or its folder) at the destination."""
        return _below(self.destination, self.top)

    @property
    def top(self) -> str:
        """The download's top entry (its file, or its folder), relative to its place."""
        return self.files[0].split("/", 1)[0] if self.files else ""


def _below(remote: str, relative: str) -> str:
    """``relative`` below the rclone destination ``remote`` (``gdrive:``, ``gdrive:a/b``,
    ``/srv/mirror``); ``remote`` itself when ``relative`` is empty."""
    if not relative:
        return remote
    return f"{remote}{relative}" if remote.endswith((":", "/")) else f"{remote}/{relative}"


@dataclass(frozen=True)
class UploadStats:
    """How far one transfer is: bytes sent of all, speed (bytes/s) and seconds left."""

    bytes: int
    total_bytes: int
    speed: int
    eta_seconds: int | None


class UploadError(Exception):
    """A transfer (or its verification) failed; ``str()`` is the reason in plain words,
    without secrets or server paths.

    Attributes:
        retryable: trying again may help (the remote was down, a connection broke); False
            when it cannot (a bad remote name, a refused login).
    """

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class Uploader(Protocol):
    """Copies files to an rclone destination, checks them there, and asks for a link."""

    async def copy(self, job: UploadJob, on_progress: Callable[[UploadStats], None],
                   on_started: Callable[[int], None]) -> None:
        """Upload ``job``'s files; files already there and equal are skipped.

        ``on_progress`` gets the transfer's stats as they come; ``on_started`` the pid of
        the process that transfers (stored, so a later ariabot can stop a leftover one).
        Cancelling the awaiting task stops the transfer.

        Raises:
            UploadError: the transfer failed.
        """
        ...

    async def verify(self, job: UploadJob) -> None:
        """Check that every file is at the destination with its size (and hash, where the
        remote has one in common with the local disk).

        Raises:
            UploadError: a file is missing or differs (retryable: copying again fixes it).
        """
        ...

    async def link(self, job: UploadJob) -> str | None:
        """A public link to the uploaded download, or None when the remote has none."""
        ...

    def stop_leftover(self, pid: int, source_dir: Path) -> None:
        """Stop an uploader process a killed ariabot left behind, uploading from
        ``source_dir`` (matched by pid, name and command line: a reused pid is left alone)."""
        ...
