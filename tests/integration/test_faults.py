"""Faults on the real thing: aria2c killed, hung, its WebSocket dropped; ariabot killed; disk full.

Each test ends by checking the downloaded bytes against the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import pytest
import requests

from manager import NotEnoughSpace, TorrentCompleted, TorrentEvent, TorrentState
from supervisor.config import Settings
from supervisor.states import ProcessState, StateChange
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.integration.test_cli import cli, downloads
from tests.integration.test_manager import aria2_entries, wait_state
from tests.runner import ariabot_run, rpc, until, wait_until
from tests.swarm import Swarm, file_digests
from tests.wsgate import WebSocketGate

MiB = 1024 * 1024

pytestmark = pytest.mark.slow


def progress_of(engine: Engine, download_id: int) -> int:
    return max((e.torrent.completed_bytes for e in engine.events
                if isinstance(e, TorrentEvent) and e.torrent.id == download_id), default=0)


async def test_aria2c_killed_three_times_during_one_download(
    engine: Engine, swarm: Swarm
) -> None:
    torrent = swarm.add("thrice.bin", 24 * MiB, seed=21)
    with swarm.throttled(2 * MiB):
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=1, user_id=1)
        download_id = added.torrent.id
        for kill in range(3):
            floor = progress_of(engine, download_id) + MiB
            await until(lambda floor=floor: progress_of(engine, download_id) >= floor, 60,
                        f"progress before kill {kill + 1}")
            session = engine.aria2.session_id
            os.kill(engine.aria2.pid, signal.SIGKILL)
            await until(lambda s=session: engine.aria2.session_id not in (None, s), 30,
                        "aria2c to come back")
    await wait_state(engine, download_id, TorrentState.COMPLETE, timeout=90)
    assert file_digests(engine.folder(1) / "thrice.bin") == torrent.digests
    assert len(await engine.store.downloads.list()) == 1
    completions = [e for e in engine.events if isinstance(e, TorrentCompleted)]
    assert len(completions) == 1
    # One task, never a duplicate. The progress poll after the one that stored it complete
    # purges aria2's copy, and on a slow machine that poll may come before this read.
    entries = await aria2_entries(engine, torrent.info_hash)
    assert [entry["status"] for entry in entries] in (["complete"], []), entries
    await engine.manager.poll_once()  # stored as complete: aria2's copy is purged
    assert await aria2_entries(engine, torrent.info_hash) == []


async def aria2_status(engine: Engine, info_hash: str) -> dict[str, str] | None:
    """aria2c's own view of a torrent, asked on its real port (not through any gate);
    None while it does not answer (frozen, restarting) or does not know the torrent."""
    endpoint = engine.aria2.endpoint
    keys = ["gid", "status", "completedLength", "infoHash"]

    def ask() -> dict[str, str] | None:
        for method, params in (("aria2.tellActive", [keys]),
                               ("aria2.tellWaiting", [0, 100, keys]),
                               ("aria2.tellStopped", [0, 100, keys])):
            answer = rpc(endpoint.port, method, *params, secret=endpoint.secret, timeout=1)
            for status in answer.get("result") or []:
                if status.get("infoHash") == info_hash:
                    return status
        return None

    try:
        return await asyncio.to_thread(ask)
    except requests.RequestException:
        return None


async def until_async(condition: Callable[[], Awaitable[object]], timeout: float,
                      what: str) -> None:
    """:func:`tests.runner.until` for a condition that must be awaited."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_completion_while_the_websocket_is_down_is_found_by_reconcile(
    engine_settings: Callable[..., Settings], swarm: Swarm
) -> None:
    """aria2c hangs mid-download and is restarted; the new one finishes while ariabot's
    WebSocket is down. aria2's completion notification is lost for good, and the progress
    poll is off: only a reconcile can find the completion, and it must say it once."""
    torrent = swarm.add("unseen.bin", 4 * MiB, seed=22)
    gate = WebSocketGate()
    await gate.start()
    engine = await start_engine(engine_settings(), via=gate.route, progress_interval=3600)
    try:
        with swarm.throttled(256 * 1024):
            added = await engine.manager.add(torrent.torrent_bytes, chat_id=1, user_id=1)
            download_id = added.torrent.id

            async def partly_done() -> bool:
                status = await aria2_status(engine, torrent.info_hash)
                return status is not None and MiB <= int(status["completedLength"]) < (
                    torrent.total_bytes)

            await until_async(partly_done, 60, "a partial download")
            gate.close()  # from here on no notification reaches the manager
            await until(lambda: gate.websockets == 0, 10, "the WebSocket to be cut")
            session = engine.aria2.session_id
            os.kill(engine.aria2.pid, signal.SIGSTOP)  # hung: the health check restarts it
        # Unthrottled now: the restarted aria2c finishes at once, unheard.
        await until(lambda: engine.aria2.session_id not in (None, session), 30, "restart")

        async def complete_in_aria2() -> bool:
            status = await aria2_status(engine, torrent.info_hash)
            return status is not None and status["status"] == "complete"

        await until_async(complete_in_aria2, 60, "aria2c to complete the download")
        assert gate.refused >= 1  # the listener tried, and could not hear it
        gate.open()
        await wait_state(engine, download_id, TorrentState.COMPLETE, timeout=30)
        completions = [e.torrent.id for e in engine.events if isinstance(e, TorrentCompleted)]
        assert completions == [download_id]
        assert file_digests(engine.folder(1) / "unseen.bin") == torrent.digests
    finally:
        await stop_engine(engine)
        await gate.stop()


def _failed_probes(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if "health probe" in r.getMessage()
               and "failed" in r.getMessage())


async def test_sigcont_before_the_health_deadline_means_no_restart(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Frozen until one failed probe short of the deadline (``health_failures`` failed
    probes in a row), then continued: no restart. Twice, so the second freeze also shows
    that a passing probe starts the count over."""
    caplog.set_level(logging.WARNING, logger="supervisor.process")
    aria2 = engine.aria2
    short_of_deadline = aria2.policy.health_failures - 1
    assert short_of_deadline >= 1
    pid, session = aria2.pid, aria2.session_id
    assert pid is not None
    changes: list[StateChange] = []
    aria2.subscribe(changes.append)  # a respawn would pass through STARTING
    for freeze in range(2):
        failed = _failed_probes(caplog)
        os.kill(pid, signal.SIGSTOP)
        try:
            await until(lambda f=failed: _failed_probes(caplog) >= f + short_of_deadline
                        or aria2.pid != pid, 30,
                        f"{short_of_deadline} failed probe(s) in freeze {freeze + 1}")
        finally:
            with contextlib.suppress(ProcessLookupError):  # restarted: that is the failure
                os.kill(pid, signal.SIGCONT)
        assert aria2.pid == pid, f"aria2c was restarted during freeze {freeze + 1}"
        probes = aria2.probes
        await until(lambda p=probes: aria2.probes >= p + 2, 15,
                    f"two probes after freeze {freeze + 1}")
        assert (aria2.pid, aria2.session_id, changes) == (pid, session, [])
        assert aria2.state is ProcessState.RUNNING
    assert _failed_probes(caplog) == 2 * short_of_deadline
    assert "was killed" not in caplog.text


def test_ariabot_killed_mid_download_resumes_and_completes(
    tmp_path: Path, swarm: Swarm
) -> None:
    torrent = swarm.add("orphan.bin", 16 * MiB, seed=23)
    data = tmp_path / "data"
    env = {"ARIABOT_SEED_TIME": "0"}
    with swarm.throttled(2 * MiB):
        with ariabot_run(data, env) as first:
            info = first.wait_ready()
            assert cli(first, "add", torrent.magnet).returncode == 0
            wait_until(lambda: downloads(first)[0]["completed_bytes"] > 4 * MiB, 60, "progress")
            before = downloads(first)[0]["completed_bytes"]
            first.signal(signal.SIGKILL)
            first.wait_exit()
        with ariabot_run(data, env) as second:
            second.wait_ready()
            assert not psutil.pid_exists(info["aria2c_pid"]) or (
                psutil.Process(info["aria2c_pid"]).status() == psutil.STATUS_ZOMBIE)
            [row] = downloads(second)
            # aria2's control file is saved every 2 s: at most that much is fetched again.
            assert row["completed_bytes"] >= before - 2 * 2 * MiB - torrent.piece_size
    with ariabot_run(data, env) as third:
        third.wait_ready()
        wait_until(lambda: downloads(third)[0]["state"] in ("complete", "seeding"), 60,
                   "completion")
        assert len(downloads(third)) == 1
    assert file_digests(data / "downloads" / "torrents" / "0" / "orphan.bin") == (
        torrent.digests)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 24 MiB tmpfs as the download dir (needs root, which CI and this machine have)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root; the disk-full test cannot run here")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)],
                   check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_disk_full_is_told_and_other_chats_continue(
    engine_settings: Callable[..., Settings], swarm: Swarm, small_disk: Path
) -> None:
    running = await start_engine(engine_settings(ARIABOT_DOWNLOAD_DIR=str(small_disk)))
    try:
        small = swarm.add("fits.bin", 4 * MiB, seed=24)
        big = swarm.add("toobig.bin", 30 * MiB, seed=25)
        # The big one is a magnet: its size is only known after metadata, so the check
        # happens then, before the first byte is written.
        too_big = await running.manager.add(big.magnet, chat_id=1, user_id=1)
        fits = await running.manager.add(small.torrent_bytes, chat_id=2, user_id=2)
        await wait_state(running, too_big.torrent.id, TorrentState.PAUSED, TorrentState.ERROR)
        refused = await running.manager.get(too_big.torrent.id)
        assert "disk space" in (refused.error or "")
        await wait_state(running, fits.torrent.id, TorrentState.COMPLETE)
        assert file_digests(small_disk / "torrents" / "2" / "fits.bin") == small.digests
        assert running.aria2.pid is not None
    finally:
        await stop_engine(running)


async def test_space_reserved_by_running_downloads_is_not_promised_twice(
    engine_settings: Callable[..., Settings], swarm: Swarm, small_disk: Path
) -> None:
    """Two 15 MiB torrents on a 24 MiB disk: each fits alone, both do not."""
    running = await start_engine(engine_settings(ARIABOT_DOWNLOAD_DIR=str(small_disk)))
    try:
        first = swarm.add("first-half.bin", 15 * MiB, seed=26)
        second = swarm.add("second-half.bin", 15 * MiB, seed=27)
        third = swarm.add("third-half.bin", 15 * MiB, seed=28)
        with swarm.throttled(512 * 1024):
            added = await running.manager.add(first.torrent_bytes, chat_id=1, user_id=1)
            await wait_state(running, added.torrent.id, TorrentState.DOWNLOADING)
            with pytest.raises(NotEnoughSpace, match=r"reserved for 1 download"):
                await running.manager.add(second.torrent_bytes, chat_id=2, user_id=2)
            assert len(await running.store.downloads.list()) == 1
            # A magnet's size is known at its metadata: it is held there, paused.
            magnet = await running.manager.add(third.magnet, chat_id=2, user_id=2)
            await wait_state(running, magnet.torrent.id, TorrentState.PAUSED,
                             TorrentState.ERROR)
            held = await running.manager.get(magnet.torrent.id)
            assert held.state is TorrentState.PAUSED
            assert "reserved for 1 download" in (held.error or "")
            assert not (small_disk / "torrents" / "2" / "third-half.bin").exists()
        await wait_state(running, added.torrent.id, TorrentState.COMPLETE)
    finally:
        await stop_engine(running)
