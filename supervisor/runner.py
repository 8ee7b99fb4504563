"""The operating-system side of supervising aria2c, behind protocols that unit tests fake.

:class:`~supervisor.process.Aria2Process` decides *when* to spawn, probe, signal and give
up; the calls that reach the OS (fork/exec, psutil, aria2's RPC) go through these seams so
that every edge of its state machine can be driven with a fake runner, a fake RPC and an
injected clock, without real processes or real sleeps (see ``tests/unit/supervisor``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import psutil

__all__ = ["Child", "OsRunner", "ProcessRunner", "SupervisorRpc"]


class Child(Protocol):
    """What supervision needs of a spawned process (:class:`asyncio.subprocess.Process`)."""

    @property
    def pid(self) -> int:
        """The process id."""
        ...

    @property
    def returncode(self) -> int | None:
        """The exit code once it ended (negative: killed by that signal), else None."""
        ...

    async def wait(self) -> int:
        """Wait until it ends; return its exit code."""
        ...

    def send_signal(self, signum: int) -> None:
        """Send ``signum``; raises ProcessLookupError when it is already gone."""
        ...


class ProcessRunner(Protocol):
    """Spawns processes and reports their state."""

    async def spawn(self, argv: Sequence[str], console: Path) -> Child:
        """Start ``argv`` with stdout and stderr going to ``console`` (truncated first).

        Raises:
            OSError: the console file cannot be written, or the fork/exec failed (EAGAIN,
                ENOENT, EACCES...).
        """
        ...

    def status(self, pid: int) -> str | None:
        """psutil's status of ``pid`` (``"zombie"``, ``"stopped"``...); None when gone."""
        ...


class SupervisorRpc(Protocol):
    """The two RPC operations supervision uses (:class:`manager.aria2.rpc.Aria2Rpc`)."""

    async def call(self, method: str, *params: Any) -> Any:
        """One call; raises :class:`manager.errors.Aria2Error` when unanswered or refused."""
        ...

    async def close(self) -> None:
        """Release the connections and worker threads."""
        ...


class OsRunner:
    """The real runner: asyncio subprocesses and psutil."""

    async def spawn(self, argv: Sequence[str], console: Path) -> Child:
        """See :meth:`ProcessRunner.spawn`."""
        with console.open("wb") as output:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                # Its own process group: a Ctrl-C at the terminal reaches ariabot only,
                # which then stops aria2c in order (session saved).
                start_new_session=True,
            )

    def status(self, pid: int) -> str | None:
        """See :meth:`ProcessRunner.status`."""
        try:
            return str(psutil.Process(pid).status())
        except psutil.NoSuchProcess:
            return None
