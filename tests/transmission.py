"""A ``transmission-cli`` seeder on 127.0.0.1: a second BitTorrent implementation for the swarm.

aria2c seeding to an aria2c leecher shares aria2's timing (both run a one-second engine
tick), which can flatter or punish a leecher by luck of phase; a seeder from another
code base shows what a download does against a client that behaves differently. The
throughput benchmark measures against both (issue 16).

``transmission-cli`` seeds one torrent per process and stops uploading once it reached a
ratio of 1.0, so :class:`TransmissionSeeder` is made fresh for each leecher: its own
config dir, its own port, the content already on disk (``-v`` verifies it first), no DHT,
LPD, PEX, uTP or port mapping, every socket bound to loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.swarm import LOOPBACK, HttpTracker, SwarmTorrent, free_port, wait_until

__all__ = ["BINARY", "TransmissionSeeder"]

BINARY = "transmission-cli"


class TransmissionSeeder:
    """One ``transmission-cli`` that verifies ``torrent``'s content and seeds it.

    Parameters:
        torrent: made by :meth:`tests.swarm.Swarm.make` (content on disk, tracker set).
        tracker: the swarm's tracker: :meth:`start` returns once the seeder announced
            itself complete there, so a leecher started after finds a seed at once.
        folder: a fresh folder for its config and log.
    """

    def __init__(self, torrent: SwarmTorrent, tracker: HttpTracker, folder: Path) -> None:
        self.torrent = torrent
        self.tracker = tracker
        self.folder = folder
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> Self:
        """Spawn it and wait for its complete announce (``left=0``) to the tracker.

        Raises:
            FileNotFoundError: ``transmission-cli`` is not installed.
            TimeoutError: it did not announce in time (its log is named).
        """
        binary = shutil.which(BINARY)
        if binary is None:
            raise FileNotFoundError(f"{BINARY} is not installed (Debian: apt install {BINARY})")
        config = self.folder / "config"
        config.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (config / "settings.json").write_text(json.dumps({
            "bind-address-ipv4": LOOPBACK,
            "bind-address-ipv6": "::1",
            "dht-enabled": False,
            "lpd-enabled": False,
            "pex-enabled": False,
            "utp-enabled": False,
            "port-forwarding-enabled": False,
            "peer-port": self.port,
            "ratio-limit-enabled": False,
            "speed-limit-up-enabled": False,
            "encryption": 1,
            "message-level": 1,
        }))
        torrent_file = self.torrent.write_torrent(self.folder)
        log = self.folder / "transmission.log"
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                [binary, "--config-dir", str(config),
                 "--download-dir", str(self.torrent.content_path.parent),
                 "--port", str(self.port), "--no-portmap", "--no-uplimit", "--verify",
                 str(torrent_file)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(self._seeding, timeout=timeout,
                       what=f"{BINARY} to announce {self.torrent.name} complete (log: {log})")
        except BaseException:
            self.stop()
            raise
        return self

    def _seeding(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"{BINARY} exited with {self._process.returncode}")
        return any(a.port == self.port and a.left == 0 and a.event != "stopped"
                   for a in self.tracker.announces_for(self.torrent.info_hash))

    def stop(self) -> None:
        """SIGTERM its process group (it tells the tracker it stopped), SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
