"""The manager stays consistent with aria2 when calls time out, race or fail half-way.

Every stored download ends up in aria2 exactly once; a user's pause or resume is never
undone by a read of aria2 taken before it. Real aria2c, real swarm.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace

from manager import TorrentState
from supervisor.config import Settings
from tests.integration.conftest import FAST_POLICY, start_engine, stop_engine
from tests.integration.test_manager import wait_state
from tests.swarm import Swarm, file_digests

MiB = 1024 * 1024


async def test_an_add_that_timed_out_while_aria2_stayed_up_runs_exactly_once(
    engine_settings: Callable[..., Settings], swarm: Swarm
) -> None:
    """aria2c frozen (not dead) during the add: the call times out, aria2 takes the request
    when it wakes up, and the row must end up tracking that one download, completed."""
    patient = replace(FAST_POLICY, health_timeout=60, health_failures=100)
    engine = await start_engine(engine_settings(), patient, rpc_timeout=1)
    try:
        torrent = swarm.add("frozen-add", [1 * MiB, 1 * MiB], seed=43)
        pid = engine.aria2.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            result = await engine.manager.add(torrent.magnet, chat_id=3, user_id=1)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert result.note is not None and result.torrent.state is TorrentState.METADATA
        await wait_state(engine, result.torrent.id, TorrentState.COMPLETE)
        assert file_digests(engine.folder(3) / "frozen-add") == torrent.digests
        log = engine.layout.aria2_log.read_text()
        assert "already registered" not in log, "the add reached aria2 twice"
        assert engine.aria2.pid == pid, "aria2c was restarted: not the case under test"
    finally:
        await stop_engine(engine)
