"""Aria2Process: spawn aria2c, wait until its RPC answers, watch it, restart it, stop it.

The supervision loop is one tenacity ``AsyncRetrying`` block: an attempt is one life of
aria2c (spawn → STARTING → RUNNING → death), a death raises :class:`Aria2Died`, and tenacity
waits with a doubling delay (BACKOFF) before the next attempt. A life that lasted
``min_uptime`` is a healthy one: its death starts a fresh block, so the delay starts over.
More deaths than ``restart_burst`` within ``restart_window`` seconds is FATAL (systemd's
StartLimitBurst idea): ariabot then gives up so that an outer init system can take over.

A start that fails in the OS (fork EAGAIN, an unwritable console log or ``runtime.json``) is
a death like any other: backoff, then FATAL, never a hang. Every OS call and every wait goes
through the seams of :mod:`supervisor.runner` and the injected clock and sleep, so unit tests
drive each edge of the state machine without real processes or real sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from manager import Aria2Endpoint, Aria2Error, Aria2Rpc
from supervisor.instance import RuntimeInfo, write_runtime
from supervisor.layout import StateLayout
from supervisor.logs import cap_file
from supervisor.policy import RestartWindow, SupervisionPolicy
from supervisor.runner import Child, OsRunner, ProcessRunner, SupervisorRpc
from supervisor.states import LEGAL_TRANSITIONS, InvalidTransition, ProcessState, StateChange

__all__ = [
    "ARIA2_LOG_MAX",
    "Aria2Died",
    "Aria2Fatal",
    "Aria2Process",
    "StateListener",
    "SupervisionPolicy",
]

log = logging.getLogger(__name__)

StateListener = Callable[[StateChange], None]

ARIA2_LOG_MAX = 10 * 1024 * 1024
"""aria2.log cannot be rotated by aria2c: above this size it moves to aria2.log.1 (checked at
every spawn, and at every health probe while aria2c runs)."""


class Aria2Died(Exception):
    """One life of aria2c ended (exit, crash, or hung and killed).

    Attributes:
        reason: what happened, for logs and alerts.
        stable: the life lasted at least ``min_uptime``, so the backoff starts over.
    """

    def __init__(self, reason: str, *, stable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stable = stable


class Aria2Fatal(RuntimeError):
    """aria2c died too often; supervision gave up (state FATAL)."""


class Aria2Process:
    """Owns one aria2c process for the life of ``ariabot run``.

    Parameters:
        binary: the aria2c executable.
        layout: the data dir's files (rendered conf, console log, runtime.json).
        endpoint: the loopback port and secret written into the rendered conf.
        policy: timing rules.
        clock: monotonic clock (injected by tests).
        sleep: every wait of supervision: backoff, start and health polling, stop deadline
            (injected by tests).
        log_max_bytes: the size at which ``aria2.log`` is rotated (see :data:`ARIA2_LOG_MAX`).
        runner: spawns aria2c and reports its process state (default: the real OS).
        rpc: aria2's RPC for readiness, health and saveSession (default: on ``endpoint``).
    """

    def __init__(
        self,
        binary: Path,
        layout: StateLayout,
        endpoint: Aria2Endpoint,
        policy: SupervisionPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        log_max_bytes: int = ARIA2_LOG_MAX,
        runner: ProcessRunner | None = None,
        rpc: SupervisorRpc | None = None,
    ) -> None:
        self.binary = binary
        self.layout = layout
        self.endpoint = endpoint
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._log_max_bytes = log_max_bytes
        self._runner: ProcessRunner = runner or OsRunner()
        self._rpc: SupervisorRpc = rpc or Aria2Rpc(endpoint, timeout=policy.health_timeout,
                                                   workers=2)
        self._state = ProcessState.STOPPED
        self._listeners: list[StateListener] = []
        self._restarts = RestartWindow(policy.restart_burst, policy.restart_window, clock)
        self._process: Child | None = None
        self._session_id: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop_requested = False
        self._settled = asyncio.Event()
        self._fatal_reason = ""
        self.probes = 0
        """Health probes done (passed or failed) over all lives, for tests."""

    # --- observation ---------------------------------------------------------------------

    @property
    def state(self) -> ProcessState:
        """The current state."""
        return self._state

    @property
    def pid(self) -> int | None:
        """The pid of the current aria2c, if one is alive."""
        process = self._process
        return process.pid if process and process.returncode is None else None

    @property
    def fatal_reason(self) -> str:
        """Why supervision gave up (empty unless FATAL)."""
        return self._fatal_reason

    @property
    def session_id(self) -> str | None:
        """aria2's ``sessionId`` of the current life (changes with every start)."""
        return self._session_id

    def subscribe(self, listener: StateListener) -> None:
        """Call ``listener(change)`` on every state change; a failing listener is logged."""
        self._listeners.append(listener)

    def _set_state(self, new: ProcessState, reason: str = "") -> None:
        old = self._state
        if new not in LEGAL_TRANSITIONS[old]:
            raise InvalidTransition(f"aria2c cannot go from {old.name} to {new.name}")
        self._state = new
        change = StateChange(old, new, reason, self._session_id, self._restarts.count())
        level = logging.ERROR if new is ProcessState.FATAL else logging.INFO
        log.log(level, "aria2c %s -> %s%s", old.name, new.name, f": {reason}" if reason else "")
        if new in (ProcessState.RUNNING, ProcessState.FATAL):
            self._settled.set()
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("a listener of aria2c state changes failed; skipped")

    # --- control -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start supervising and return once aria2c answers RPC (or :meth:`stop` ended it).

        Raises:
            Aria2Fatal: aria2c could not be started within the restart limits.
        """
        if self._task is not None:
            raise RuntimeError("Aria2Process.start() was already called")
        task = self._task = asyncio.create_task(self._supervise(), name="aria2c-supervisor")
        settled = asyncio.create_task(self._settled.wait())
        await asyncio.wait({settled, task}, return_when=asyncio.FIRST_COMPLETED)
        settled.cancel()
        if task.done() and not task.cancelled() and self._state is not ProcessState.FATAL:
            task.result()  # supervision failed without settling (a bug): raise it, never hang
        if self._state is ProcessState.FATAL:
            raise Aria2Fatal(self._fatal_reason)

    async def wait(self) -> ProcessState:
        """Wait until supervision ends (FATAL, or after :meth:`stop`) and return the state."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)
        return self._state

    async def stop(self) -> None:
        """Stop aria2c gracefully: save the session, ask it to shut down, kill if it won't."""
        if self._state in (ProcessState.STOPPED, ProcessState.FATAL):
            return
        # Should supervision outlive its cancel (bounded below), the death that the stop
        # causes must not be taken for a crash to restart from.
        self._stop_requested = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # Bounded: a supervision step that does not end on cancel must not hang the stop.
            await asyncio.wait({task}, timeout=self.policy.stop_timeout)
            if not task.done():
                log.warning("aria2c supervision did not stop within %.0fs; stopping anyway",
                            self.policy.stop_timeout)
        if self._state is ProcessState.FATAL:
            return
        self._set_state(ProcessState.STOPPING, "stop requested")
        process = self._process
        if process is not None and process.returncode is None:
            await self._shutdown(process)
        await self._rpc.close()
        self._set_state(ProcessState.STOPPED, "stopped on request")

    async def _shutdown(self, process: Child) -> None:
        """saveSession, then SIGTERM (aria2c saves again and exits in about 1 s; the RPC
        ``aria2.shutdown`` would wait 3 s more), then SIGKILL after ``stop_timeout``."""
        try:
            await self._rpc.call("aria2.saveSession")
        except Aria2Error as error:
            log.warning("aria2c did not save its session on request (%s)", error)
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        exited = asyncio.create_task(process.wait(), name="aria2c-exit")
        if not await self._wait_exit(exited, self.policy.stop_timeout):
            log.warning("aria2c did not exit within %.0fs; killing it", self.policy.stop_timeout)
            await self._kill(process)
        await exited

    # --- supervision ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        policy = self.policy
        while True:
            retrying = AsyncRetrying(
                retry=retry_if_exception(lambda e: isinstance(e, Aria2Died) and not e.stable),
                wait=wait_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max),
                stop=lambda _state: self._stop_requested or self._restarts.exceeded(),
                sleep=self._sleep,
                before_sleep=self._enter_backoff,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._live_once()
            except Aria2Died as died:
                if self._stop_requested:
                    return
                if self._restarts.exceeded():
                    self._fatal_reason = (
                        f"{died.reason}; gave up: it died {self._restarts.count()} times "
                        f"within {policy.restart_window:.0f}s, more than restart_burst="
                        f"{policy.restart_burst} allows"
                    )
                    self._set_state(ProcessState.FATAL, self._fatal_reason)
                    await self._rpc.close()
                    return
                # It had been healthy for a while: restart now, with a fresh backoff.
                self._set_state(ProcessState.BACKOFF, f"{died.reason}; restarting now")

    def _enter_backoff(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self._set_state(ProcessState.BACKOFF, f"{error}; restarting in {delay:.1f}s")

    async def _live_once(self) -> None:
        """One life of aria2c; always ends by raising :class:`Aria2Died`."""
        self._set_state(ProcessState.STARTING)
        born = self._clock()
        try:
            process = await self._spawn()
            # One waiter per life: the loops below poll it instead of starting a new wait.
            exited = asyncio.create_task(process.wait(), name="aria2c-exit")
            try:
                await self._wait_ready(process, exited)
                await self._write_runtime(process, "running")
                self._set_state(ProcessState.RUNNING, f"pid {process.pid}, RPC on port "
                                f"{self.endpoint.port}")
                reason = await self._watch(process, exited)
            finally:
                if not exited.done():
                    exited.cancel()
        except Aria2Died:
            self._restarts.record()
            raise
        self._restarts.record()
        raise Aria2Died(reason, stable=self._clock() - born >= self.policy.min_uptime)

    async def _spawn(self) -> Child:
        """Start aria2c; a start the OS refuses is a death (Aria2Died), like a crash."""
        self._session_id = None
        try:
            if cap_file(self.layout.aria2_log, self._log_max_bytes, in_use=False):
                log.info("aria2.log was larger than %d bytes: moved to aria2.log.1",
                         self._log_max_bytes)
        except OSError as error:
            log.warning("could not rotate %s: %s", self.layout.aria2_log, error)
        argv = [str(self.binary), f"--conf-path={self.layout.aria2_conf}"]
        try:
            process = await self._runner.spawn(argv, self.layout.aria2_console)
        except OSError as error:
            raise Aria2Died(f"aria2c could not be started: {error}") from error
        self._process = process
        await self._write_runtime(process, "starting")
        return process

    async def _write_runtime(self, process: Child, state: str) -> None:
        """Write runtime.json; if it cannot be written, local tools cannot find this aria2c,
        so it is stopped and the start counts as failed."""
        try:
            # Off the loop: the write ends with an fsync.
            await asyncio.to_thread(write_runtime, self.layout, RuntimeInfo(
                ariabot_pid=os.getpid(), aria2c_pid=process.pid, rpc_port=self.endpoint.port,
                rpc_secret=self.endpoint.secret, conf_path=str(self.layout.aria2_conf),
                session_id=self._session_id, state=state,
            ))
        except OSError as error:
            await self._kill(process)
            raise Aria2Died(f"{self.layout.runtime} cannot be written "
                            f"({error.strerror or error}), so the aria2c just started was "
                            "stopped") from error

    def _console_tail(self) -> str:
        try:
            lines = self.layout.aria2_console.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1].strip()}" if lines else ""

    async def _wait_exit(self, exited: asyncio.Task[int], seconds: float) -> bool:
        """Wait until aria2c exits or ``seconds`` pass on the injected sleep; True when it
        exited."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait({exited, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        return exited.done()

    async def _wait_ready(self, process: Child, exited: asyncio.Task[int]) -> None:
        deadline = self._clock() + self.policy.start_timeout
        pause = 0.02
        while True:
            if process.returncode is not None:
                raise Aria2Died(f"aria2c exited with code {process.returncode} while starting"
                                f"{self._console_tail()}")
            try:
                info = await self._rpc.call("aria2.getSessionInfo")
            except Aria2Error:
                pass
            else:
                self._session_id = str(info["sessionId"])
                return
            if self._clock() >= deadline:
                await self._kill(process)
                raise Aria2Died(f"aria2c did not answer RPC within "
                                f"{self.policy.start_timeout:.0f}s of its start")
            await self._wait_exit(exited, pause)
            pause = min(pause * 2, 0.25)

    async def _watch(self, process: Child, exited: asyncio.Task[int]) -> str:
        """Return why this life ended: it exited, or it stopped answering and was killed."""
        failures = 0
        while True:
            if await self._wait_exit(exited, self.policy.health_interval):
                return f"aria2c exited with code {exited.result()}{self._console_tail()}"
            problem = await self._probe(process)
            self.probes += 1
            if problem is None:
                failures = 0
                await self._cap_log()
                continue
            failures += 1
            log.warning("aria2c health probe %d/%d failed: %s", failures,
                        self.policy.health_failures, problem)
            if failures >= self.policy.health_failures:
                await self._kill(process)
                return f"aria2c stopped answering ({problem}) and was killed"

    async def _probe(self, process: Child) -> str | None:
        """One health check: the process is alive and RPC answers in time; None if healthy."""
        status = self._runner.status(process.pid)
        if status is None:
            return "process is gone"
        if status == psutil.STATUS_ZOMBIE:
            return "process is a zombie"
        try:
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for returns an answer that
            # came in the same turn as a cancel, and drops the cancel (the stop's).
            async with asyncio.timeout(self.policy.health_timeout):
                await self._rpc.call("aria2.getVersion")
        except (Aria2Error, TimeoutError) as error:
            return f"RPC did not answer: {error}" + (
                " (process is stopped)" if status == psutil.STATUS_STOPPED else ""
            )
        return None

    async def _cap_log(self) -> None:
        """Keep aria2.log bounded while aria2c writes it (copy, then truncate in place)."""
        try:
            await asyncio.to_thread(cap_file, self.layout.aria2_log, self._log_max_bytes,
                                    in_use=True)
        except OSError as error:
            log.warning("could not rotate %s: %s", self.layout.aria2_log, error)

    async def _kill(self, process: Child) -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        await process.wait()
