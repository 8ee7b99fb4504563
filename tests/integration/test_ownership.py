"""Only what a download owns is ever deleted: its files come from aria2 or its metainfo,
never from a name a user supplied (a magnet's ``dn=``). Real aria2c, real swarm."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from manager import InvalidSource, TorrentState
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.integration.test_manager import aria2_entries, wait_state
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



async def test_no_two_listed_downloads_share_a_name_before_either_wrote_a_byte(
    engine_settings, swarm: Swarm
) -> None:
    """Item 2 of issue 23: while the first ``twin.bin`` waits in the queue (nothing on
    disk), a second torrent of that name is refused, and a magnet whose metadata then says
    ``twin.bin`` fails; cancelling that failed magnet with its files deletes nothing of the
    first's, which then downloads byte for byte."""
    engine = await start_engine(engine_settings(ARIABOT_MAX_CONCURRENT="1"))
    try:
        first = swarm.add("twin.bin", 1 * MiB, seed=43)
        other = swarm.add("twin.bin", 1 * MiB, seed=44)
        blocker = await engine.manager.add(swarm.dead_magnet("slot"), chat_id=9, user_id=1)
        queued = await engine.manager.add(first.torrent_bytes, chat_id=9, user_id=1)
        await engine.manager.pause(queued.torrent.id, chat_id=9)
        folder = engine.folder(9)
        assert not (folder / "twin.bin").exists()
        with pytest.raises(InvalidSource, match=(
                rf"another download in this chat \(#{queued.torrent.id}\) already has files "
                "named 'twin.bin'")):
            await engine.manager.add(other.torrent_bytes, chat_id=9, user_id=2)
        assert [t.id for t in await engine.manager.list(9)] == [queued.torrent.id,
                                                                blocker.torrent.id]

        await engine.manager.cancel(blocker.torrent.id, chat_id=9, delete_files=True)
        magnet = await engine.manager.add(other.magnet, chat_id=9, user_id=2)
        await wait_state(engine, magnet.torrent.id, TorrentState.ERROR)
        failed = await engine.manager.get(magnet.torrent.id)
        assert f"(#{queued.torrent.id}) already has files named 'twin.bin'" in str(failed.error)
        await engine.manager.resume(queued.torrent.id, chat_id=9)
        await wait_state(engine, queued.torrent.id, TorrentState.COMPLETE)
        await engine.manager.cancel(magnet.torrent.id, chat_id=9, delete_files=True)
        assert file_digests(folder / "twin.bin") == first.digests
    finally:
        await stop_engine(engine)


async def test_cancel_or_purge_with_delete_of_a_torrent_file_download_leaves_nothing(
    engine: Engine, swarm: Swarm
) -> None:
    """Item 17 of issue 23: aria2 saves an uploaded .torrent as ``<SHA-1 of the file>
    .torrent`` beside the download; deleting the download's files deletes it too."""
    cancelled = swarm.add("from-file", [1 * MiB, 1 * MiB], seed=45)
    purged = swarm.add("from-file-2.bin", 1 * MiB, seed=46)
    for torrent, chat in ((cancelled, 21), (purged, 22)):
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=chat, user_id=1)
        await wait_state(engine, added.torrent.id, TorrentState.COMPLETE)
        assert (engine.folder(chat) / torrent.name).exists()
        if torrent is cancelled:
            await engine.manager.cancel(added.torrent.id, chat_id=chat, delete_files=True)
    assert await engine.manager.purge_finished(timedelta(0), delete_files=True) == 2
    assert [p.name for p in engine.folder(21).iterdir()] == []
    assert [p.name for p in engine.folder(22).iterdir()] == []


def _unowned_message(name: str) -> str:
    return (rf"files named '{name}' are already in this chat's folder and no download here "
            "owns them; move or delete them first")


def _plant(folder: Path, name: str, size: int) -> dict[str, str]:
    """A user's own file in the chat folder, named like a torrent, other bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"mine" * (size // 4))
    return file_digests(folder / name)


async def test_a_torrent_named_like_a_file_nobody_owns_is_refused_and_the_file_kept(
    engine: Engine, swarm: Swarm
) -> None:
    """A file no download claims is never hash-checked into a torrent's bytes."""
    torrent = swarm.add("planted.bin", 1 * MiB, seed=47)
    mine = _plant(engine.folder(9), "planted.bin", 1 * MiB)
    with pytest.raises(InvalidSource, match=_unowned_message("planted.bin")):
        await engine.manager.add(torrent.torrent_bytes, chat_id=9, user_id=1)
    assert await engine.manager.list(9) == []
    assert await aria2_entries(engine, torrent.info_hash) == []
    assert file_digests(engine.folder(9) / "planted.bin") == mine


async def test_files_a_purge_kept_are_not_overwritten_by_another_torrent_of_that_name(
    engine: Engine, swarm: Swarm
) -> None:
    kept = await _someone_elses_file(engine, swarm, "kept.bin")
    other = swarm.add("kept.bin", 1 * MiB, seed=48)
    with pytest.raises(InvalidSource, match=_unowned_message("kept.bin")):
        await engine.manager.add(other.torrent_bytes, chat_id=9, user_id=2)
    assert await engine.manager.list(9) == []
    assert file_digests(engine.folder(9) / "kept.bin") == kept


async def test_a_magnet_whose_metadata_names_a_file_nobody_owns_fails_before_writing(
    engine: Engine, swarm: Swarm
) -> None:
    torrent = swarm.add("planted-m.bin", 1 * MiB, seed=49)
    mine = _plant(engine.folder(9), "planted-m.bin", 1 * MiB)
    added = await engine.manager.add(torrent.magnet, chat_id=9, user_id=1)
    await wait_state(engine, added.torrent.id, TorrentState.ERROR)
    failed = await engine.manager.get(added.torrent.id)
    assert re.search(_unowned_message("planted-m.bin"), str(failed.error))
    # Only the finished metadata task is left: the real download was removed.
    assert [e["status"] for e in await aria2_entries(engine, torrent.info_hash)
            if e["status"] != "complete"] == []
    assert file_digests(engine.folder(9) / "planted-m.bin") == mine


@pytest.mark.parametrize("how", ["purge", "cancel"])
async def test_a_magnet_refused_by_its_name_deletes_none_of_those_files(
    engine: Engine, swarm: Swarm, how: str
) -> None:
    """aria2 saved its metadata (bt-save-metadata), which names the planted file: deleting
    its files is deleting what it owns, and a magnet that never wrote a byte owns nothing
    (the soak found it: seeds 977122132 and 3552376119, a purge with files)."""
    torrent = swarm.add(f"planted-{how}.bin", 1 * MiB, seed=50 if how == "purge" else 51)
    mine = _plant(engine.folder(9), f"planted-{how}.bin", 1 * MiB)
    added = await engine.manager.add(torrent.magnet, chat_id=9, user_id=1)
    await wait_state(engine, added.torrent.id, TorrentState.ERROR)
    assert (engine.folder(9) / f"{torrent.info_hash}.torrent").exists()  # names the file
    if how == "purge":
        assert await engine.manager.purge_finished(timedelta(0), delete_files=True) == 1
    else:
        cancelled = await engine.manager.cancel(added.torrent.id, chat_id=9, delete_files=True)
        assert not cancelled.files_deleted  # the answer says they are kept, not deleted
    assert file_digests(engine.folder(9) / f"planted-{how}.bin") == mine
    assert not (engine.folder(9) / f"{torrent.info_hash}.torrent").exists()  # its own: gone


@pytest.mark.parametrize("kind", ["magnet", "torrent"])
async def test_a_download_cancelled_without_its_files_is_added_again_over_them(
    engine: Engine, swarm: Swarm, kind: str
) -> None:
    """Its row (same info-hash, same folder) claims the files it left: added again, it
    checks them and goes on, nothing fetched twice (the "disk full" workflow)."""
    torrent = swarm.add(f"again-{kind}.bin", 1 * MiB, seed=50 if kind == "magnet" else 51)
    source = torrent.magnet if kind == "magnet" else torrent.torrent_bytes
    first = await engine.manager.add(source, chat_id=9, user_id=1)
    await wait_state(engine, first.torrent.id, TorrentState.COMPLETE)
    await engine.manager.cancel(first.torrent.id, chat_id=9)
    uploaded = swarm.seeder.uploaded(torrent.info_hash)
    again = await engine.manager.add(source, chat_id=9, user_id=1)
    assert again.torrent.id == first.torrent.id
    await wait_state(engine, again.torrent.id, TorrentState.COMPLETE)
    assert swarm.seeder.uploaded(torrent.info_hash) == uploaded
    assert file_digests(engine.folder(9) / torrent.name) == torrent.digests
