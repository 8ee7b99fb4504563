"""Fakes for driving :class:`~supervisor.process.Aria2Process` through its state machine.

A unit test scripts the lives of aria2c (crashes at start, never answers, dies after some
seconds, stops answering, ignores SIGTERM, cannot even be spawned) and runs the real
supervision code on a fake clock: its ``sleep`` advances the clock at once, so a 15 s start
timeout or a 30 s backoff costs no real time. Real aria2c behaviour is covered by the
integration tests; these fakes only imitate what supervision looks at: the exit code, the
signals, psutil's status and whether RPC answers.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manager import Aria2Endpoint
from manager.errors import Aria2Unavailable
from supervisor.layout import StateLayout
from supervisor.process import Aria2Process, SupervisionPolicy
from supervisor.states import ProcessState, StateChange

__all__ = ["FakeChild", "FakeClock", "FakeRpc", "FakeRunner", "Life", "Rig", "rig"]

MAX_SLEEPS = 100_000
"""A scenario that sleeps more often than this never ends: fail it instead of spinning."""


@dataclass(frozen=True)
class Life:
    """How one spawned aria2c behaves.

    Attributes:
        spawn_error: the OS refuses the spawn with this error (nothing runs).
        exit_at_start: exits with this code at once, before its RPC answers.
        answers: its RPC answers at all.
        dies_after: exits with -9 once it has lived this many (fake) seconds.
        stops_answering: answers ``getSessionInfo`` once, then no probe (it is "stopped").
        ignores_sigterm: only SIGKILL ends it.
    """

    spawn_error: Exception | None = None
    exit_at_start: int | None = None
    answers: bool = True
    dies_after: float | None = None
    stops_answering: bool = False
    ignores_sigterm: bool = False


class FakeClock:
    """A monotonic clock whose sleep advances it at once (and lets the fakes react)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.runner: FakeRunner | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) > MAX_SLEEPS:
            raise AssertionError("the scenario never settles: fake time ran away")
        self.now += seconds
        if self.runner is not None:
            self.runner.tick(self.now)
        await asyncio.sleep(0)  # a turn of the loop, not a real wait


class FakeChild:
    """A spawned fake aria2c."""

    def __init__(self, pid: int, life: Life, born: float) -> None:
        self.pid = pid
        self.life = life
        self.born = born
        self.returncode: int | None = None
        self.signals: list[int] = []
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def exit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, signum: int) -> None:
        if self.returncode is not None:
            raise ProcessLookupError(self.pid)
        self.signals.append(signum)
        if signum == signal.SIGKILL:
            self.exit(-signal.SIGKILL)
        elif signum == signal.SIGTERM and not self.life.ignores_sigterm:
            self.exit(0)


class FakeRunner:
    """Spawns :class:`FakeChild` ren following a script of lives; the last life repeats."""

    def __init__(self, lives: Sequence[Life], clock: FakeClock) -> None:
        assert lives, "script at least one life"
        self._lives = list(lives)
        self._clock = clock
        self.children: list[FakeChild] = []
        self.spawns: list[tuple[list[str], Path]] = []

    async def spawn(self, argv: Sequence[str], console: Path) -> FakeChild:
        self.spawns.append((list(argv), console))
        life = self._lives.pop(0) if len(self._lives) > 1 else self._lives[0]
        if life.spawn_error is not None:
            raise life.spawn_error
        child = FakeChild(4000 + len(self.spawns), life, self._clock())
        self.children.append(child)
        if life.exit_at_start is not None:
            child.exit(life.exit_at_start)
        return child

    def status(self, pid: int) -> str | None:
        child = next((c for c in self.children if c.pid == pid), None)
        if child is None or child.returncode is not None:
            return None
        return "stopped" if child.life.stops_answering else "sleeping"

    def tick(self, now: float) -> None:
        for child in self.children:
            if child.life.dies_after is not None and now - child.born >= child.life.dies_after:
                child.exit(-signal.SIGKILL)

    @property
    def current(self) -> FakeChild | None:
        return self.children[-1] if self.children else None


class FakeRpc:
    """aria2's RPC as the current fake child would answer it."""

    def __init__(self, runner: FakeRunner) -> None:
        self._runner = runner
        self.calls: list[str] = []
        self.closed = False

    async def call(self, method: str, *params: Any) -> Any:
        self.calls.append(method)
        child = self._runner.current
        if child is None or child.returncode is not None or not child.life.answers:
            raise Aria2Unavailable("connection refused")
        if method == "aria2.getSessionInfo":
            return {"sessionId": f"session-{child.pid}"}
        if child.life.stops_answering:
            raise Aria2Unavailable("timed out")
        return {"version": "1.37.0"} if method == "aria2.getVersion" else "OK"

    async def close(self) -> None:
        self.closed = True


@dataclass
class Rig:
    """An Aria2Process on fakes, and what it did."""

    process: Aria2Process
    clock: FakeClock
    runner: FakeRunner
    rpc: FakeRpc
    layout: StateLayout
    changes: list[StateChange] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, change: StateChange) -> None:
        """The first listener: every change and the fake time it happened at."""
        self.changes.append(change)
        self.times.append(self.clock())
        self.changed.set()
        self.changed = asyncio.Event()

    async def until(self, condition: Callable[[], object], what: str) -> None:
        """Wait for state changes until ``condition()`` holds (10 s of real time at most:
        the fake clock makes every scenario end in milliseconds)."""
        try:
            async with asyncio.timeout(10):
                while not condition():
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"never reached {what}; edges: {self.edges()}") from None

    def edges(self) -> list[tuple[ProcessState, ProcessState]]:
        """Every (old, new) state change, in order."""
        return [(change.old, change.new) for change in self.changes]

    def entered(self, state: ProcessState) -> list[StateChange]:
        return [change for change in self.changes if change.new is state]


def rig(data_dir: Path, *lives: Life, **policy: Any) -> Rig:
    """An Aria2Process on a fake clock, runner and RPC (nothing is started yet).

    Parameters:
        data_dir: where its runtime.json and logs go (created).
        lives: the script of aria2c's lives; the last one repeats (default: one healthy).
        policy: fields of :class:`SupervisionPolicy` to change from its defaults.
    """
    clock = FakeClock()
    runner = FakeRunner(lives or (Life(),), clock)
    clock.runner = runner
    rpc = FakeRpc(runner)
    layout = StateLayout(data_dir)
    layout.create()
    process = Aria2Process(
        Path("/usr/bin/aria2c"), layout, Aria2Endpoint(6800, "secret"),
        SupervisionPolicy(**policy), clock=clock, sleep=clock.sleep, runner=runner, rpc=rpc,
    )
    result = Rig(process, clock, runner, rpc, layout)
    process.subscribe(result.record)
    return result
