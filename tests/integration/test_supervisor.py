"""``ariabot run`` against a real aria2c: start, secrets, restarts, FATAL, stop, orphans."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer
from tests.runner import AriabotRun, ariabot_run, rpc, wait_until

ADMIN_CHAT = 777


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_starts_aria2c_that_answers_only_with_the_secret(tmp_path: Path) -> None:
    with ariabot_run(tmp_path / "data") as run:
        info = run.wait_running()
        port, secret = info["rpc_port"], info["rpc_secret"]

        version = rpc(port, "aria2.getVersion", secret=secret)
        assert version["result"]["version"].startswith("1.")
        refused = rpc(port, "aria2.getVersion", secret=None)
        assert refused["error"]["message"] == "Unauthorized"
        wrong = rpc(port, "aria2.getVersion", secret=secret[:-1] + "x")
        assert wrong["error"]["message"] == "Unauthorized"
        assert len(secret) >= 22  # 128 bits in url-safe base64
        assert "local mode" in run.output and "ARIABOT_TELEGRAM_TOKEN" in run.output


def test_rpc_listens_on_loopback_only(tmp_path: Path) -> None:
    with ariabot_run(tmp_path / "data") as run:
        info = run.wait_running()
        sockets = [
            c for c in psutil.Process(info["aria2c_pid"]).net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == info["rpc_port"]
        ]
        assert sockets, "aria2c does not listen on its RPC port"
        assert {c.laddr.ip for c in sockets} <= {"127.0.0.1", "::1"}


def test_secret_files_are_private_and_secret_is_new_each_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secrets = []
    for _ in range(2):
        with ariabot_run(data) as run:
            info = run.wait_running()
            secrets.append(info["rpc_secret"])
            assert _mode(data / "aria2.conf") == 0o600
            assert _mode(data / "runtime.json") == 0o600
            assert _mode(data) == 0o700
            conf = (data / "aria2.conf").read_text()
            assert "rpc-listen-all=false" in conf
            assert "rpc-allow-origin-all=false" in conf
            assert f"stop-with-process={run.process.pid}" in conf
            assert "${" not in conf
            # The secret is in the 0600 file only: never on aria2c's command line.
            cmdline = " ".join(psutil.Process(info["aria2c_pid"]).cmdline())
            assert info["rpc_secret"] not in cmdline
            assert info["rpc_secret"] not in run.output
    assert secrets[0] != secrets[1]


def test_running_to_backoff_when_aria2c_is_killed_and_restarts_with_new_session(
    tmp_path: Path,
) -> None:
    with ariabot_run(tmp_path / "data") as run:
        first = run.wait_running()
        os.kill(first["aria2c_pid"], signal.SIGKILL)
        second = run.wait_running(not_pid=first["aria2c_pid"])
        assert second["session_id"] != first["session_id"]
        answer = rpc(second["rpc_port"], "aria2.getSessionInfo", secret=second["rpc_secret"])
        assert answer["result"]["sessionId"] == second["session_id"]
        assert "RUNNING -> BACKOFF" in run.output


def test_running_to_backoff_when_aria2c_hangs(tmp_path: Path) -> None:
    with ariabot_run(tmp_path / "data") as run:
        first = run.wait_running()
        os.kill(first["aria2c_pid"], signal.SIGSTOP)
        second = run.wait_running(timeout=30, not_pid=first["aria2c_pid"])
        assert "stopped answering" in run.output
        assert not psutil.pid_exists(first["aria2c_pid"]) or (
            psutil.Process(first["aria2c_pid"]).status() == psutil.STATUS_ZOMBIE
        )
        assert rpc(second["rpc_port"], "aria2.getVersion", secret=second["rpc_secret"])["result"]


def _crashing_aria2c(tmp_path: Path) -> tuple[Path, Path]:
    counter = tmp_path / "spawns"
    script = tmp_path / "aria2c"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        if [ "$1" = "--version" ]; then echo "aria2 version 1.36.0"; exit 0; fi
        echo spawn >> {counter}
        echo "Exception: simulated crash" >&2
        exit 1
        """))
    script.chmod(0o755)
    return script, counter


def test_starting_to_fatal_when_aria2c_crashes_every_time(tmp_path: Path) -> None:
    script, counter = _crashing_aria2c(tmp_path)
    run = AriabotRun(tmp_path / "data", {
        "ARIABOT_ARIA2C": str(script), "ARIABOT_RESTART_BURST": "3",
        "ARIABOT_RESTART_WINDOW": "60",
    }).start()
    try:
        started = time.monotonic()
        assert run.wait_exit() == 1
        elapsed = time.monotonic() - started
    finally:
        run.stop()
    spawns = counter.read_text().count("spawn")
    assert spawns == 4  # the first start and 3 restarts; the 4th death is over the burst
    assert "FATAL" in run.output and "simulated crash" in run.output
    # Backoff, not a busy loop: 0.1 + 0.2 + 0.4 s of delays at least.
    assert elapsed >= 0.7


def test_sigterm_saves_session_stops_aria2c_and_exits_zero(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ariabot_run(data) as run:
        info = run.wait_running()
        port, secret = info["rpc_port"], info["rpc_secret"]
        # A paused download so that the saved session has something in it.
        magnet = "magnet:?xt=urn:btih:" + "ab" * 20
        rpc(port, "aria2.addUri", [magnet], {"pause": "true"}, secret=secret)
        run.signal(signal.SIGTERM)
        assert run.wait_exit() == 0
        assert not psutil.pid_exists(info["aria2c_pid"])
        assert "ab" * 20 in (data / "aria2.session").read_text()
        assert not (data / "runtime.json").exists()


def test_killed_ariabot_leaves_no_aria2c_and_next_run_starts_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ariabot_run(data) as run:
        info = run.wait_running()
        run.signal(signal.SIGKILL)
        run.wait_exit()
        # stop-with-process: aria2c notices its owner is gone and exits by itself.
        wait_until(lambda: not psutil.pid_exists(info["aria2c_pid"]), 10, "aria2c to exit")
    with ariabot_run(data) as again:
        fresh = again.wait_running()
        assert fresh["aria2c_pid"] != info["aria2c_pid"]


def test_stale_aria2c_of_a_killed_ariabot_is_stopped_before_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ariabot_run(data) as run:
        info = run.wait_running()
        stale = psutil.Process(info["aria2c_pid"])
        # Freeze aria2c so it cannot notice its owner's death by itself, then kill ariabot.
        stale.suspend()
        run.signal(signal.SIGKILL)
        run.wait_exit()
    stale.resume()
    with ariabot_run(data) as again:
        fresh = again.wait_running()
        assert fresh["aria2c_pid"] != stale.pid
        assert not stale.is_running() or stale.status() == psutil.STATUS_ZOMBIE


def test_second_run_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ariabot_run(data) as run:
        run.wait_running()
        second = AriabotRun(data).start()
        assert second.wait_exit() == 2
        assert "already running" in second.output
        assert run.process.poll() is None


@pytest.mark.parametrize(("name", "value", "key"), [
    ("ARIABOT_MAX_CONCURRENT", "many", "ARIABOT_MAX_CONCURRENT"),
    ("ARIABOT_MAX_CONCURRENT", "0", "ARIABOT_MAX_CONCURRENT"),
    ("ARIABOT_TELEGRAM_API_URL", "ftp://example", "ARIABOT_TELEGRAM_API_URL"),
    ("ARIABOT_ALLOWED_USERS", "12,abc", "ARIABOT_ALLOWED_USERS"),
    ("ARIABOT_TELEGRAM_TOKEN", "not-a-token-but-a-secret", "ARIABOT_TELEGRAM_TOKEN"),
])
def test_invalid_setting_exits_2_naming_the_key(
    tmp_path: Path, name: str, value: str, key: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "run"],
        env={**os.environ, "ARIABOT_DATA_DIR": str(tmp_path), name: value},
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 2
    assert key in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if "TOKEN" in name:
        assert value not in result.stderr


def test_missing_aria2c_exits_2_with_install_hint(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "run"],
        env={**os.environ, "ARIABOT_DATA_DIR": str(tmp_path),
             "ARIABOT_ARIA2C": str(tmp_path / "no-such-aria2c")},
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 2
    assert "apt-get install aria2" in result.stderr


def test_help_and_version_need_no_aria2c_and_show_no_token(tmp_path: Path) -> None:
    token = "123456:" + "S" * 35
    env = {**os.environ, "PATH": str(tmp_path), "ARIABOT_TELEGRAM_TOKEN": token}
    for flag in ("--help", "--version"):
        result = subprocess.run([sys.executable, "-m", "supervisor", flag], env=env,
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0
        assert token not in result.stdout + result.stderr



async def test_running_to_fatal_when_aria2c_keeps_dying_after_its_rpc_came_up(
    tmp_path: Path,
) -> None:
    """aria2c killed with SIGKILL each time it is RUNNING, with a budget of one restart: the
    second death is FATAL. ariabot tells the admin chat, exits 1 with one clear line and no
    traceback."""
    async with FakeTelegramServer() as server:
        run = AriabotRun(tmp_path / "data", {
            "ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN, "ARIABOT_TELEGRAM_API_URL": server.url,
            "ARIABOT_ALLOWED_USERS": "42", "ARIABOT_ADMIN_CHAT": str(ADMIN_CHAT),
            "ARIABOT_RESTART_BURST": "1", "ARIABOT_RESTART_WINDOW": "600",
            "ARIABOT_MIN_UPTIME": "600",
        }).start()
        try:
            killed: list[int] = []
            for _ in range(2):  # the first death is restarted, the second is one too many
                info = await asyncio.to_thread(
                    run.wait_running, 30, killed[-1] if killed else None)
                await server.wait_until(lambda: server.polls_in_flight, timeout=30,
                                        what="the bot polling")
                os.kill(info["aria2c_pid"], signal.SIGKILL)
                killed.append(info["aria2c_pid"])
            code = await asyncio.to_thread(run.wait_exit)
        finally:
            await asyncio.to_thread(run.stop)
        alerts = [m["text"] for m in server.messages(ADMIN_CHAT)]
    output = run.output
    assert code == 1, output
    assert "Traceback" not in output, output
    assert "aria2c RUNNING -> FATAL" in output
    fatal = [text for text in output.splitlines() if "cannot be kept running" in text]
    assert len(fatal) == 1, output
    assert "exited with code -9" in fatal[0] and "died 2 times within 600s" in fatal[0]
    assert any(text.startswith("🛑 aria2c cannot be kept running") and
               "died 2 times" in text for text in alerts), alerts


def _fatal_lines(output: str) -> list[str]:
    return [text for text in output.splitlines() if "cannot be kept running" in text]


def _aria2c_on(data_dir: Path) -> list[psutil.Process]:
    conf = f"--conf-path={data_dir / 'aria2.conf'}"
    return [p for p in psutil.process_iter(["cmdline"]) if conf in (p.info["cmdline"] or [])]


def test_starting_to_fatal_when_the_console_log_cannot_be_opened(tmp_path: Path) -> None:
    """An OSError before aria2c even runs is a failed start: backoff, then FATAL, exit 1.
    (It used to hang ``ariabot run`` for ever.)"""
    data = tmp_path / "data"
    (data / "aria2c.console.log").mkdir(parents=True)  # cannot be opened for writing
    run = AriabotRun(data, {"ARIABOT_RESTART_BURST": "2"}).start()
    try:
        code = run.wait_exit(timeout=20)
    finally:
        run.stop()
    output = run.output
    assert code == 1, output
    assert "Traceback" not in output, output
    assert output.count("STARTING -> BACKOFF: aria2c could not be started: [Errno 21] Is a "
                        "directory") == 2
    [fatal] = _fatal_lines(output)
    assert "aria2c.console.log" in fatal and "died 3 times" in fatal


def test_running_to_fatal_when_runtime_json_cannot_be_written_at_restart(
    tmp_path: Path,
) -> None:
    """runtime.json made unwritable while aria2c runs, then aria2c killed: every restart
    fails to record itself, its aria2c is stopped, and ariabot ends FATAL with exit 1 (it
    used to end with exit 2, which systemd is told never to restart)."""
    data = tmp_path / "data"
    run = AriabotRun(data, {"ARIABOT_RESTART_BURST": "2"}).start()
    try:
        info = run.wait_running()
        (data / "runtime.json").unlink()
        (data / "runtime.json" / "in-the-way").mkdir(parents=True)  # rename onto it fails
        os.kill(info["aria2c_pid"], signal.SIGKILL)
        code = run.wait_exit(timeout=30)
    finally:
        run.stop()
    output = run.output
    assert code == 1, output
    assert "Traceback" not in output, output
    assert output.count("runtime.json cannot be written") >= 2
    [fatal] = _fatal_lines(output)
    assert "runtime.json cannot be written" in fatal and "died 3 times" in fatal
    # The aria2c started for each failed restart was stopped, not left behind.
    assert not _aria2c_on(data)
