"""TorrentManager on a real aria2c and a real local swarm."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import pytest

from manager import (
    AlreadyDownloading,
    DownloadNotFound,
    InvalidMagnet,
    InvalidTorrent,
    TorrentCompleted,
    TorrentState,
)
from supervisor.config import Settings
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.runner import until
from tests.swarm import Swarm, file_digests

MiB = 1024 * 1024


async def wait_state(engine: Engine, download_id: int, *states: TorrentState,
                     timeout: float = 60) -> None:
    async def reached() -> bool:
        return (await engine.manager.get(download_id)).state in states

    deadline = asyncio.get_running_loop().time() + timeout
    while not await reached():
        if asyncio.get_running_loop().time() > deadline:
            torrent = await engine.manager.get(download_id)
            raise AssertionError(f"#{download_id} is {torrent.state} ({torrent.error}), "
                                 f"wanted {states}")
        await asyncio.sleep(0.05)


async def aria2_entries(engine: Engine, info_hash: str) -> list[dict]:
    keys = ["gid", "status", "infoHash", "followedBy"]
    found = []
    for method, params in (("aria2.tellActive", [keys]), ("aria2.tellWaiting", [0, 1000, keys]),
                           ("aria2.tellStopped", [0, 1000, keys])):
        found += [s for s in await engine.rpc.call(method, *params)
                  if s.get("infoHash") == info_hash]
    return found


async def test_magnet_downloads_to_the_chat_folder_byte_for_byte(
    engine: Engine, swarm: Swarm
) -> None:
    torrent = swarm.add("album", [3 * MiB, 1 * MiB, 2 * MiB], seed=1)
    result = await engine.manager.add(torrent.magnet, chat_id=42, user_id=7)
    assert not result.existing and result.torrent.state is TorrentState.METADATA
    await wait_state(engine, result.torrent.id, TorrentState.COMPLETE)
    done = await engine.manager.get(result.torrent.id)
    assert done.name == "album" and done.total_bytes == torrent.total_bytes
    assert done.completed_bytes == torrent.total_bytes and done.completed_at is not None
    folder = engine.folder(42)
    assert file_digests(folder / "album") == torrent.digests
    assert done.path == str(folder / "album")
    completed = [e for e in engine.events if isinstance(e, TorrentCompleted)]
    assert [e.torrent.id for e in completed] == [result.torrent.id]
    assert len(await engine.store.downloads.list()) == 1


async def test_torrent_file_downloads_byte_for_byte(engine: Engine, swarm: Swarm) -> None:
    torrent = swarm.add("single.bin", 4 * MiB, seed=2)
    result = await engine.manager.add(torrent.torrent_bytes, chat_id=5, user_id=7)
    assert result.torrent.total_bytes == torrent.total_bytes
    await wait_state(engine, result.torrent.id, TorrentState.COMPLETE)
    assert file_digests(engine.folder(5) / "single.bin") == torrent.digests


async def test_invalid_sources_store_nothing_and_reach_no_aria2(engine: Engine) -> None:
    with pytest.raises(InvalidMagnet, match="not a magnet link"):
        await engine.manager.add("magnet:?dn=nothing", chat_id=1, user_id=1)
    with pytest.raises(InvalidTorrent):
        await engine.manager.add(b"d4:infoi3ee", chat_id=1, user_id=1)
    assert await engine.store.downloads.list() == []
    assert await engine.rpc.call("aria2.tellWaiting", 0, 10) == []
    assert await engine.rpc.call("aria2.tellActive") == []


async def test_same_magnet_twice_returns_the_first(engine: Engine, swarm: Swarm) -> None:
    magnet = swarm.dead_magnet("twice")
    first = await engine.manager.add(magnet, chat_id=1, user_id=1)
    second = await engine.manager.add(magnet, chat_id=1, user_id=2)
    assert second.existing and second.torrent.id == first.torrent.id
    assert "already" in (second.note or "")
    with pytest.raises(AlreadyDownloading):
        await engine.manager.add(magnet, chat_id=2, user_id=3)
    assert len(await engine.store.downloads.list()) == 1


async def test_limit_three_runs_three_and_queues_the_rest_with_positions(
    engine: Engine, swarm: Swarm
) -> None:
    ids = [(await engine.manager.add(swarm.dead_magnet(f"q{i}"), chat_id=1, user_id=1)).torrent.id
           for i in range(5)]
    await engine.manager.poll_once()
    listed = {t.id: t for t in await engine.manager.list(1)}
    running = [i for i in ids if listed[i].state is TorrentState.METADATA]
    queued = [i for i in ids if listed[i].state is TorrentState.QUEUED]
    assert running == ids[:3]
    assert queued == ids[3:]
    assert [listed[i].queue_position for i in queued] == [1, 2]


async def test_pause_resume_and_cancel_keeping_files(engine: Engine, swarm: Swarm) -> None:
    torrent = swarm.add("slow.bin", 8 * MiB, seed=3)
    with swarm.throttled(512 * 1024):
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=9, user_id=1)
        await wait_state(engine, added.torrent.id, TorrentState.DOWNLOADING)
        paused = await engine.manager.pause(added.torrent.id, chat_id=9)
        assert paused.state is TorrentState.PAUSED
        [entry] = await aria2_entries(engine, torrent.info_hash)
        assert entry["status"] == "paused"
        resumed = await engine.manager.resume(added.torrent.id, chat_id=9)
        assert resumed.state in (TorrentState.QUEUED, TorrentState.DOWNLOADING)
        await wait_state(engine, added.torrent.id, TorrentState.DOWNLOADING)
        cancelled = await engine.manager.cancel(added.torrent.id, chat_id=9)
        assert cancelled.torrent.state is TorrentState.CANCELLED
    assert await aria2_entries(engine, torrent.info_hash) == []
    assert (engine.folder(9) / "slow.bin").exists()


async def test_cancel_with_delete_files_removes_only_that_download(
    engine: Engine, swarm: Swarm
) -> None:
    torrent = swarm.add("gone", [2 * MiB, 2 * MiB], seed=4)
    keep = engine.folder(9) / "keep.txt"
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_text("mine")
    added = await engine.manager.add(torrent.torrent_bytes, chat_id=9, user_id=1)
    await wait_state(engine, added.torrent.id, TorrentState.COMPLETE)
    assert (engine.folder(9) / "gone").is_dir()
    # Once stored as complete, aria2's result is purged: the files must be found anyway.
    await engine.manager.poll_once()
    await engine.manager.poll_once()
    assert await aria2_entries(engine, torrent.info_hash) == []
    await engine.manager.cancel(added.torrent.id, chat_id=9, delete_files=True)
    assert not (engine.folder(9) / "gone").exists()
    assert keep.read_text() == "mine"


async def test_other_chats_cannot_see_or_touch_a_download(engine: Engine, swarm: Swarm) -> None:
    added = await engine.manager.add(swarm.dead_magnet("private"), chat_id=1, user_id=1)
    for action in (engine.manager.get, engine.manager.pause, engine.manager.cancel):
        with pytest.raises(DownloadNotFound):
            await action(added.torrent.id, chat_id=2)
    assert [t.id for t in await engine.manager.list(2)] == []


async def test_multi_file_selection_downloads_only_chosen_files(
    engine: Engine, swarm: Swarm
) -> None:
    torrent = swarm.add("pick", [2 * MiB, 3 * MiB, 1 * MiB], seed=5)
    with swarm.throttled(256 * 1024):
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=3, user_id=1)
        await wait_state(engine, added.torrent.id, TorrentState.DOWNLOADING,
                         TorrentState.QUEUED)
        files = await engine.manager.files(added.torrent.id, chat_id=3)
        assert [f.path for f in files] == list(torrent.files)
        chosen = await engine.manager.set_files(added.torrent.id, [1, 3], chat_id=3)
        assert chosen.total_bytes == 3 * MiB
    await wait_state(engine, added.torrent.id, TorrentState.COMPLETE)
    for relative in (torrent.files[0], torrent.files[2]):
        got = file_digests(engine.folder(3) / relative)
        assert list(got.values()) == [torrent.digests[relative]]
    # The unselected middle file was never completed (aria2 may leave a sparse stub).
    middle = engine.folder(3) / torrent.files[1]
    assert not middle.exists() or file_digests(middle) != {
        torrent.files[1].split("/", 1)[-1]: torrent.digests[torrent.files[1]]}


async def test_aria2_killed_mid_download_same_row_completes_without_duplicates(
    engine: Engine, swarm: Swarm
) -> None:
    torrent = swarm.add("crash.bin", 16 * MiB, seed=6)
    with swarm.throttled(2 * MiB):
        added = await engine.manager.add(torrent.magnet, chat_id=4, user_id=1)
        await until(lambda: any(e.torrent.completed_bytes > 2 * MiB for e in engine.events
                                if hasattr(e, "torrent") and e.torrent.id == added.torrent.id),
                    30, "some progress")
        old_session = engine.aria2.session_id
        os.kill(engine.aria2.pid, signal.SIGKILL)
        await until(lambda: engine.aria2.session_id not in (None, old_session), 30,
                    "aria2c to restart")
    await wait_state(engine, added.torrent.id, TorrentState.COMPLETE)
    assert file_digests(engine.folder(4) / "crash.bin") == torrent.digests
    assert len(await engine.store.downloads.list()) == 1
    assert len([e for e in await aria2_entries(engine, torrent.info_hash)
                if not e.get("followedBy")]) <= 1


async def test_dead_torrent_ends_in_error_with_reason(
    engine_settings: Callable[..., Settings], swarm: Swarm
) -> None:
    running = await start_engine(engine_settings(ARIABOT_BT_STOP_TIMEOUT="2"))
    try:
        added = await running.manager.add(swarm.dead_magnet("nobody"), chat_id=1, user_id=1)
        await wait_state(running, added.torrent.id, TorrentState.ERROR, timeout=60)
        failed = await running.manager.get(added.torrent.id)
        assert failed.error == "stopped: no data for 1 min (dead torrent)"
    finally:
        await stop_engine(running)
