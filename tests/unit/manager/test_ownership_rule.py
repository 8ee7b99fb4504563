"""The one ownership rule (:func:`manager.downloads.contents.owns_its_name`): which listed download
owns ``<chat folder>/<its name>``, for adding (a name taken) and for every delete."""

from __future__ import annotations

from datetime import datetime

import pytest

from manager.downloads.contents import owns_its_name
from manager.store import DownloadRecord


def record(state: str, kind: str, total: int) -> DownloadRecord:
    now = datetime(2026, 1, 1)
    return DownloadRecord(
        id=1, info_hash="ab" * 20, chat_id=1, user_id=1, message_id=None, name="x",
        source_kind=kind, directory="/tmp", gid=None, state=state, total_bytes=total,
        completed_bytes=0, upload_bytes=0, download_speed=0, upload_speed=0, seeders=0,
        peers=0, error=None, selected_files=None, created_at=now, updated_at=now,
        completed_at=None)


@pytest.mark.parametrize(("state", "kind", "total", "owns"), [
    ("queued", "torrent", 10, True),  # known from its .torrent before a byte is written
    ("paused", "torrent", 10, True),
    ("error", "torrent", 10, True),  # its partial files are still its own
    ("cancelled", "torrent", 10, False),
    ("metadata", "magnet", 0, False),  # the row carries the dn=, not a name
    ("paused", "magnet", 0, False),  # paused before its metadata came
    ("error", "magnet", 0, False),  # failed before it (a dead swarm, a refused name)
    ("queued", "magnet", 10, True),  # its metadata just arrived: the name is known
    ("paused", "magnet", 10, True),  # paused at its metadata for want of space
    ("seeding", "magnet", 0, True),  # it wrote its files, whatever its row says
    ("cancelled", "magnet", 10, False),
])
def test_who_owns_its_name(state: str, kind: str, total: int, owns: bool) -> None:
    assert owns_its_name(record(state, kind, total)) is owns
