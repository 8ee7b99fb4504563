"""A finished download never leaves aria2's ``<name>.aria2`` control file beside its files.

aria2 deletes the control file about a second after a torrent's data is complete (at its
next auto-save), and on a clean exit. An aria2c that is killed in that second (it did not
exit within ``ARIABOT_STOP_TIMEOUT``, or the machine went down) leaves it beside the
finished file: ariabot removes it once aria2c is gone, and at the next start.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

import psutil

from tests.integration.test_cli import MiB, cli, downloads
from tests.runner import AriabotRun, ariabot_run, rpc, wait_until
from tests.swarm import Swarm, file_digests


def _stop_aria2c_at_completion(run: AriabotRun, folder: Path, name: str) -> int:
    """Freeze aria2c (SIGSTOP) once the store has the download as seeding, its control file
    beside the data as aria2 left it in the second after completion; returns its pid.

    aria2 deletes the file at its next one-second tick, which may come before the freeze:
    then the last copy aria2 wrote while downloading is put back, which is what an aria2c
    killed before that tick leaves."""
    info = run.wait_ready()
    control = folder / f"{name}.aria2"
    completed = re.compile(r"download #1 \w+ -> seeding")
    written = b""
    deadline = time.monotonic() + 60
    while not completed.search(run.output):
        assert time.monotonic() < deadline, run.output[-3000:]
        with contextlib.suppress(OSError):
            written = control.read_bytes() or written
        time.sleep(0.002)  # a tight watch of a file aria2 rewrites every second
    os.kill(info["aria2c_pid"], signal.SIGSTOP)
    assert written, "aria2 wrote a control file while downloading"
    if not control.exists():
        control.write_bytes(written)
    return int(info["aria2c_pid"])


def test_a_control_file_left_by_a_killed_aria2c_is_removed_on_stop_and_at_start(
    tmp_path: Path, swarm: Swarm
) -> None:
    torrent = swarm.add("ctl-seeded.bin", 4 * MiB, seed=31)
    data = tmp_path / "data"
    folder = data / "downloads" / "torrents" / "0"
    env = {"ARIABOT_SEED_TIME": "60", "ARIABOT_STOP_TIMEOUT": "1"}
    with ariabot_run(data, env) as run, swarm.throttled(1 * MiB):
        run.wait_ready()
        assert cli(run, "add", torrent.magnet).returncode == 0
        pid = _stop_aria2c_at_completion(run, folder, "ctl-seeded.bin")
        run.signal(signal.SIGTERM)  # aria2c cannot exit by itself: it is killed
        assert run.wait_exit() == 0
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert sorted(path.name for path in folder.iterdir() if not path.name.endswith(
        ".torrent")) == ["ctl-seeded.bin"], run.output[-3000:]
    assert file_digests(folder / "ctl-seeded.bin") == torrent.digests
    # The next start takes the download back as it was: finished, the same bytes.
    with ariabot_run(data, {"ARIABOT_SEED_TIME": "60"}) as again:
        again.wait_ready()
        wait_until(lambda: downloads(again)[0]["state"] == "seeding", 60, "seeding again",
                   describe=lambda: f"{downloads(again)}\n{again.output[-3000:]}")
        info = again.runtime()
        assert info is not None
        assert rpc(info["rpc_port"], "aria2.getVersion", secret=info["rpc_secret"])["result"]
    assert not (folder / "ctl-seeded.bin.aria2").exists()
    assert file_digests(folder / "ctl-seeded.bin") == torrent.digests
