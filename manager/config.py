"""What the manager needs to know of ariabot's settings, in one frozen value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

__all__ = ["LinkConfig", "ManagerConfig", "MirrorConfig"]


@dataclass(frozen=True)
class LinkConfig:
    """How signed links to finished downloads are made.

    Attributes:
        public_url: where users reach the HTTP server (behind a reverse proxy), without a
            trailing slash, e.g. ``https://files.example.org``.
        key: the HMAC-SHA256 key links are signed with (kept 0600 in the data dir).
        ttl: how long a link lives.
    """

    public_url: str
    key: bytes = field(repr=False)
    ttl: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class MirrorConfig:
    """How finished downloads are mirrored to the rclone destination.

    Attributes:
        remote: the rclone destination root, e.g. ``gdrive:ariabot``.
        move: delete the local files once the upload is verified (seeding stops first).
        auto: mirror every finished download; otherwise only on request.
        attempts: tries of one upload before it is reported failed.
        retry_delay: seconds before the first retry; it doubles per attempt.
        retry_delay_max: the longest delay between two attempts.
    """

    remote: str
    move: bool = False
    auto: bool = False
    attempts: int = 4
    retry_delay: float = 30.0
    retry_delay_max: float = 600.0


@dataclass(frozen=True)
class FeedConfig:
    """How the chats' feeds are read.

    Attributes:
        interval: seconds between two reads of a feed (jittered by ±10%).
        max_adds: most downloads one read of a feed adds.
        max_bytes: largest feed document read.
        failing_after: seconds of failures before the feed's chat is told.
    """

    interval: float = 900.0
    max_adds: int = 10
    max_bytes: int = 5_000_000
    failing_after: float = 86400.0


@dataclass(frozen=True)
class ManagerConfig:
    """What the manager needs to know of the settings.

    Attributes:
        download_dir: downloads root; a chat's files go to ``torrents/<chat_id>/`` below it.
        progress_interval: seconds between two progress polls.
        torrent_max_bytes: largest .torrent accepted.
        bt_stop_timeout: aria2's dead-torrent timeout, to explain such an error.
        folder_mode: permissions of new chat folders.
        aria2_version: the running aria2c's version, e.g. ``(1, 36, 0)``: what it cannot
            download is refused at add (:mod:`manager.aria2.compat`); None when not known.
        enable_dht: whether aria2 runs DHT; without it, udp:// trackers go unused too.
        mirror: mirroring to an rclone destination, or None when it is off.
        links: signed HTTP links to finished downloads, or None when they are off.
        fetch_allowed_networks: private or local networks a ``.torrent`` URL or a feed may
            be fetched from all the same (a chat reaches only public addresses otherwise).
        feeds: how feeds are read.
    """

    download_dir: Path
    progress_interval: float = 5.0
    torrent_max_bytes: int = 10_000_000
    bt_stop_timeout: int = 900
    folder_mode: int = 0o700
    aria2_version: tuple[int, ...] | None = None
    enable_dht: bool = True
    mirror: MirrorConfig | None = None
    links: LinkConfig | None = None
    fetch_allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    feeds: FeedConfig = field(default_factory=FeedConfig)
