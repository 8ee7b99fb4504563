"""Hybrid (v1+v2) torrents with a real aria2c (issue 11, item 16).

aria2c 1.36 (Debian 12's) names a hybrid by a wrong v1 info-hash (aria2 issue #1903, fixed in
1.37), so it announces a hash no other peer uses and the download sits at "no peers" until
the dead-torrent timeout. ariabot must refuse hybrids at once on such an aria2c, with a plain
reason, and accept them from 1.37 on.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from manager import InvalidMagnet, InvalidTorrent, TorrentState
from supervisor.aria2c import locate_aria2c
from supervisor.config import Settings
from tests.hybrid import HybridTorrent, aria2_136_hash, build_hybrid
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.runner import ariabot_run
from tests.swarm import Leecher, Swarm, make_content, wait_until

FIXED_IN = (1, 37, 0)
"""The first aria2 that computes a hybrid's v1 info-hash right."""


@pytest.fixture(scope="module")
def installed_version() -> tuple[int, ...]:
    """The version of the aria2c on PATH, the one these tests and ``ariabot run`` use."""
    return locate_aria2c("aria2c")[1]


def hybrid_of(root: Path, tracker_url: str, name: str = "hy-pack", seed: int = 21
              ) -> HybridTorrent:
    """A hybrid of three files, two of them longer than one piece (so piece layers exist)."""
    content = make_content(root / "content", name, [100_000, 16_384, 200_000], seed=seed)
    return build_hybrid(content, tracker_url, piece_length=32 * 1024)


async def aria2_knows_nothing(engine: Engine) -> bool:
    keys = ["gid"]
    lists = [await engine.rpc.call("aria2.tellActive", keys),
             await engine.rpc.call("aria2.tellWaiting", 0, 100, keys),
             await engine.rpc.call("aria2.tellStopped", 0, 100, keys)]
    return lists == [[], [], []]


def test_aria2c_announces_a_hybrid_under_the_v1_hash_only_from_1_37(
    swarm: Swarm, tmp_path: Path, installed_version: tuple[int, ...]
) -> None:
    """The fact behind the refusal, seen on the tracker: the hash a plain aria2c announces."""
    hybrid = hybrid_of(tmp_path, swarm.tracker.url)
    path = tmp_path / "hybrid.torrent"
    path.write_bytes(hybrid.torrent_bytes)
    with Leecher(path, tmp_path / "download", log_path=tmp_path / "leecher.log",
                 stop_timeout=30) as leecher:
        announced = wait_until(
            lambda: {a.info_hash for a in swarm.tracker.announces
                     if a.port == leecher.listen_port},
            timeout=30, what="the leecher's first announce")
    if installed_version < FIXED_IN:
        assert announced == {aria2_136_hash(hybrid.torrent_bytes)}
        assert hybrid.v1_hash not in announced
    else:
        assert announced == {hybrid.v1_hash}


async def test_hybrid_sources_are_refused_at_add_on_aria2c_older_than_1_37(
    engine: Engine, swarm: Swarm, tmp_path: Path, installed_version: tuple[int, ...]
) -> None:
    hybrid = hybrid_of(tmp_path, swarm.tracker.url)
    if installed_version >= FIXED_IN:  # a newer aria2c on PATH: then they must go through
        result = await engine.manager.add(hybrid.torrent_bytes, chat_id=9, user_id=1)
        assert result.torrent.info_hash == hybrid.v1_hash
        return
    with pytest.raises(InvalidTorrent) as by_file:
        await engine.manager.add(hybrid.torrent_bytes, chat_id=9, user_id=1)
    with pytest.raises(InvalidMagnet) as by_magnet:
        await engine.manager.add(hybrid.magnet, chat_id=9, user_id=1)
    for refusal in (by_file.value, by_magnet.value):
        text = str(refusal)
        assert "hybrid" in text and "1.36.0" in text and "1.37" in text
        assert "ARIABOT_ARIA2C" in text
    assert await engine.store.downloads.list() == []
    assert not engine.folder(9).exists()
    assert await aria2_knows_nothing(engine)


async def test_hybrid_is_accepted_when_aria2c_is_1_37_or_newer(
    engine_settings: Callable[..., Settings], swarm: Swarm, tmp_path: Path
) -> None:
    """The policy lets a hybrid through from 1.37 on (told 1.37 here; aria2c takes the add)."""
    engine = await start_engine(engine_settings(), aria2_version=FIXED_IN)
    try:
        hybrid = hybrid_of(tmp_path, swarm.tracker.url, name="hy-new", seed=22)
        result = await engine.manager.add(hybrid.torrent_bytes, chat_id=3, user_id=1)
        assert result.torrent.info_hash == hybrid.v1_hash
        assert result.torrent.state in (TorrentState.QUEUED, TorrentState.DOWNLOADING)
        magnet = await engine.manager.add(
            hybrid_of(tmp_path / "m", swarm.tracker.url, name="hy-mag", seed=23).magnet,
            chat_id=3, user_id=1)
        assert magnet.torrent.state is TorrentState.METADATA
        assert len(await engine.store.downloads.list()) == 2
    finally:
        await stop_engine(engine)


def test_cli_add_of_a_hybrid_is_refused_and_doctor_warns(
    swarm: Swarm, tmp_path: Path, installed_version: tuple[int, ...]
) -> None:
    """Through the real ``ariabot run``: the version reaches the manager from the root."""
    hybrid = hybrid_of(tmp_path, swarm.tracker.url, name="hy-cli", seed=24)
    path = tmp_path / "hy-cli.torrent"
    path.write_bytes(hybrid.torrent_bytes)
    with ariabot_run(tmp_path / "data") as run:
        run.wait_ready()

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "supervisor", *args], env=run.env,
                                  capture_output=True, text=True, timeout=60, check=False)

        added = cli("add", str(path))
        listed = cli("list", "--json")
        doctor = cli("doctor")
    if installed_version >= FIXED_IN:
        assert added.returncode == 0, added.stderr
        assert not any(line[2:].startswith("hybrid") for line in doctor.stdout.splitlines())
        return
    assert added.returncode == 1, added.stdout
    assert "hybrid" in added.stderr and "1.37" in added.stderr
    assert listed.stdout.strip() == "[]"
    [warning] = [line for line in doctor.stdout.splitlines() if line[2:].startswith("hybrid")]
    assert warning.startswith("○ ") and "1.36.0" in warning and "1.37" in warning
    assert doctor.returncode == 0, doctor.stdout  # a note, not a failure
