"""Nobody but the owner gets in: file modes, the control socket, aria2 options, logs."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Engine
from tests.integration.test_cli import cli
from tests.runner import ariabot_run
from tests.swarm import Swarm


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_files_and_socket_are_private(tmp_path: Path) -> None:
    with ariabot_run(tmp_path / "data", {"ARIABOT_LOG_LEVEL": "DEBUG"}) as run:
        info = run.wait_ready()
        data = run.data_dir
        assert _mode(data) == 0o700
        for name in ("aria2.conf", "runtime.json", "control.sock"):
            assert _mode(data / name) & 0o077 == 0, name
        assert stat.S_ISSOCK((data / "control.sock").stat().st_mode)
        assert _mode(data / "downloads") == 0o700
        secret = info["rpc_secret"]
    # Debug logging included: the RPC secret is in no log line.
    assert secret not in run.output
    assert secret not in (data / "aria2.log").read_text(errors="replace")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_control_socket_refuses_another_user(tmp_path: Path) -> None:
    with ariabot_run(tmp_path / "data") as run:
        run.wait_ready()
        sock = run.data_dir / "control.sock"
        probe = (
            "import os, socket, sys\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            f"    s.connect({str(sock)!r})\n"
            "except OSError as e:\n"
            "    print('refused', e.errno); sys.exit(0)\n"
            "print('connected'); sys.exit(1)\n"
        )
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                timeout=30, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "refused" in result.stdout


def test_control_socket_answers_garbage_with_a_clear_error(tmp_path: Path) -> None:
    with ariabot_run(tmp_path / "data") as run:
        run.wait_ready()
        for payload in (b"not json\n", b"[1,2]\n", b'{"op": "rm -rf"}\n',
                        b'{"op": "status", "id": "1; drop"}\n',
                        b'{"op": "add", "torrent_b64": "%%%"}\n',
                        b'{"op": "cancel", "id": 1, "delete_files": "yes"}\n'):
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(10)
                client.connect(str(run.data_dir / "control.sock"))
                client.sendall(payload)
                answer = json.loads(client.makefile("rb").readline())
            assert answer["ok"] is False and answer["error"], payload
        assert cli(run, "list", "--json").stdout.strip() == "[]"


async def test_user_input_cannot_set_aria2_options(engine: Engine, swarm: Swarm) -> None:
    hostile = (swarm.dead_magnet("evil") + "&dir=/etc&out=../../x&on-download-complete=/bin/sh"
               "&index-out=1=/etc/passwd")
    added = await engine.manager.add(hostile, chat_id=5, user_id=1)
    gid = (await engine.store.get(added.torrent.id)).gid
    options = await engine.rpc.call("aria2.getOption", gid)
    assert options["dir"] == str(engine.folder(5))
    assert "out" not in options and "on-download-complete" not in options
    assert "index-out" not in options
