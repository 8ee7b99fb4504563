"""The JSON the Mini App's page reads: a download and its files, in plain values.

Never a path on the server, never a secret: names, numbers and the words the bot would use.
"""

from __future__ import annotations

from typing import Any

from manager import FileEntry, Torrent, TorrentState

__all__ = ["download_json", "files_json"]

_PAUSABLE = (TorrentState.QUEUED, TorrentState.METADATA, TorrentState.DOWNLOADING,
             TorrentState.SEEDING)


def _eta(torrent: Torrent) -> int | None:
    left = torrent.total_bytes - torrent.completed_bytes
    if torrent.state is not TorrentState.DOWNLOADING or torrent.download_speed <= 0 or left <= 0:
        return None
    return -(-left // torrent.download_speed)


def download_json(torrent: Torrent, *, may_act: bool) -> dict[str, Any]:
    """One download as the page shows it (``may_act``: this user may change it)."""
    total = torrent.total_bytes
    return {
        "id": torrent.id,
        "name": torrent.name,
        "state": torrent.state.value,
        "state_label": torrent.state.label,
        "progress": round(torrent.completed_bytes / total, 4) if total else 0.0,
        "total_bytes": total,
        "completed_bytes": torrent.completed_bytes,
        "download_speed": torrent.download_speed,
        "upload_speed": torrent.upload_speed,
        "eta_seconds": _eta(torrent),
        "peers": torrent.peers,
        "seeders": torrent.seeders,
        "queue_position": torrent.queue_position,
        "stuck_reason": torrent.stuck_reason,
        "error": torrent.error,
        "may_act": may_act and not torrent.unreachable,  # another live node's: asked of it
        "elsewhere": torrent.elsewhere,
        "has_files": torrent.state is not TorrentState.METADATA and total > 0,
        "finished": torrent.state.is_final or torrent.state is TorrentState.SEEDING,
        "paused": torrent.state is TorrentState.PAUSED,
        "pausable": torrent.state in _PAUSABLE,
    }


def files_json(files: tuple[FileEntry, ...], *, editable: bool) -> dict[str, Any]:
    """A download's files (1-based numbers, as ``/files`` shows them) and whether the user
    may change which are downloaded."""
    return {
        "files": [{"index": number, "path": entry.path, "length": entry.length,
                   "completed": entry.completed, "selected": entry.selected}
                  for number, entry in enumerate(files, start=1)],
        "editable": editable,
    }
