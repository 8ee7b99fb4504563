"""The manager stays consistent with aria2 when calls time out, race or fail half-way.

Every stored download ends up in aria2 exactly once; a user's pause or resume is never
undone by a read of aria2 taken before it. Real aria2c, real swarm.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import replace

import pytest

from manager import Aria2RpcError, ManagerError, TorrentResumed, TorrentState
from supervisor.config import Settings
from tests.integration.conftest import FAST_POLICY, start_engine, stop_engine
from tests.integration.test_manager import wait_state
from tests.runner import until
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


async def test_a_refresh_read_before_a_pause_does_not_undo_it(
    engine_settings: Callable[..., Settings], swarm: Swarm
) -> None:
    """resume → aria2's onDownloadStart → a refresh reads "active"; the user pauses while
    that answer is on its way back. Applying it after the pause would say "downloading"."""
    engine = await start_engine(engine_settings(ARIABOT_PROGRESS_INTERVAL="10"))
    try:
        torrent = swarm.add("race.bin", 8 * MiB, seed=44)
        with swarm.throttled(256 * 1024):
            added = await engine.manager.add(torrent.torrent_bytes, chat_id=4, user_id=1)
            await wait_state(engine, added.torrent.id, TorrentState.DOWNLOADING)
            await engine.manager.pause(added.torrent.id)

            real = engine.rpc.multicall
            answered, returned = asyncio.Event(), asyncio.Event()

            async def slow_status_reads(calls):
                answer = await real(calls)
                reads_active = any(isinstance(a, dict) and a.get("status") == "active"
                                   for a in answer)
                if reads_active and all(m == "aria2.tellStatus" for m, _ in calls) and (
                        not answered.is_set()):
                    answered.set()
                    await asyncio.sleep(1.0)  # the answer is slow to come back
                    returned.set()
                return answer

            engine.rpc.multicall = slow_status_reads
            resuming = asyncio.create_task(engine.manager.resume(added.torrent.id))
            await asyncio.wait_for(answered.wait(), 10)
            # The resume is stored: now the user may pause.
            await until(lambda: any(isinstance(e, TorrentResumed) for e in engine.events),
                        10, "the resume")
            mark = len(engine.events)
            await engine.manager.pause(added.torrent.id)
            await asyncio.wait_for(returned.wait(), 10)
            await resuming
            async with engine.manager.live.lock:  # the slow refresh has been applied
                pass
            engine.rpc.multicall = real
            after = [e.torrent.state for e in engine.events[mark:]
                     if getattr(e, "torrent", None) and e.torrent.id == added.torrent.id]
            assert after[-1] is TorrentState.PAUSED, after
            assert (await engine.manager.get(added.torrent.id)).state is TorrentState.PAUSED
            status = await engine.rpc.call("aria2.tellStatus", engine.manager.live.get(
                added.torrent.id).record.gid, ["status"])
            assert status["status"] == "paused"
    finally:
        await stop_engine(engine)


async def test_choosing_files_that_fails_half_way_leaves_the_download_running(
    engine_settings: Callable[..., Settings], swarm: Swarm
) -> None:
    engine = await start_engine(engine_settings())
    try:
        torrent = swarm.add("choose", [4 * MiB, 4 * MiB], seed=45)
        with swarm.throttled(256 * 1024):
            added = await engine.manager.add(torrent.torrent_bytes, chat_id=4, user_id=1)
            await wait_state(engine, added.torrent.id, TorrentState.DOWNLOADING)
            real = engine.rpc.call

            async def refuse_change_option(method, *params):
                if method == "aria2.changeOption":
                    raise Aria2RpcError(1, "simulated refusal")
                return await real(method, *params)

            engine.rpc.call = refuse_change_option
            with pytest.raises(ManagerError):
                await engine.manager.set_files(added.torrent.id, [1])
            engine.rpc.call = real
            gid = (await engine.store.downloads.get(added.torrent.id)).gid
            status = await engine.rpc.call("aria2.tellStatus", gid, ["status"])
            assert status["status"] == "active", "left paused by a failed file choice"
            torrent_now = await engine.manager.get(added.torrent.id)
            assert torrent_now.state is TorrentState.DOWNLOADING
            assert torrent_now.total_bytes == torrent.total_bytes
    finally:
        await stop_engine(engine)
