"""The local swarm works with a plain aria2c: no ariabot code involved (design.md §6)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import requests
from torf import _flatbencode as bencode

from tests.swarm import LOOPBACK, Leecher, Swarm, file_digests, wait_until

MIB = 1 << 20


def _download(source: str | Path, tmp_path: Path, timeout: float = 60) -> tuple[Path, Leecher]:
    """Run a plain aria2c on ``source`` to completion; return its download dir and itself."""
    target = tmp_path / "download"
    with Leecher(source, target, log_path=tmp_path / "leecher.log") as leecher:
        assert leecher.wait(timeout) == 0, (tmp_path / "leecher.log").read_text()[-3000:]
    return target, leecher


def test_magnet_multi_file_download_matches_source(swarm: Swarm, tmp_path: Path) -> None:
    torrent = swarm.add("magnet-pack", [7 * MIB, 9 * MIB, 4 * MIB + 123], seed=1)
    assert torrent.files == (
        "magnet-pack/part01.bin",
        "magnet-pack/part02.bin",
        "magnet-pack/sub/part03.bin",
    )
    # aria2 lists files in the torrent's order too (getFiles index 1 = files[0]).
    listed = swarm.seeder.call("aria2.getFiles", swarm.seeder.gid(torrent.info_hash))
    parent = torrent.content_path.parent
    assert [Path(f["path"]).relative_to(parent).as_posix() for f in listed] == list(torrent.files)

    target, _ = _download(torrent.magnet, tmp_path)

    assert sorted(p.name for p in target.iterdir()) == [torrent.name]  # no .aria2 left over
    assert file_digests(target / torrent.name) == torrent.digests
    assert torrent.total_bytes == 20 * MIB + 123


def test_torrent_file_single_file_download_matches_source(swarm: Swarm, tmp_path: Path) -> None:
    torrent = swarm.add("single.bin", 6 * MIB + 7, seed=2)
    assert torrent.files == ("single.bin",)

    target, _ = _download(torrent.write_torrent(tmp_path / "meta"), tmp_path)

    assert file_digests(target / "single.bin") == torrent.digests


def test_throttled_seeder_slows_download_until_released(swarm: Swarm, tmp_path: Path) -> None:
    limit = 1 * MIB  # aria2 sends about one second's worth in a burst each second
    torrent = swarm.add("throttled.bin", 32 * MIB, seed=3)
    torrent_file = torrent.write_torrent(tmp_path / "meta")
    before = swarm.seeder.uploaded(torrent.info_hash)

    def sent() -> int:
        return swarm.seeder.uploaded(torrent.info_hash) - before

    target = tmp_path / "download"
    with contextlib.ExitStack() as cleanup:
        with swarm.throttled(limit):  # before the leecher starts, so no byte goes unthrottled
            assert swarm.seeder.upload_limit() == limit
            leecher = cleanup.enter_context(
                Leecher(torrent_file, target, log_path=tmp_path / "leecher.log")
            )
            start = wait_until(sent, timeout=30, what="the first uploaded bytes")
            first = time.monotonic()
            wait_until(lambda: sent() >= start + 3 * MIB, timeout=30, what="3 MiB more")
            elapsed = time.monotonic() - first
            # Unthrottled, 3 MiB take milliseconds; at 1 MiB/s about 3 s (bursts come once a
            # second, so 3 MiB span at least two gaps). A slow machine only makes it longer.
            assert elapsed >= 1.0
            assert leecher.returncode is None
            assert sent() < torrent.total_bytes // 2
        assert swarm.seeder.upload_limit() == 0
        assert leecher.wait(30) == 0

    assert file_digests(target / torrent.name) == torrent.digests


def test_tracker_records_announces_of_seeder_and_leecher(swarm: Swarm, tmp_path: Path) -> None:
    torrent = swarm.add("announced.bin", 1 * MIB, seed=4)

    _, leecher = _download(torrent.write_torrent(tmp_path / "meta"), tmp_path)

    announces = swarm.tracker.announces_for(torrent.info_hash)
    seeder = [a for a in announces if a.port == swarm.seeder.listen_port]
    mine = [a for a in announces if a.port == leecher.listen_port]
    assert seeder[0].event == "started"
    assert seeder[0].left == 0
    assert mine[0].event == "started"
    assert mine[0].left == torrent.total_bytes
    # With --seed-time=0 aria2 sends no "completed", only "stopped" when it quits.
    assert mine[-1].event == "stopped"
    assert mine[-1].left == 0
    assert mine[-1].downloaded >= torrent.total_bytes
    assert leecher.listen_port not in swarm.tracker.peer_ports(torrent.info_hash)
    assert swarm.seeder.listen_port in swarm.tracker.peer_ports(torrent.info_hash)


def test_dead_magnet_finds_no_peer(swarm: Swarm, tmp_path: Path) -> None:
    magnet = swarm.dead_magnet()
    info_hash = magnet.split("btih:")[1].split("&")[0]
    assert len(info_hash) == 40

    target = tmp_path / "download"
    with Leecher(magnet, target, log_path=tmp_path / "leecher.log", stop_timeout=2) as leecher:
        code = leecher.wait(30)

    # bt-stop-timeout gave up (exit code 7, unfinished) without a "stopped" announce.
    assert code == 7
    announces = swarm.tracker.announces_for(info_hash)
    assert announces[0].event == "started"
    assert all(a.peers_returned == 0 for a in announces)


def test_tracker_answers_compact_peers_without_the_asker(swarm: Swarm) -> None:
    info_hash = bytes(range(20))
    url = swarm.tracker.url

    def announce(session: requests.Session, peer: bytes, port: int, event: str) -> dict:
        query = {"info_hash": info_hash, "peer_id": peer, "port": port, "left": 5,
                 "uploaded": 0, "downloaded": 0, "compact": 1, "event": event}
        response = session.get(url, params=query, timeout=10)
        response.raise_for_status()
        return bencode.decode(response.content)

    with requests.Session() as session:
        announce(session, b"A" * 20, 6001, "started")
        answer = announce(session, b"B" * 20, 6002, "started")
        assert answer[b"peers"] == bytes([127, 0, 0, 1]) + (6001).to_bytes(2, "big")
        assert swarm.tracker.announces_for(info_hash.hex())[-1].peers_returned == 1
        assert answer[b"interval"] == swarm.tracker.interval
        announce(session, b"A" * 20, 6001, "stopped")
        assert announce(session, b"B" * 20, 6002, "")[b"peers"] == b""
        assert session.get(url.replace("/announce", "/scrape"), timeout=10).status_code == 404
    assert LOOPBACK in url
