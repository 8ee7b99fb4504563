"""Nobody but the owner gets in: file modes, the control socket, aria2 options, logs."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from manager import InvalidSource
from tests.integration.conftest import Engine
from tests.integration.test_cli import cli
from tests.runner import ariabot_run
from tests.swarm import Swarm

MiB = 1024 * 1024


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


HOSTILE_PARAMS = (
    "&dir=/etc&out=../../x&on-download-complete=/bin/sh&index-out=1=/etc/passwd"
    "&so=2&select-file=2&seed-ratio=999&x.pe=127.0.0.1:1&ws=http://127.0.0.1:1/seed"
    "&tr=http://127.0.0.1:1/announce&dn=../../../etc/cron.d/evil"
)
"""aria2 option names and magnet extras a user might hope ariabot passes on."""


async def _own_options(engine: Engine, gid: str) -> dict[str, str]:
    """The options of one download that differ from aria2c's global ones: exactly what was
    set for it (by ariabot, or by anyone who reached aria2)."""
    options = await engine.rpc.call("aria2.getOption", gid)
    defaults = await engine.rpc.call("aria2.getGlobalOption")
    return {key: value for key, value in options.items() if defaults.get(key) != value}


async def _gid(engine: Engine, download_id: int) -> str:
    record = await engine.store.downloads.get(download_id)
    assert record is not None and record.gid is not None
    return record.gid


async def test_user_input_cannot_set_aria2_options(engine: Engine, swarm: Swarm) -> None:
    """Every way a user reaches aria2 (a magnet's parameters, a .torrent, /files numbers):
    aria2 ends up with ariabot's own options only, and the magnet it holds is ariabot's
    canonical one, not the user's text."""
    group = -1005
    magnet = swarm.dead_magnet("evil")
    added = await engine.manager.add(magnet + HOSTILE_PARAMS, chat_id=group, user_id=1)
    gid = await _gid(engine, added.torrent.id)
    assert await _own_options(engine, gid) == {"dir": str(engine.folder(group))}
    # What aria2 was handed is in its saved session, verbatim.
    await engine.rpc.call("aria2.saveSession")
    [line] = [line for line in engine.layout.session.read_text().splitlines()
              if added.torrent.info_hash in line]
    handed = parse_qs(urlsplit(line).query)
    assert set(handed) <= {"xt", "dn", "tr"}, handed
    assert handed["xt"] == [f"urn:btih:{added.torrent.info_hash}"]
    assert "127.0.0.1:1/announce" in " ".join(handed["tr"])  # a tracker is a tracker
    assert all(".." not in name and "/" not in name for name in handed.get("dn", []))

    seeded = swarm.add("choose-me", [MiB, MiB, MiB], seed=81)
    with swarm.throttled(64 * 1024):
        chosen = await engine.manager.add(seeded.torrent_bytes, chat_id=5, user_id=1)
        gid = await _gid(engine, chosen.torrent.id)
        assert await _own_options(engine, gid) == {"dir": str(engine.folder(5))}
        for bad in ([0], [4], [-1], [], [2, 10**6]):
            with pytest.raises(InvalidSource):
                await engine.manager.set_files(chosen.torrent.id, bad, 5, 1)
        assert await _own_options(engine, gid) == {"dir": str(engine.folder(5))}
        await engine.manager.set_files(chosen.torrent.id, [3, 1, 3], 5, 1)
        assert await _own_options(engine, await _gid(engine, chosen.torrent.id)) == {
            "dir": str(engine.folder(5)), "select-file": "1,3"}
        await engine.manager.cancel(chosen.torrent.id, 5, 1, delete_files=True)
