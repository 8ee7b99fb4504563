"""Only what a download owns is ever deleted: its files come from aria2 or its metainfo,
never from a name a user supplied (a magnet's ``dn=``). Real aria2c, real swarm."""

from __future__ import annotations

from datetime import timedelta

from manager import TorrentState
from tests.integration.conftest import Engine
from tests.integration.test_manager import wait_state
from tests.swarm import Swarm, file_digests

MiB = 1024 * 1024


async def _someone_elses_file(engine: Engine, swarm: Swarm, name: str) -> dict[str, str]:
    """A finished download's file in chat 9's folder, then purged from the list (kept)."""
    owner = swarm.add(name, 1 * MiB, seed=41)
    added = await engine.manager.add(owner.torrent_bytes, chat_id=9, user_id=1)
    await wait_state(engine, added.torrent.id, TorrentState.COMPLETE)
    assert await engine.manager.purge_finished(timedelta(0)) == 1
    return file_digests(engine.folder(9) / name)


async def test_cancel_with_delete_before_metadata_keeps_a_file_named_like_its_dn(
    engine: Engine, swarm: Swarm
) -> None:
    kept = await _someone_elses_file(engine, swarm, "victim.bin")
    result = await engine.manager.add(swarm.dead_magnet("victim.bin"), chat_id=9, user_id=2)
    assert result.torrent.state is TorrentState.METADATA
    await engine.manager.cancel(result.torrent.id, chat_id=9, delete_files=True)
    assert file_digests(engine.folder(9) / "victim.bin") == kept


async def test_purge_with_delete_of_a_magnet_without_metadata_keeps_that_file(
    engine: Engine, swarm: Swarm
) -> None:
    kept = await _someone_elses_file(engine, swarm, "victim2.bin")
    result = await engine.manager.add(swarm.dead_magnet("victim2.bin"), chat_id=9, user_id=2)
    await engine.manager.cancel(result.torrent.id, chat_id=9)
    assert await engine.manager.purge_finished(timedelta(0), delete_files=True) == 1
    assert file_digests(engine.folder(9) / "victim2.bin") == kept


async def test_cancel_with_delete_removes_exactly_the_downloads_own_files(
    engine: Engine, swarm: Swarm
) -> None:
    torrent = swarm.add("owned", [1 * MiB, 1 * MiB], seed=42)
    result = await engine.manager.add(torrent.magnet, chat_id=9, user_id=2)
    await wait_state(engine, result.torrent.id, TorrentState.COMPLETE)
    folder = engine.folder(9)
    mine = folder / "owned" / "notes.txt"  # the user's own file inside the folder
    mine.write_text("keep me")
    await engine.manager.cancel(result.torrent.id, chat_id=9, delete_files=True)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "owned", "owned/notes.txt"]

