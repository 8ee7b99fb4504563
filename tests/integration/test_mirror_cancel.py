"""A mirror and a cancel (or a purge) of its download, on the real path: real aria2c, the
local swarm, real rclone to a local-path remote, and the real bot against the fake Bot API.

What the user is told is what happens: a cancel that keeps the files keeps them (no move
decided before it deletes them after it), a cancel stops the download's upload (and says
so), and a cancel "with its files" that had to keep them says that they were kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from manager import MirrorState, TorrentState
from supervisor.config import Settings
from tests.integration.conftest import start_engine, stop_engine
from tests.integration.test_bot import LONG, MIB
from tests.integration.test_manager import wait_state
from tests.integration.test_mirror import _wait_mirror, mirror_env
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

        real_get = engine.store.get
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
                mirror = await engine.store.mirror(download_id)
                if mirror is not None and mirror.state == MirrorState.VERIFYING.value:
                    # The move has its upload checked and reads the row: cancel now.
                    cancelling.append(asyncio.create_task(cancel_and_look()))
                    await until(lambda: cancelling[0].done() or cancelling[0] in watched.waiting,
                                30, "the cancel to be answered or to wait for the lock")
            return row

        engine.store.get = held_get  # type: ignore[method-assign]
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
