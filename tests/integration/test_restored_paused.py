"""A download aria2 brings back paused after a ``kill -9`` of aria2c, though nobody paused
it, is started again: its row says it runs, and the row is the user's word.

aria2 holds a magnet's real download paused (``pause-metadata``) until ariabot has checked
and stored its names, then ariabot starts it; aria2's session, saved every few seconds,
lists it paused meanwhile (longer when the store's write lock is held past the busy
timeout: the check's write fails and is tried again). Killed before its next save, aria2c
restores the download paused from that session, while the row already says queued. Found
by the promises soak (seed 1281420597: ``store_write_fails`` then ``kill -9`` of aria2c;
``settle`` waited 95 s for a download no promise was due for).

Real aria2c (supervised, killed with SIGKILL), a real swarm, the real SQLite store.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from manager import TorrentState
from manager.events import TorrentPaused
from supervisor.config import Settings
from tests.integration.conftest import start_engine, stop_engine
from tests.integration.test_manager import aria2_entries, wait_state
from tests.integration.test_metadata_write import HeldMetadataStep
from tests.swarm import Swarm, file_digests

pytestmark = pytest.mark.slow

KIB = 1024
CHAT = 7


def _saved_paused(session: Path, info_hash: str) -> bool:
    """aria2's session lists the torrent paused (a magnet's real download is saved under its
    magnet link, with the GID of its metadata download)."""
    entry: list[str] = []
    for line in [*session.read_text().splitlines(), "end"]:
        if line[:1].isspace():
            entry.append(line.strip())
            continue
        if entry and f"btih:{info_hash}" in entry[0] and "pause=true" in entry:
            return True
        entry = [line]
    return False


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_download_restored_paused_that_nobody_paused_is_started_again(
    engine_settings: Callable[..., Settings], swarm: Swarm,
) -> None:
    engine = await start_engine(engine_settings(ARIABOT_SEED_TIME="0"))
    torrent = swarm.add("restored-paused", [96 * KIB, 64 * KIB], seed=77, piece_size=16 * KIB)
    try:
        with swarm.throttled(64 * KIB):
            held = HeldMetadataStep(engine)
            added = await engine.manager.add(torrent.magnet, chat_id=CHAT, user_id=1)
            download_id = added.torrent.id
            # aria2 holds the real download paused; the metadata check has read it and waits.
            await asyncio.wait_for(held.entered.wait(), 60)
            await _until(lambda: _saved_paused(engine.layout.session, torrent.info_hash), 30,
                         "aria2's session to list the real download paused")
            old = engine.aria2.pid
            assert old is not None
            # aria2c dies before it starts the download or saves its session again; the
            # check's write then stores the row as queued.
            os.kill(old, signal.SIGKILL)
            held.go_on.set()
            await _until(lambda: engine.aria2.pid not in (None, old), 30, "aria2c again")
            try:
                await wait_state(engine, download_id, TorrentState.COMPLETE,
                                 TorrentState.ERROR, timeout=60)
            except AssertionError as error:
                entries = await aria2_entries(engine, torrent.info_hash)
                raise AssertionError(f"{error}; aria2 holds {entries}") from None
        done = await engine.manager.get(download_id)
        assert done.state is TorrentState.COMPLETE, done.error
        assert file_digests(engine.folder(CHAT) / torrent.name) == torrent.digests
        paused = [e for e in engine.events if isinstance(e, TorrentPaused)]
        assert not paused, "shown paused though nobody paused it"
    finally:
        await stop_engine(engine)
