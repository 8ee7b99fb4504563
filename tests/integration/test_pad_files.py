"""BEP 47 pad files (``.pad/<n>``, zeros that align files to pieces) never reach the chat.

libtorrent 2.0 (qBittorrent 4.4+) writes them into v1 and hybrid torrents. aria2 1.36 does
not know them and would write them into the chat folder: they are never selected, never
shown, and what aria2 must write of them goes outside the chat folder. Real aria2c, a real
swarm seeding a padded torrent built here.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from torf import _flatbencode as bencode

from manager import InvalidSource, TorrentState
from supervisor.config import Settings
from tests.integration.conftest import start_engine, stop_engine
from tests.integration.test_manager import wait_state
from tests.swarm import Swarm, file_digests, magnet_uri

PIECE = 16 * 1024


@dataclass(frozen=True)
class Padded:
    info_hash: str
    torrent_bytes: bytes
    magnet: str
    digests: dict[str, str]


def seed_padded(swarm: Swarm, name: str, seed: int) -> Padded:
    """A v1 torrent ``name/{a.bin, .pad/N, b.bin, .pad/M, c.bin}``, seeded by the swarm."""
    rng = random.Random(seed)
    parent = swarm.root / "padded" / name
    top = parent / name
    (top / ".pad").mkdir(parents=True)
    files, data = [], b""
    for index, size in enumerate((20_000, 30_000, 5_000)):
        body = rng.randbytes(size)
        (top / f"{'abc'[index]}.bin").write_bytes(body)
        files.append({b"length": size, b"path": [f"{'abc'[index]}.bin".encode()]})
        data += body
        pad = -len(data) % PIECE
        if index < 2 and pad:
            (top / ".pad" / str(pad)).write_bytes(bytes(pad))
            files.append({b"attr": b"p", b"length": pad, b"path": [b".pad", str(pad).encode()]})
            data += bytes(pad)
    pieces = b"".join(hashlib.sha1(data[i:i + PIECE]).digest()
                      for i in range(0, len(data), PIECE))
    info = {b"files": files, b"name": name.encode(), b"piece length": PIECE, b"pieces": pieces}
    torrent_bytes = bencode.encode({b"announce": swarm.tracker.url.encode(), b"info": info})
    info_hash = hashlib.sha1(bencode.encode(info)).hexdigest()
    swarm.seeder.seed(torrent_bytes, parent)
    swarm.tracker.wait_for_peer(info_hash, swarm.seeder.listen_port)
    digests = {k: v for k, v in file_digests(top).items() if "/.pad/" not in k}
    return Padded(info_hash, torrent_bytes, magnet_uri(info_hash, name, swarm.tracker.url),
                  digests)


def _chat_tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.suffix not in (".torrent", ".aria2"))


@pytest.mark.parametrize("kind", ["torrent", "magnet"])
async def test_pad_files_are_never_written_selected_or_shown(
    engine_settings: Callable[..., Settings], swarm: Swarm, kind: str
) -> None:
    padded = seed_padded(swarm, f"padded-{kind}", seed=51 if kind == "torrent" else 52)
    engine = await start_engine(engine_settings(ARIABOT_SEED_TIME="60",
                                                ARIABOT_SEED_RATIO="0"))
    try:
        source = padded.torrent_bytes if kind == "torrent" else padded.magnet
        added = await engine.manager.add(source, chat_id=6, user_id=1)
        await wait_state(engine, added.torrent.id, TorrentState.SEEDING)
        folder = engine.folder(6)
        name = f"padded-{kind}"
        assert _chat_tree(folder) == [name, f"{name}/a.bin", f"{name}/b.bin", f"{name}/c.bin"]
        assert file_digests(folder / name) == padded.digests
        files = await engine.manager.files(added.torrent.id)
        assert [f.path for f in files] == [f"{name}/a.bin", f"{name}/b.bin", f"{name}/c.bin"]
        assert all(f.selected for f in files)
        seeding = await engine.manager.get(added.torrent.id)
        assert seeding.completed_bytes == seeding.total_bytes > 55_000  # aria2 counts pieces
        with pytest.raises(InvalidSource, match="file numbers go from 1 to 3"):
            await engine.manager.set_files(added.torrent.id, [4])
        # Numbers are places in that list: 2 is b.bin, which is aria2's file 3.
        chosen = await engine.manager.set_files(added.torrent.id, [1, 2])
        gid = (await engine.store.downloads.get(added.torrent.id)).gid
        option = await engine.rpc.call("aria2.getOption", gid)
        assert option["select-file"] == "1,3"
        assert chosen.state is TorrentState.SEEDING
        assert [f.selected for f in await engine.manager.files(added.torrent.id)] == [
            True, True, False]
        await engine.manager.cancel(added.torrent.id, delete_files=True)
        assert _chat_tree(folder) == []
        assert not [p for p in engine.settings.download_dir.rglob("*")
                    if p.is_file() and ".pad" in p.as_posix()]
    finally:
        await stop_engine(engine)


async def test_a_download_of_a_chat_that_moved_keeps_and_removes_its_pads_where_they_are(
    engine_settings: Callable[..., Settings], swarm: Swarm,
) -> None:
    """A group upgraded to a supergroup (a new chat id): its download's pads stay in the
    scratch they were written to, and cancelling it removes them from there."""
    padded = seed_padded(swarm, "padded-moved", seed=53)
    engine = await start_engine(engine_settings(ARIABOT_SEED_TIME="60",
                                                ARIABOT_SEED_RATIO="0"))
    try:
        added = await engine.manager.add(padded.torrent_bytes, chat_id=-6, user_id=1)
        await wait_state(engine, added.torrent.id, TorrentState.SEEDING)
        scratch = engine.settings.download_dir / ".pad-files"
        assert [p for p in scratch.rglob("*") if p.is_file()]  # aria2 wrote its pads there
        assert await engine.manager.move_chat(-6, -1006) == 1
        await engine.manager.cancel(added.torrent.id, delete_files=True)
        assert _chat_tree(engine.folder(-6)) == []
        assert not [p for p in engine.settings.download_dir.rglob("*")
                    if p.is_file() and ".pad" in p.as_posix()]
    finally:
        await stop_engine(engine)
