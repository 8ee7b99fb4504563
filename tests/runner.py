"""Run the real ``ariabot`` command as a child process, the way a user or systemd does.

Tests talk to it the way local tools do: through ``<data dir>/runtime.json`` and aria2's RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil
import requests

from tests.swarm import free_listen_port

T = TypeVar("T")

FAST_SUPERVISION = {
    # Loopback only: nothing may leave the machine in tests.
    "ARIABOT_ENABLE_DHT": "false",
    "ARIABOT_HEALTH_INTERVAL": "0.5",
    "ARIABOT_HEALTH_TIMEOUT": "1",
    "ARIABOT_HEALTH_FAILURES": "2",
    "ARIABOT_BACKOFF_INITIAL": "0.1",
    "ARIABOT_BACKOFF_MAX": "0.5",
    "ARIABOT_MIN_UPTIME": "2",
    "ARIABOT_STOP_TIMEOUT": "5",
}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], T], timeout: float = 15.0, what: str = "condition",
               describe: Callable[[], str] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds,
    saying what ``describe()`` tells about the state it was stuck in."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)


async def until(condition: Callable[[], object], timeout: float = 15.0,
                what: str = "condition") -> None:
    """Async twin of :func:`wait_until` for tests that run inside the event loop."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def rpc(port: int, method: str, *params: Any, secret: str | None, timeout: float = 5) -> Any:
    """One JSON-RPC call to aria2 on loopback; returns the decoded answer (result or error)."""
    args = ([f"token:{secret}"] if secret is not None else []) + list(params)
    answer = requests.post(
        f"http://127.0.0.1:{port}/jsonrpc",
        json={"jsonrpc": "2.0", "id": "t", "method": method, "params": args},
        timeout=timeout,
    )
    return answer.json()


class AriabotRun:
    """``ariabot run`` on a data dir, with its output in a log file for assertions."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None,
                 args: tuple[str, ...] = (), module: str = "supervisor") -> None:
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}-ariabot-{time.monotonic_ns()}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARIABOT_")},
            **FAST_SUPERVISION,
            "ARIABOT_DATA_DIR": str(data_dir),
            "ARIABOT_LISTEN_PORT": str(free_listen_port()),
            **(env or {}),
        }
        self.args = args
        self.module = module  # run as ``python -m module`` (a benchmark's wrapper of it)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AriabotRun:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args, "run"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        return self

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def runtime(self) -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError):
            return json.loads((self.data_dir / "runtime.json").read_text())
        return None

    def wait_running(self, timeout: float = 20, not_pid: int | None = None) -> dict[str, Any]:
        """Wait for runtime.json to say RUNNING (with an aria2c pid other than ``not_pid``)."""
        def running() -> dict[str, Any] | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"ariabot exited with {self.process.returncode}:\n"
                                     f"{self.output}")
            info = self.runtime()
            if (info and info["state"] == "running" and info["aria2c_pid"] != not_pid
                    and info["ariabot_pid"] == self.process.pid):
                return info
            return None
        return wait_until(running, timeout, "ariabot to report aria2c running")

    def wait_ready(self, timeout: float = 20) -> dict[str, Any]:
        """Wait until local commands can reach it: aria2c running and the control socket up
        (answering: the file a killed run left does not count), which comes after the
        manager's start and its reconcile."""
        info = self.wait_running(timeout)
        wait_until(self._control_answers, timeout, "the control socket")
        return info

    def _control_answers(self) -> bool:
        # Through the folder's descriptor: a deep data dir's socket path does not fit in an
        # AF_UNIX address (supervisor.control does the same).
        folder = os.open(self.data_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(f"/proc/self/fd/{folder}/control.sock")
        except OSError:
            return False
        finally:
            os.close(folder)
        return True

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"ariabot did not exit:\n{self.output}") from None

    def stop(self) -> None:
        """Stop it whatever state it is in (test teardown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        # A test that killed ariabot may leave its aria2c behind for a moment: never leak it.
        info = self.runtime()
        if info and info.get("aria2c_pid"):
            with contextlib.suppress(psutil.Error):
                child = psutil.Process(info["aria2c_pid"])
                if f"--conf-path={info['conf_path']}" in child.cmdline():
                    child.kill()


@contextlib.contextmanager
def ariabot_run(data_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[AriabotRun]:
    """Start ``ariabot run`` and make sure it is gone afterwards."""
    run = AriabotRun(data_dir, env).start()
    try:
        yield run
    finally:
        run.stop()
