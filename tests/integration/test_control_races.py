"""A user's action or a reconnection racing the manager's own work, on the real path.

Real aria2c, real swarm, real rclone. Each race is made deterministic: the manager's work is
held at an RPC call (or the lock is held as a poll would hold it) until the other call has
read what it reads and waits for the lock. What a call acts on must be what it reads under
the lock: a row read before another change was stored and acted on after it would undo
that change (a cancelled download back as complete) or act on what is no longer there
(a magnet's metadata download instead of its real one).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from manager import MirrorChanged, MirrorDone, MirrorFailed, TorrentState
from supervisor.config import Settings
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.integration.test_manager import aria2_entries, wait_state
from tests.integration.test_mirror import mirror_env
from tests.integration.test_tracking_faults import WatchedLock
from tests.rclonedest import require_rclone
from tests.runner import until
from tests.swarm import Swarm, file_digests

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
CHAT = 6
HELD_IN_ARIA2 = ("active", "waiting", "paused")


async def _aria2_holds(engine: Engine, info_hash: str) -> list[str]:
    """Statuses of what aria2 holds of ``info_hash`` and would still download or seed."""
    return [entry["status"] for entry in await aria2_entries(engine, info_hash)
            if entry["status"] in HELD_IN_ARIA2]


async def _metadata_followed(engine: Engine, gid: str, timeout: float = 60) -> None:
    """Wait until aria2 says the magnet's metadata download ``gid`` led to its real one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await engine.rpc.call("aria2.tellStatus", gid, ["status", "followedBy"])
        if status.get("followedBy"):
            return
        assert asyncio.get_running_loop().time() < deadline, f"metadata not in: {status}"
        await asyncio.sleep(0.05)


async def test_a_cancel_while_a_magnets_metadata_arrives_removes_its_real_download(
    engine_settings: Callable[..., Settings], swarm: Swarm
) -> None:
    """The user cancels (deleting files) a magnet just as its metadata arrives: the cancel
    reads the row while a poll holds the lock, and the poll learns the real download's GID.
    The cancel must remove that real download; acting on the row it read first, it removed
    the finished metadata download and left the real one in aria2, untracked, fetching
    into the chat folder of a download the user was told was cancelled."""
    engine = await start_engine(engine_settings(), progress_interval=3600)
    try:
        watched = WatchedLock(engine.manager.live.lock)
        engine.manager.live.lock = watched  # type: ignore[assignment]
        torrent = swarm.add("magnet-race.bin", 4 * MiB, seed=241)
        with swarm.throttled(64 * 1024):  # the real download stays running
            added = await engine.manager.add(torrent.magnet, chat_id=CHAT, user_id=1)
            download_id = added.torrent.id
            row = await engine.store.downloads.get(download_id)
            assert row is not None and row.gid is not None
            async with watched:  # a poll in progress: nothing applies what aria2 says
                await _metadata_followed(engine, row.gid)
                polling = asyncio.create_task(engine.manager.poll_once())
                await until(lambda: polling in watched.waiting, 10, "the poll to wait")
                cancelling = asyncio.create_task(
                    engine.manager.cancel(download_id, CHAT, 1, delete_files=True))
                await until(lambda: cancelling.done() or cancelling in watched.waiting, 10,
                            "the cancel to wait for the lock")
            await asyncio.wait_for(polling, 30)
            cancelled = await asyncio.wait_for(cancelling, 30)
            assert cancelled.torrent.state is TorrentState.CANCELLED
            assert await _aria2_holds(engine, torrent.info_hash) == [], \
                "the real download is still in aria2"
            await engine.manager.poll_once(sweep=True)
            assert (await engine.manager.get(download_id)).state is TorrentState.CANCELLED
            assert not (engine.folder(CHAT) / torrent.name).exists()
    finally:
        await stop_engine(engine)


async def test_a_cancel_during_a_mirror_move_keeps_the_download_cancelled_and_its_files(
    engine_settings: Callable[..., Settings], swarm: Swarm, tmp_path: Path
) -> None:
    """A mirror in move mode stops the download's seeding while the user cancels it
    (keeping its files): the mirror read the row as seeding before the cancel stored it.
    Stopping the seeding must not store "complete" over "cancelled" (the download came
    back to the list, and the move then deleted the files the cancel kept)."""
    require_rclone()
    target = tmp_path / "nas-folder"
    env = mirror_env(tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}",
                     ARIABOT_MIRROR_MODE="move", ARIABOT_SEED_TIME="60",
                     ARIABOT_SEED_RATIO="0")
    engine = await start_engine(engine_settings(**env), progress_interval=3600)
    try:
        watched = WatchedLock(engine.manager.live.lock)
        engine.manager.live.lock = watched  # type: ignore[assignment]
        torrent = swarm.add("move-race.bin", MiB, seed=242)
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=CHAT, user_id=1)
        download_id = added.torrent.id
        await wait_state(engine, download_id, TorrentState.SEEDING)
        local = engine.folder(CHAT) / torrent.name
        kept = file_digests(local)

        held, release = asyncio.Event(), asyncio.Event()
        real_call = engine.rpc.call

        async def hold_the_cancel(method: str, *params: Any) -> Any:
            if method == "aria2.forceRemove" and not held.is_set():
                held.set()
                await release.wait()
            return await real_call(method, *params)

        engine.rpc.call = hold_the_cancel  # type: ignore[method-assign]
        cancelling = asyncio.create_task(
            engine.manager.cancel(download_id, CHAT, 1, delete_files=False))
        await asyncio.wait_for(held.wait(), 10)
        await engine.manager.mirror(download_id, CHAT, 1)
        await until(lambda: bool(watched.waiting), 30,
                    "the mirror to stop the seeding (it waits for the lock)")
        release.set()
        assert (await asyncio.wait_for(cancelling, 30)).torrent.state is TorrentState.CANCELLED
        await until(lambda: any(isinstance(e, MirrorChanged | MirrorDone | MirrorFailed)
                                and e.torrent.id == download_id and e.torrent.mirror is not None
                                and e.torrent.mirror.state.is_final for e in engine.events),
                    60, "the mirror to end (stopped by the cancel)")
        assert (await engine.manager.get(download_id)).state is TorrentState.CANCELLED
        assert file_digests(local) == kept, "the cancel kept them; the move deleted them"
    finally:
        await stop_engine(engine)


def _lists_everything(calls: Sequence[tuple[str, Sequence[Any]]]) -> bool:
    return [method for method, _ in calls[:3]] == [
        "aria2.tellActive", "aria2.tellWaiting", "aria2.tellStopped"]


async def test_a_restart_of_aria2c_during_a_reconcile_is_reconciled_too(
    engine_settings: Callable[..., Settings], swarm: Swarm
) -> None:
    """aria2c restarts while a reconcile has read aria2's lists and not finished: the new
    aria2c does not hold a download, and the reconcile's reads are of the old one. The
    reconnection's request for a reconcile must not be dropped because one is running: one
    more runs after it and gives the download back to aria2 (no poll runs here to find it
    missing later)."""
    engine = await start_engine(engine_settings(), progress_interval=3600)
    try:
        torrent = swarm.add("reconnect-race.bin", 4 * MiB, seed=243)
        with swarm.throttled(0):  # it stays unfinished
            added = await engine.manager.add(torrent.torrent_bytes, chat_id=CHAT, user_id=1)
            download_id = added.torrent.id
            await engine.rpc.call("aria2.saveSession")  # the next aria2c restores it

            held, release = asyncio.Event(), asyncio.Event()
            real_multicall = engine.rpc.multicall

            async def hold_after_the_reads(calls: Sequence[tuple[str, Sequence[Any]]]
                                           ) -> list[Any]:
                answers = await real_multicall(calls)
                if _lists_everything(calls) and not held.is_set():
                    held.set()  # the reconcile has read aria2's lists
                    await release.wait()
                return answers

            engine.rpc.multicall = hold_after_the_reads  # type: ignore[method-assign]
            # Which requests for a reconcile came, and with which aria2c up (no public
            # signal says when the reconnection asked for one).
            sync = engine.manager._sync
            real_schedule = sync.schedule_reconcile
            requests: list[str | None] = []

            def counted() -> None:
                requests.append(engine.aria2.session_id)
                real_schedule()

            sync.schedule_reconcile = counted  # type: ignore[method-assign]

            first = engine.aria2.session_id
            assert engine.aria2.pid is not None
            os.kill(engine.aria2.pid, signal.SIGKILL)
            await asyncio.wait_for(held.wait(), 30)  # the reconnection's reconcile read
            second = engine.aria2.session_id
            assert second not in (None, first)
            assert await _aria2_holds(engine, torrent.info_hash), "the restart lost it"

            # Meanwhile aria2c loses the download and restarts again.
            row = await engine.store.downloads.get(download_id)
            assert row is not None and row.gid is not None
            await engine.rpc.call("aria2.forceRemove", row.gid)
            await _until_removed(engine, row.gid)
            await engine.rpc.call("aria2.removeDownloadResult", row.gid)
            await engine.rpc.call("aria2.saveSession")
            assert engine.aria2.pid is not None
            os.kill(engine.aria2.pid, signal.SIGKILL)

            def asked_again() -> bool:
                health = engine.manager.listener_health()
                return (engine.aria2.session_id not in (None, first, second)
                        and any(s not in (first, second) for s in requests)
                        and health is not None and health.connected)

            await until(asked_again, 30, "the new aria2c and its request for a reconcile")
            release.set()

            deadline = asyncio.get_running_loop().time() + 30
            while not await _aria2_holds(engine, torrent.info_hash):
                assert asyncio.get_running_loop().time() < deadline, \
                    "the download was not given back to the new aria2c"
                await asyncio.sleep(0.1)
            torrent_now = await engine.manager.get(download_id)
            assert not torrent_now.state.is_final, torrent_now
    finally:
        await stop_engine(engine)


async def _until_removed(engine: Engine, gid: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while (await engine.rpc.call("aria2.tellStatus", gid, ["status"]))["status"] != "removed":
        assert asyncio.get_running_loop().time() < deadline, "aria2 did not remove it"
        await asyncio.sleep(0.02)
