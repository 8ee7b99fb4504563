"""From aria2's status answers to what a user sees: state, numbers, and why it is stuck.

Pure functions and small value objects, so every rule is tested without aria2. aria2 sends
numbers as strings and knows nothing of "stuck"; this module turns its words into ours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from manager.models import TorrentState

__all__ = [
    "POLL_KEYS",
    "WAITING_KEYS",
    "Observation",
    "StallWatch",
    "derive_state",
    "error_text",
    "unreachable_reason",
]

POLL_KEYS = (
    "gid", "status", "infoHash", "totalLength", "completedLength", "uploadLength",
    "downloadSpeed", "uploadSpeed", "connections", "numSeeders", "seeder", "numPieces",
    "followedBy", "errorCode", "errorMessage", "verifiedLength", "verifyIntegrityPending",
)
"""The only keys the monitor asks for: no file lists, no announce lists, no bitfields.
(aria2 answers the last two only while it hash-checks a download, or waits to.)"""

WAITING_KEYS = ("gid", "status", "numPieces")
"""What the poll asks of every waiting download: enough for queue positions, for what aria2
lost, and to tell which ones changed (:meth:`manager.tracking.statuses.StatusApplier.to_read`)."""

METADATA_STUCK_AFTER = 180.0
NO_PEERS_STUCK_AFTER = 120.0
NO_DATA_STUCK_AFTER = 300.0

log = logging.getLogger(__name__)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Observation:
    """One download as aria2 reported it, typed."""

    gid: str
    status: str
    info_hash: str
    total: int
    completed: int
    uploaded: int
    download_speed: int
    upload_speed: int
    connections: int
    seeders: int
    seeder: bool
    is_metadata: bool
    followed_by: tuple[str, ...]
    error_code: int
    error_message: str
    verifying: bool = False
    """aria2 is hash-checking its data (or waits to): the bytes it reports mean nothing yet."""

    @classmethod
    def parse(cls, status: dict[str, Any]) -> Observation:
        """Read one ``tellStatus``-shaped dict (asked with :data:`POLL_KEYS`)."""
        info_hash = str(status.get("infoHash", "")).lower()
        return cls(
            gid=str(status.get("gid", "")),
            status=str(status.get("status", "")),
            info_hash=info_hash,
            total=_int(status.get("totalLength")),
            completed=_int(status.get("completedLength")),
            uploaded=_int(status.get("uploadLength")),
            download_speed=_int(status.get("downloadSpeed")),
            upload_speed=_int(status.get("uploadSpeed")),
            connections=_int(status.get("connections")),
            seeders=_int(status.get("numSeeders")),
            seeder=status.get("seeder") == "true",
            # A magnet's metadata download has no pieces of its own yet.
            is_metadata=bool(info_hash) and _int(status.get("numPieces")) == 0,
            followed_by=tuple(status.get("followedBy") or ()),
            error_code=_int(status.get("errorCode")),
            error_message=str(status.get("errorMessage") or ""),
            verifying="verifiedLength" in status or "verifyIntegrityPending" in status,
        )

    @property
    def data_complete(self) -> bool:
        """Every selected byte is on disk (it may go on seeding)."""
        return self.total > 0 and self.completed >= self.total and not self.is_metadata


def derive_state(observation: Observation) -> TorrentState:
    """The user-facing state of a download aria2 reports like this."""
    status = observation.status
    if status == "active":
        if observation.is_metadata:
            return TorrentState.METADATA
        if observation.seeder or observation.data_complete:
            return TorrentState.SEEDING
        return TorrentState.DOWNLOADING
    if status == "waiting":
        return TorrentState.QUEUED
    if status == "paused":
        return TorrentState.PAUSED
    if status == "complete":
        return TorrentState.COMPLETE
    if status == "removed":
        return TorrentState.CANCELLED
    return TorrentState.ERROR


_ERROR_TEXTS = MappingProxyType({
    1: "the downloader failed for a reason it did not name",
    2: "timed out",
    3: "the torrent's data could not be found",
    5: "too slow: the download was given up",
    6: "network problem",
    8: "the peers cannot resume this download",
    9: "disk full",
    10: "the files on disk belong to a torrent with other pieces",
    11: "another download in this chat writes a file of the same name",
    12: "this torrent is already being downloaded",
    13: "a file of that name already exists",
    14: "a file could not be renamed",
    15: "the downloader could not open the files",
    16: "could not create a file",
    17: "disk I/O error",
    18: "could not create the download folder",
    25: "the torrent's metadata is damaged",
    26: "the torrent file is damaged",
    27: "the magnet link is damaged",
    32: "the downloaded data failed its checksum",
})
"""aria2's error codes (its EXIT STATUS list) in a user's words: aria2's own messages name
absolute paths on the server, so they are logged, never shown."""


def error_text(observation: Observation, bt_stop_timeout: int) -> str:
    """Why a download ended in error, in words a user understands.

    aria2's own message (with its paths) is not part of the answer: it is logged at WARNING
    with the GID, for the owner. Called once per failure (a failed download is then no
    longer tracked).
    """
    code, message = observation.error_code, observation.error_message
    if message:
        log.warning("aria2 download %s failed with error %d: %s", observation.gid, code,
                    message)
    if "no space left" in message.lower() or code == 9:
        return "disk full"
    if "binding port" in message.lower():  # aria2c binds it when its first torrent starts
        return ("the downloader could not open its BitTorrent port (ARIABOT_LISTEN_PORT): "
                "another program uses it")
    if code == 7 and not message:
        # bt-stop-timeout ends a dead torrent this way (checked with aria2 1.36).
        minutes = max(1, bt_stop_timeout // 60)
        return f"stopped: no data for {minutes} min (dead torrent)"
    return _ERROR_TEXTS.get(code, f"the download failed (downloader error {code})")


def unreachable_reason(trackers: Iterable[str], dht_enabled: bool) -> str | None:
    """Why aria2 can never find a peer for a download with these trackers, or None.

    aria2 talks to udp:// trackers through its DHT socket: with DHT off it sends them nothing
    at all and logs "udp is not supported yet" (checked with aria2 1.36: a udp:// tracker on
    127.0.0.1 got no packet with DHT off, connect requests with DHT on). Local peer discovery
    is off in ariabot's aria2.conf and peer exchange needs a first peer, so a download with
    no http(s):// tracker and DHT off waits forever at "metadata 0.0%".

    Parameters:
        trackers: the download's announce URLs (aria2's ``bittorrent.announceList``, flat).
        dht_enabled: ariabot's ``enable_dht`` setting.
    """
    if dht_enabled:
        return None
    urls = [url.strip().lower() for url in trackers]
    if any(not url.startswith("udp://") for url in urls):
        return None
    advice = "enable DHT, or use a link with an http(s):// tracker"
    if urls:
        return f"no usable tracker: aria2 ignores udp:// trackers while DHT is off; {advice}"
    return f"no tracker, and DHT is off: no way to find peers; {advice}"


class StallWatch:
    """Remembers since when a download has had no peers, no data, or no metadata.

    Parameters:
        started: when tracking began (monotonic seconds).

    Attributes:
        unreachable: set when it is known up front that no peer can be found (see
            :func:`unreachable_reason`); said at once while nobody is connected.
    """

    __slots__ = ("_metadata_since", "_no_data_since", "_no_peers_since", "unreachable")

    def __init__(self, started: float) -> None:
        self._metadata_since: float | None = started
        self._no_peers_since: float | None = None
        self._no_data_since: float | None = None
        self.unreachable: str | None = None

    def update(self, observation: Observation, state: TorrentState, now: float) -> str | None:
        """Feed one observation; return the stuck reason, or None when it moves."""
        if state is not TorrentState.METADATA:
            self._metadata_since = None
        elif self._metadata_since is None:
            self._metadata_since = now
        if state not in (TorrentState.DOWNLOADING, TorrentState.METADATA):
            self._no_peers_since = self._no_data_since = None
            return None
        if observation.connections > 0:
            self._no_peers_since = None
        elif self._no_peers_since is None:
            self._no_peers_since = now
        if observation.download_speed > 0:
            self._no_data_since = None
        elif self._no_data_since is None:
            self._no_data_since = now

        if self.unreachable and observation.connections == 0:
            return self.unreachable
        if state is TorrentState.METADATA and self._metadata_since is not None:
            waited = now - self._metadata_since
            if waited >= METADATA_STUCK_AFTER:
                return (f"waiting for metadata for {int(waited // 60)} min "
                        f"({observation.connections} peers)")
            return None
        if self._no_peers_since is not None and now - self._no_peers_since >= NO_PEERS_STUCK_AFTER:
            return f"no peers found for {int((now - self._no_peers_since) // 60)} min"
        if self._no_data_since is not None and now - self._no_data_since >= NO_DATA_STUCK_AFTER:
            return (f"no data for {int((now - self._no_data_since) // 60)} min "
                    f"({observation.connections} peers)")
        return None
