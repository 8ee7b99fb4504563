"""A mirror and a cancel (or a purge) of its download, on the real path: real aria2c, the
local swarm, real rclone to a local-path remote, and the real bot against the fake Bot API.

What the user is told is what happens: a cancel that keeps the files keeps them (no move
decided before it deletes them after it), a cancel stops the download's upload (and says
so), and a cancel "with its files" that had to keep them says that they were kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from manager import MirrorState, TorrentState
from supervisor.__main__ import _control as cli_control
from supervisor.__main__ import build_parser
from supervisor.config import Settings
from supervisor.control import ControlServer
from supervisor.layout import StateLayout
from tests.integration.conftest import start_engine, stop_engine
from tests.integration.test_bot import (
    LONG,
    MIB,
    USER,
    _download_id,
    _result_id,
    running_stack,
)
from tests.integration.test_manager import wait_state
from tests.integration.test_mirror import _wait_mirror, mirror_env, mirror_events, rclone_copies
from tests.integration.test_tracking_faults import WatchedLock
from tests.rclonedest import require_rclone
from tests.runner import until
from tests.swarm import Swarm, file_digests

pytestmark = pytest.mark.slow

CHAT = 17


async def test_a_cancel_answered_while_a_move_decides_keeps_the_files_it_said_it_kept(
    engine_settings: Callable[..., Settings], swarm: Swarm, tmp_path: Path
) -> None:
    """The move's upload is verified and it reads the row (finished); the user's cancel
    without files lands right then. Whatever comes first, the files the cancel answered
    with must stay: the move read the row before the cancel and deleted after it."""
    require_rclone()
    target = tmp_path / "nas-folder"
    engine = await start_engine(engine_settings(**mirror_env(
        tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}", ARIABOT_MIRROR_MODE="move")))
    try:
        watched = WatchedLock(engine.manager.live.lock)
        engine.manager.live.lock = watched  # type: ignore[assignment]
        torrent = swarm.add("decided-move.bin", 2 * MIB, seed=251)
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=CHAT, user_id=1)
        download_id = added.torrent.id
        await wait_state(engine, download_id, TorrentState.COMPLETE)
        local = engine.folder(CHAT) / torrent.name
        kept = file_digests(local)

        real_get = engine.store.downloads.get
        cancelling: list[asyncio.Task[Any]] = []
        there_when_answered: list[bool] = []

        async def cancel_and_look() -> None:
            await engine.manager.cancel(download_id, CHAT, 1, delete_files=False)
            there_when_answered.append(local.exists())

        async def held_get(wanted: int) -> Any:
            row = await real_get(wanted)
            task = asyncio.current_task()
            if (not cancelling and task is not None
                    and task.get_name() == f"mirror-{download_id}"):
                mirror = await engine.store.mirrors.get(download_id)
                if mirror is not None and mirror.state == MirrorState.VERIFYING.value:
                    # The move has its upload checked and reads the row: cancel now.
                    cancelling.append(asyncio.create_task(cancel_and_look()))
                    await until(lambda: cancelling[0].done() or cancelling[0] in watched.waiting,
                                30, "the cancel to be answered or to wait for the lock")
            return row

        engine.store.downloads.get = held_get  # type: ignore[method-assign]
        await engine.manager.mirror(download_id, CHAT, 1)
        await until(lambda: bool(cancelling), LONG, "the move to read the row")
        await asyncio.wait_for(cancelling[0], 30)
        mirror = await _wait_mirror(engine, download_id, MirrorState.DONE, MirrorState.FAILED,
                                    MirrorState.STOPPED)
        assert (await engine.manager.get(download_id)).state is TorrentState.CANCELLED
        assert local.exists() == there_when_answered[0], \
            "the cancel answered with its files there; the move deleted them after"
        assert not local.exists() or file_digests(local) == kept
        assert mirror.local_deleted == (not local.exists())
    finally:
        await stop_engine(engine)


async def test_cancel_with_its_files_stops_a_copy_upload_and_says_so(
    engine_settings: Callable[..., Settings], swarm: Swarm, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/cancel N delete while the download's copy uploads (throttled): rclone is stopped
    before the files go, the mirror is stopped, and the answer says so."""
    require_rclone()
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    env = mirror_env(tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{tmp_path / 'nas-folder'}",
                     ARIABOT_MIRROR_AUTO="true", ARIABOT_MIRROR_BWLIMIT="1M")
    async with running_stack(engine_settings, **env) as stack:
        seeded = swarm.add("cancel-copy.bin", 8 * MIB, seed=252)
        events: list[Any] = []
        stack.manager.subscribe(events.append)
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        download_id = _download_id(reply.params["text"])
        await until(lambda: any(e.torrent.mirror.bytes > 0
                                for e in mirror_events(events, download_id)),
                    timeout=LONG, what="the upload under way")
        assert rclone_copies()
        answer = await stack.say(USER, f"/cancel {download_id} delete")
        assert answer.params["text"] == (f"✖ #{download_id} is cancelled; its files are "
                                         "deleted. Its upload to the mirror is stopped.")
        assert rclone_copies() == []
        mirror = (await stack.manager.get(download_id)).mirror
        assert mirror is not None and mirror.state is MirrorState.STOPPED
        assert not (stack.settings.download_dir / "torrents" / str(USER) / seeded.name).exists()


async def test_a_purge_stops_the_upload_of_a_download_it_removes(
    engine_settings: Callable[..., Settings], swarm: Swarm, tmp_path: Path
) -> None:
    """A finished download leaves the list (its files deleted) while its copy uploads:
    the upload stops with it, instead of reading files that are being deleted."""
    require_rclone()
    engine = await start_engine(engine_settings(**mirror_env(
        tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{tmp_path / 'nas-folder'}",
        ARIABOT_MIRROR_BWLIMIT="1M")))
    try:
        torrent = swarm.add("purged-copy.bin", 8 * MIB, seed=253)
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=CHAT, user_id=1)
        download_id = added.torrent.id
        await wait_state(engine, download_id, TorrentState.COMPLETE)
        await engine.manager.mirror(download_id, CHAT, 1)
        await until(lambda: any(e.torrent.mirror.bytes > 0
                                for e in mirror_events(engine.events, download_id)),
                    timeout=LONG, what="the upload under way")
        assert rclone_copies()
        assert await engine.manager.purge_finished(timedelta(0), delete_files=True) == 1
        assert rclone_copies() == []
        assert not (engine.folder(CHAT) / torrent.name).exists()
    finally:
        await stop_engine(engine)


async def test_a_cancel_whose_files_another_download_owns_says_they_were_kept(
    engine_settings: Callable[..., Settings], swarm: Swarm, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A magnet whose metadata names ``twin.bin``, which a paused download in the list
    owns, fails; cancelled "with its files", the ownership rule keeps them. The bot's
    answer, the button's and the CLI's say so, instead of "its files are deleted"."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings, ARIABOT_MAX_CONCURRENT="1") as stack:
        manager = stack.manager
        first = swarm.add("twin.bin", MIB, seed=254)
        others = [swarm.add("twin.bin", MIB, seed=seed) for seed in (255, 256, 257)]
        blocker = await manager.add(swarm.dead_magnet("slot"), chat_id=USER, user_id=USER)
        owner = await manager.add(first.torrent_bytes, chat_id=USER, user_id=USER)
        await manager.pause(owner.torrent.id, chat_id=USER)
        await manager.cancel(blocker.torrent.id, chat_id=USER, delete_files=True)
        replies = [await stack.say(USER, f"/torrent {other.magnet}") for other in others]
        failed = [_download_id(reply.params["text"]) for reply in replies]
        await until(lambda: {e.torrent.id for _, e in stack.events
                             if e.torrent.state is TorrentState.ERROR} >= set(failed),
                    LONG, "the magnets to fail on the name")

        def failures_told() -> bool:  # before the commands, whose answers come next
            texts = [str(r.params.get("text")) for r in stack.server.requests
                     if r.method == "sendMessage"]
            return all(any(f"failed (#{i})" in text for text in texts) for i in failed)

        await until(failures_told, LONG, "the failures told")
        await manager.resume(owner.torrent.id, chat_id=USER)
        folder = stack.settings.download_dir / "torrents" / str(USER)
        await until((folder / "twin.bin").exists, LONG, "the owner's file")
        kept = f"its files were kept: #{owner.torrent.id} uses the same name"

        answer = await stack.say(USER, f"/cancel {failed[0]} delete")
        assert answer.params["text"] == f"✖ #{failed[0]} is cancelled; {kept}."
        pressed = await stack.press(USER, _result_id(replies[1]), f"cancel:{failed[1]}:delete")
        assert pressed.params.get("text") == f"Cancelled; {kept}."

        server = ControlServer(manager, StateLayout(stack.settings.data_dir).control_socket)
        await server.start()
        try:
            args = build_parser().parse_args(["cancel", str(failed[2]), "--delete-files"])
            assert await asyncio.to_thread(cli_control, args, stack.settings) == 0
        finally:
            await server.stop()
        assert capsys.readouterr().out.splitlines()[-1] == kept
        await wait_state(stack, owner.torrent.id, TorrentState.COMPLETE)  # type: ignore[arg-type]
        assert file_digests(folder / "twin.bin") == first.digests
