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


def _listed(session: Path, info_hash: str) -> bool:
    """aria2's session lists the torrent, paused or not."""
    return f"btih:{info_hash}" in session.read_text() if session.exists() else False


async def test_a_magnet_refused_for_a_users_file_is_gone_from_aria2s_session_at_once(
    engine_settings: Callable[..., Settings], swarm: Swarm,
) -> None:
    """Found by the nodes' promises machine (I1: a file the user put in the chat folder
    changed). A magnet named as that file is refused at its metadata and removed from
    aria2; but aria2's session, saved while it waited paused, still listed it, and an
    aria2c killed before the next save brought it back with its saved metadata, unpaused:
    its hash check wrote over the user's file. The session is saved with the refusal now."""
    engine = await start_engine(engine_settings(ARIABOT_SEED_TIME="0"))
    torrent = swarm.add("mine.txt", 40 * KIB, seed=78, piece_size=16 * KIB)
    users = engine.folder(CHAT) / "mine.txt"
    users.parent.mkdir(parents=True, exist_ok=True)
    users.write_bytes(os.urandom(5000))
    kept = users.read_bytes()
    try:
        held = HeldMetadataStep(engine)
        added = await engine.manager.add(torrent.magnet, chat_id=CHAT, user_id=1)
        await asyncio.wait_for(held.entered.wait(), 60)
        await _until(lambda: _saved_paused(engine.layout.session, torrent.info_hash), 30,
                     "aria2's session to list the real download paused")
        held.go_on.set()
        await wait_state(engine, added.torrent.id, TorrentState.ERROR, timeout=30)
        refused = await engine.manager.get(added.torrent.id)
        assert "mine.txt" in (refused.error or ""), refused.error
        assert not _listed(engine.layout.session, torrent.info_hash)
        old = engine.aria2.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)  # before the session's next save
        await _until(lambda: engine.aria2.pid not in (None, old), 30, "aria2c again")
        assert await aria2_entries(engine, torrent.info_hash) == []
        assert users.read_bytes() == kept
    finally:
        await stop_engine(engine)
