"""One ariabot per data dir: the instance lock, runtime.json, and a stale aria2c's removal.

``runtime.json`` (mode 0600) tells local tools how to reach this instance's aria2c (port,
secret, pids, sessionId). After a ``kill -9`` of ariabot it is also how the next start finds
the aria2c it left behind: only a process whose pid, executable name and ``--conf-path`` all
match is ever stopped, so a recycled pid never costs an innocent process its life.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import psutil

from supervisor.layout import StateLayout, write_private

__all__ = [
    "AlreadyRunning",
    "InstanceLock",
    "RuntimeInfo",
    "find_stale_aria2c",
    "lock_holder",
    "read_runtime",
    "stop_stale_aria2c",
    "write_runtime",
]

log = logging.getLogger(__name__)


class AlreadyRunning(RuntimeError):
    """Another ``ariabot run`` holds this data dir."""


class InstanceLock:
    """An exclusive ``flock`` on ``<data dir>/ariabot.lock``, held for the life of the run.

    The kernel drops the lock when the process dies, however it dies, so a crash never
    leaves a lock behind that a human has to delete.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`AlreadyRunning` naming the holder's pid."""
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunning(
                f"another ariabot (pid {holder}) is already running on {self.path.parent}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def lock_holder(path: Path) -> int | None:
    """The pid of the process holding the instance lock at ``path``, or ``None`` if free.

    Reads ``/proc/locks`` (Linux), so looking never takes the lock: a probe that took it,
    even for a moment, could make an ``ariabot run`` starting at that moment refuse to run.
    Where ``/proc/locks`` cannot be read, it falls back to such a probe (released at once);
    the pid is then the one written in the lock file.
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    try:
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return _probe_lock(path)
    # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2146324 0 EOF" (waiters have "->" after "1:").
    inode = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
            with contextlib.suppress(ValueError):
                return int(fields[4])
            return 0
    return None


def _probe_lock(path: Path) -> int | None:
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


@dataclass(frozen=True)
class RuntimeInfo:
    """What ``runtime.json`` holds."""

    ariabot_pid: int
    aria2c_pid: int | None
    rpc_port: int
    rpc_secret: str
    conf_path: str
    session_id: str | None = None
    state: str = "starting"

    def __repr__(self) -> str:
        return (
            f"RuntimeInfo(ariabot_pid={self.ariabot_pid}, aria2c_pid={self.aria2c_pid}, "
            f"rpc_port={self.rpc_port}, state={self.state!r})"
        )


def write_runtime(layout: StateLayout, info: RuntimeInfo) -> None:
    """Write ``runtime.json`` atomically with mode 0600 (it holds the RPC secret)."""
    write_private(layout.runtime, json.dumps(asdict(info), indent=2) + "\n")


def read_runtime(layout: StateLayout) -> RuntimeInfo | None:
    """Read ``runtime.json``; ``None`` when absent or unreadable (treated as no instance)."""
    try:
        data = json.loads(layout.runtime.read_text(encoding="utf-8"))
        return RuntimeInfo(**data)
    except (OSError, ValueError, TypeError):
        return None


def _is_our_aria2c(process: psutil.Process, conf_path: str) -> bool:
    with contextlib.suppress(psutil.Error):
        cmdline = process.cmdline()
        return bool(cmdline) and Path(cmdline[0]).name.startswith("aria2c") and (
            f"--conf-path={conf_path}" in cmdline
        )
    return False


def find_stale_aria2c(layout: StateLayout) -> psutil.Process | None:
    """The aria2c that ``runtime.json`` names, if it still runs with this data dir's conf.

    Meaningful only when no ariabot holds the lock (see :func:`lock_holder`): then such an
    aria2c was left behind by an ariabot that was killed.
    """
    info = read_runtime(layout)
    if info is None or info.aria2c_pid is None:
        return None
    try:
        process = psutil.Process(info.aria2c_pid)
    except psutil.Error:
        return None
    return process if _is_our_aria2c(process, info.conf_path) else None


def stop_stale_aria2c(layout: StateLayout, timeout: float = 10.0) -> int | None:
    """Stop the aria2c a killed ariabot left running on this data dir, if there is one.

    Call only while holding the :class:`InstanceLock`: then the ariabot that started it is
    gone. SIGTERM first (aria2c saves its session), SIGKILL after ``timeout``.

    Returns:
        The pid that was stopped, or ``None`` when there was nothing to stop.
    """
    process = find_stale_aria2c(layout)
    if process is None:
        return None
    log.warning("stopping aria2c pid %d left behind by a previous ariabot", process.pid)
    with contextlib.suppress(psutil.NoSuchProcess):
        process.terminate()
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.pid
