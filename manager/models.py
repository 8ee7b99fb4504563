"""What the manager hands out: immutable snapshots of downloads and their states.

Callers (the bot, the CLI) never see aria2p objects or peewee rows: a :class:`Torrent` is a
frozen copy taken at one moment, safe to keep, compare and pass between tasks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

__all__ = ["FileEntry", "FilePlan", "Mirror", "MirrorState", "SourceKind", "Torrent",
           "TorrentState"]


class TorrentState(enum.Enum):
    """The states a user sees, in the order a download normally passes through them."""

    QUEUED = "queued"
    METADATA = "metadata"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    SEEDING = "seeding"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """Nothing more will happen to the download without a user's action."""
        return self in (TorrentState.COMPLETE, TorrentState.ERROR, TorrentState.CANCELLED)

    @property
    def label(self) -> str:
        """Words for a status line."""
        return _LABELS[self]


_LABELS = MappingProxyType({
    TorrentState.QUEUED: "queued",
    TorrentState.METADATA: "fetching metadata",
    TorrentState.DOWNLOADING: "downloading",
    TorrentState.PAUSED: "paused",
    TorrentState.SEEDING: "seeding",
    TorrentState.COMPLETE: "complete",
    TorrentState.ERROR: "error",
    TorrentState.CANCELLED: "cancelled",
})


class MirrorState(enum.Enum):
    """Where a download's copy to the cloud (the rclone destination) stands."""

    QUEUED = "queued"
    UPLOADING = "uploading"
    RETRYING = "retrying"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def is_final(self) -> bool:
        """Nothing more happens to this mirror unless a user asks again."""
        return self in (MirrorState.DONE, MirrorState.FAILED, MirrorState.STOPPED)

    @property
    def label(self) -> str:
        """Words for a status line."""
        return _MIRROR_LABELS[self]


_MIRROR_LABELS = MappingProxyType({
    MirrorState.QUEUED: "waiting to upload",
    MirrorState.UPLOADING: "uploading",
    MirrorState.RETRYING: "upload failed, retrying",
    MirrorState.VERIFYING: "checking the upload",
    MirrorState.DONE: "uploaded",
    MirrorState.FAILED: "upload failed",
    MirrorState.STOPPED: "upload stopped",
})


@dataclass(frozen=True)
class Mirror:
    """A snapshot of one download's upload to the mirror destination.

    Attributes:
        state: where it stands.
        destination: where it goes, fit to show a user (its own place and its name,
            ``gdrive:ariabot/<chat id>/<id>-<hash>/name``; never a path of this server).
        move: local files are deleted once the upload is verified.
        attempt: the current (or last) attempt, 1-based.
        attempts: how many attempts it gets.
        retry_in: seconds until the next attempt, while retrying.
        error: why the last attempt failed (rclone's reason in words), or None.
        link: a public link to it, when the remote gives one.
    """

    state: MirrorState
    destination: str
    move: bool = False
    bytes: int = 0
    total_bytes: int = 0
    speed: int = 0
    eta_seconds: int | None = None
    attempt: int = 0
    attempts: int = 0
    retry_in: float | None = None
    error: str | None = None
    link: str | None = None
    local_deleted: bool = False

    @property
    def progress(self) -> float:
        """Fraction uploaded, 0.0 to 1.0."""
        if self.state is MirrorState.DONE:
            return 1.0
        if self.total_bytes <= 0:
            return 0.0
        return min(1.0, self.bytes / self.total_bytes)


class SourceKind(enum.Enum):
    """How the download was given to ariabot."""

    MAGNET = "magnet"
    TORRENT = "torrent"


@dataclass(frozen=True)
class FileEntry:
    """One file of a torrent. ``index`` is aria2's 1-based file index (for ``select-file``)."""

    index: int
    path: str
    length: int
    completed: int = 0
    selected: bool = True


@dataclass(frozen=True)
class FilePlan:
    """One file of a download as it is sent to a chat in parts: what the parts Telegram
    confirmed are stored under. Another size, modification time or part size is another
    plan (a changed file, a changed upload limit), whose parts are not these.

    Attributes:
        download_id: the download.
        chat_id: the chat the parts went to.
        file_index: aria2's 1-based index of the file in the download.
        file_size: its size in bytes.
        file_mtime_ns: its modification time.
        part_size: the bytes per part (the upload limit).
    """

    download_id: int
    chat_id: int
    file_index: int
    file_size: int
    file_mtime_ns: int
    part_size: int


@dataclass(frozen=True)
class Torrent:
    """A snapshot of one download.

    Attributes:
        id: the short public id users type (``/pause 3``); stable for the row's life.
        info_hash: v1 info-hash, 40 lower-case hex characters: the download's identity.
        chat_id: the chat that owns it (0 for the local CLI).
        queue_position: 1-based place among waiting downloads, when queued.
        stuck_reason: why it does not move, in words ("no peers found for 2 min"), or None.
        path: the file or folder of the download on disk (inside :attr:`directory`).
        directory: the folder it is saved in: its chat's folder when it was added (a chat
            Telegram moved to a new id keeps its earlier downloads in the old id's folder).
        mirror: its upload to the rclone destination, when there is one.
    """

    id: int
    info_hash: str
    name: str
    chat_id: int
    user_id: int
    state: TorrentState
    source_kind: SourceKind
    total_bytes: int = 0
    completed_bytes: int = 0
    upload_bytes: int = 0
    download_speed: int = 0
    upload_speed: int = 0
    seeders: int = 0
    peers: int = 0
    queue_position: int | None = None
    error: str | None = None
    stuck_reason: str | None = None
    message_id: int | None = None
    path: str | None = None
    directory: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    node: str | None = None
    """The node whose aria2c and disk hold it (None: no node has joined yet)."""
    elsewhere: str | None = None
    """Where it is when another node holds it (``on node alpha, stopped 3 min ago``), or
    that it waits for a node, for the chat; None here. Actions on it are asked of that node
    (:mod:`manager.nodes.routing`)."""
    unreachable: bool = False
    """Its node is not heard from (stopped, offline): nothing can be done to it until that
    node returns, and its figures stand still."""
    files: tuple[FileEntry, ...] = field(default=())
    mirror: Mirror | None = None
    """Its upload to the mirror destination, once one was asked for."""

    @property
    def progress(self) -> float:
        """Fraction done, 0.0 to 1.0 (0 while the size is unknown)."""
        if self.total_bytes <= 0:
            return 1.0 if self.state is TorrentState.COMPLETE else 0.0
        return min(1.0, self.completed_bytes / self.total_bytes)

    @property
    def eta_seconds(self) -> int | None:
        """Seconds left at the current speed, or None when it cannot be told."""
        if self.download_speed <= 0 or self.total_bytes <= 0:
            return None
        return max(0, self.total_bytes - self.completed_bytes) // self.download_speed
