"""A magnet's metadata step whose write fails: aria2 must not write the torrent's files
before the row gives the download their name and size (the ownership rule of
:mod:`manager.downloads.contents`), or the next metadata check finds files that "no
download here owns" and fails the user's download on its own files.

Real aria2c, real swarm, the real SQLite file; the write fails because another process
holds the database's write lock past ``busy_timeout`` (as in
:mod:`tests.integration.test_store_faults`). Found by a clean-clone CI run of
``test_cli_readd.py``: ariabot stopped between aria2's start and the row's write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from manager import TorrentState
from manager.errors import StoreError
from supervisor.config import Settings
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.integration.test_manager import aria2_entries, wait_state
from tests.integration.test_store_faults import locked
from tests.swarm import Swarm, file_digests

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
CHAT = 5
_METADATA_KEYS = ["bittorrent", "files", "status"]
"""What the metadata step asks of a magnet's real download (its first call)."""


class HeldMetadataStep:
    """Holds the manager's metadata step once it has read a magnet's real download (its
    files are known, aria2 holds it paused) until ``go_on`` is set: the test decides
    when it goes on, with aria2's real answer."""

    def __init__(self, engine: Engine) -> None:
        self.entered = asyncio.Event()
        self.go_on = asyncio.Event()
        self._real = engine.rpc.call

        async def call(method: str, *params: Any) -> Any:
            answer = await self._real(method, *params)
            if method == "aria2.tellStatus" and list(params[1:2]) == [_METADATA_KEYS]:
                files = answer.get("files") or []
                if files and not str(files[0].get("path", "")).startswith("[METADATA]"):
                    self.entered.set()
                    await self.go_on.wait()
            return answer

        engine.rpc.call = call  # type: ignore[method-assign]


async def _written_or_held(engine: Engine, info_hash: str, written: Callable[[], bool]) -> str:
    """Wait until aria2 has either created the torrent's files or holds its real download
    paused (one of the two is true right after the metadata step ran); returns which."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        if written():
            return "written"
        entries = await aria2_entries(engine, info_hash)
        if any(e["status"] == "paused" and not e.get("followedBy") for e in entries):
            return "paused"
        assert asyncio.get_running_loop().time() < deadline, entries
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("then", ["next-poll", "restart"])
async def test_a_metadata_step_whose_write_failed_leaves_no_files_it_would_not_own(
    engine_settings: Callable[..., Settings], swarm: Swarm, then: str
) -> None:
    """The metadata arrives while the database is locked: the row cannot take the
    torrent's name and size. aria2 must keep the download paused until it can, so that
    the next metadata step (the next poll, or the re-add after a restart whose aria2
    session was lost) does not find files of its own that its row does not claim."""
    settings = engine_settings(ARIABOT_SEED_TIME="60")
    engine = await start_engine(settings)
    torrent = swarm.add(f"metadata-locked-{then}.bin", 1 * MiB, seed=251)
    try:
        with swarm.throttled(128 * 1024):
            held = HeldMetadataStep(engine)
            added = await engine.manager.add(torrent.magnet, chat_id=CHAT, user_id=1)
            download_id = added.torrent.id
            folder = engine.folder(CHAT)
            await asyncio.wait_for(held.entered.wait(), 60)
            with locked(engine.layout.database) as release:
                step_refused = asyncio.Event()
                real_update = engine.store.downloads.update

                async def update(download_id_: int, **values: Any) -> Any:
                    try:
                        return await real_update(download_id_, **values)
                    except StoreError:
                        if "total_bytes" in values:
                            step_refused.set()
                        raise

                engine.store.downloads.update = update  # type: ignore[method-assign]
                held.go_on.set()
                await asyncio.wait_for(step_refused.wait(), 60)
                if then == "restart":
                    held.go_on.clear()  # stopped before any other metadata step runs
                row = await engine.store.downloads.get(download_id)
                assert row is not None and row.total_bytes == 0
                found = await _written_or_held(engine, torrent.info_hash,
                                               (folder / torrent.name).exists)
                if then == "restart":
                    release()
                    await stop_engine(engine)
                    engine.layout.session.write_text("")  # aria2's session is lost
                    engine = await start_engine(settings)
                else:
                    release()
            await wait_state(engine, download_id, TorrentState.SEEDING, TorrentState.COMPLETE,
                             TorrentState.ERROR, timeout=60)
        torrent_now = await engine.manager.get(download_id)
        assert torrent_now.state is not TorrentState.ERROR, (found, torrent_now.error)
        assert file_digests(folder / torrent.name) == torrent.digests
    finally:
        await stop_engine(engine)
