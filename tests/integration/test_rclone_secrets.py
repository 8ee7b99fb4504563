"""A mirror destination given as an rclone connection string with a password.

The real ``ariabot run`` mirrors to a real ``rclone serve webdav`` behind a password, the
destination given as ``:webdav,url=...,user=...,pass=...:up``. The password (obscured, as
rclone wants it, and in clear) is never in a running rclone's command line
(``/proc/<pid>/cmdline``, what ``ps`` shows any local user), in ariabot's log, in what the
local commands answer or in ``ariabot doctor``; the files arrive all the same.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import psutil

from tests.integration.test_mirror import cli, mirror_of, webdav  # noqa: F401 - the fixture
from tests.rclonedest import WebDavServer, require_rclone, sha1_tree
from tests.runner import ariabot_run, wait_until
from tests.swarm import Swarm

MIB = 1024 * 1024


def _obscured(password: str) -> str:
    return subprocess.run([require_rclone(), "obscure", password], capture_output=True,
                          text=True, check=True).stdout.strip()


def _running_rclone_copies(ariabot_pid: int) -> list[tuple[int, bytes]]:
    """Each ``rclone copy`` child of ariabot, with its command line as the kernel has it."""
    found = []
    for child in psutil.Process(ariabot_pid).children(recursive=True):
        with contextlib.suppress(OSError, psutil.Error):
            cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes()
            if child.name() == "rclone" and b"\0copy\0" in cmdline:
                found.append((child.pid, cmdline))
    return found


def test_a_connection_string_password_never_reaches_a_command_line_or_a_log(
    tmp_path: Path, swarm: Swarm, webdav: WebDavServer,  # noqa: F811 - the fixture
) -> None:
    obscured = _obscured(webdav.password)
    remote = (f":webdav,url='{webdav.url}/',vendor=other,user={webdav.user},"
              f"pass={obscured}:up")
    env = {"ARIABOT_RCLONE_REMOTE": remote, "ARIABOT_MIRROR_BWLIMIT": "1M",
           "ARIABOT_SEED_TIME": "0", "ARIABOT_PROGRESS_INTERVAL": "1"}
    seeded = swarm.add("secret-mirror.bin", 4 * MIB, seed=71)
    with ariabot_run(tmp_path / "data", env) as run:
        run.wait_ready()
        assert run.process is not None
        assert cli(run, "add", seeded.magnet, "--wait").returncode == 0
        mirrored = cli(run, "mirror", "1")
        assert mirrored.returncode == 0, mirrored.stderr
        [(pid, cmdline)] = wait_until(lambda: _running_rclone_copies(run.process.pid), 60,
                                      "the rclone copy to run")
        environ = Path(f"/proc/{pid}/environ").read_bytes()  # readable by its user only
        done = wait_until(lambda: (m := mirror_of(run, 1)) and m["state"] == "done" and m,
                          60, "the mirror to finish")
        answers = "".join(cli(run, *args).stdout for args in (
            ["status", "1"], ["status", "1", "--json"], ["list", "--json"],
            ["log", "--json"]))
    place = f"0/1-{seeded.info_hash[:8]}"  # the download's own place (manager/delivery/mirrors.py)
    assert f"\0:webdav:up/{place}\0".encode() in cmdline
    for secret in (webdav.password, obscured):
        assert secret.encode() not in cmdline
        assert secret not in run.output + answers
    assert b"pass=" not in cmdline and "pass=" not in run.output + answers
    assert f"RCLONE_WEBDAV_PASS={obscured}".encode() in environ.split(b"\0")
    assert "mirroring to :webdav:up with rclone" in run.output
    assert done["destination"] == f":webdav:up/{place}/secret-mirror.bin"
    assert sha1_tree(webdav.root / "up" / place / "secret-mirror.bin") == sha1_tree(
        seeded.content_path)
    doctor = subprocess.run([sys.executable, "-m", "supervisor", "doctor"], env=run.env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert "✔ the mirror destination :webdav:up answers (copy, on request)" in doctor.stdout
    assert obscured not in doctor.stdout and webdav.password not in doctor.stdout
