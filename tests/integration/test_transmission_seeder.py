"""The benchmark's second seeder works: a plain aria2c downloads from ``transmission-cli``.

Only this seeder serves the torrent (:meth:`Swarm.make` keeps it away from the swarm's aria2c),
so the bytes can only have come from transmission.
"""

from __future__ import annotations

from pathlib import Path

from tests.swarm import Leecher, Swarm, file_digests
from tests.transmission import TransmissionSeeder

MIB = 1 << 20


def test_plain_aria2c_downloads_a_magnet_from_transmission(swarm: Swarm, tmp_path: Path) -> None:
    torrent = swarm.make("from-transmission", [MIB, 2 * MIB + 17], seed=11)
    target = tmp_path / "download"
    with (TransmissionSeeder(torrent, swarm.tracker, tmp_path / "seeder") as seeder,
          Leecher(torrent.magnet, target, log_path=tmp_path / "leecher.log") as leecher):
        assert leecher.wait(120) == 0, (tmp_path / "leecher.log").read_text()[-3000:]
    assert file_digests(target / torrent.name) == torrent.digests
    announcers = {a.port for a in swarm.tracker.announces_for(torrent.info_hash)}
    assert announcers == {seeder.port, leecher.listen_port}  # never the swarm's aria2c
