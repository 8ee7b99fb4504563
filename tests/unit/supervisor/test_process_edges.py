"""Every legal edge of aria2c's state machine, driven through Aria2Process on fakes.

The supervision code is the real one; aria2c, its RPC, the clock and the sleep are fakes
(:mod:`tests.fakes.supervision`), so timeouts and backoff delays cost no real time. One test
per edge, named ``test_<from>_to_<to>_<why>``; the illegal edges are in
``test_process_illegal_edges.py``, which also checks that no edge lacks its test.
"""

from __future__ import annotations

import asyncio
import errno
import signal
from pathlib import Path

import pytest

from supervisor.process import Aria2Fatal
from supervisor.root import _tell_manager
from supervisor.states import ProcessState, StateChange
from tests.fakes.supervision import Life, Rig, rig

STOPPED, STARTING, RUNNING = ProcessState.STOPPED, ProcessState.STARTING, ProcessState.RUNNING
BACKOFF, STOPPING, FATAL = ProcessState.BACKOFF, ProcessState.STOPPING, ProcessState.FATAL

CRASH = Life(exit_at_start=1)
EAGAIN = Life(spawn_error=BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable"))


def stop_on(target: Rig, state: ProcessState) -> list[asyncio.Task[None]]:
    """Call stop() as soon as ``state`` is entered the first time (the task is returned)."""
    stops: list[asyncio.Task[None]] = []

    def listener(change: StateChange) -> None:
        if change.new is state and not stops:
            stops.append(asyncio.ensure_future(target.process.stop()))

    target.process.subscribe(listener)
    return stops


def gap(target: Rig, old: ProcessState, new: ProcessState, nth: int = 0) -> float:
    """Fake seconds between entering ``old`` and the following move to ``new``."""
    moves = [i for i, change in enumerate(target.changes)
             if change.old is old and change.new is new]
    index = moves[nth]
    entered = max(i for i in range(index) if target.changes[i].new is old)
    return target.times[index] - target.times[entered]


async def test_stopped_to_starting_when_start_is_called(tmp_path: Path) -> None:
    target = rig(tmp_path)
    assert target.process.state is STOPPED and not target.runner.spawns
    await target.process.start()
    try:
        assert target.edges()[0] == (STOPPED, STARTING)
        argv, console = target.runner.spawns[0]
        assert argv == ["/usr/bin/aria2c", f"--conf-path={target.layout.aria2_conf}"]
        assert console == target.layout.aria2_console
        with pytest.raises(RuntimeError, match="already called"):
            await target.process.start()
    finally:
        await target.process.stop()


async def test_starting_to_running_when_rpc_answers(tmp_path: Path) -> None:
    target = rig(tmp_path)
    await target.process.start()
    try:
        assert target.edges() == [(STOPPED, STARTING), (STARTING, RUNNING)]
        child = target.runner.children[0]
        assert target.process.session_id == f"session-{child.pid}"
        assert target.changes[-1].session_id == f"session-{child.pid}"
        runtime = target.layout.runtime.read_text()
        assert '"state": "running"' in runtime and f'"aria2c_pid": {child.pid}' in runtime
    finally:
        await target.process.stop()


async def test_starting_to_backoff_when_aria2c_exits_while_starting(tmp_path: Path) -> None:
    target = rig(tmp_path, CRASH, Life())
    await target.process.start()
    try:
        assert target.edges() == [(STOPPED, STARTING), (STARTING, BACKOFF),
                                  (BACKOFF, STARTING), (STARTING, RUNNING)]
        assert "aria2c exited with code 1 while starting" in target.changes[1].reason
        assert "restarting in 0.2s" in target.changes[1].reason
        assert target.changes[1].restarts == 1
    finally:
        await target.process.stop()


async def test_starting_to_backoff_when_rpc_never_answers_within_start_timeout(
    tmp_path: Path,
) -> None:
    target = rig(tmp_path, Life(answers=False), Life(), start_timeout=15)
    await target.process.start()
    try:
        assert target.edges()[1] == (STARTING, BACKOFF)
        assert "did not answer RPC within 15s" in target.changes[1].reason
        assert gap(target, STARTING, BACKOFF) >= 15
        assert target.runner.children[0].signals == [signal.SIGKILL]
        assert target.process.state is RUNNING
    finally:
        await target.process.stop()


async def test_starting_to_backoff_when_spawn_fails_with_eagain(tmp_path: Path) -> None:
    target = rig(tmp_path, EAGAIN, Life())
    await target.process.start()
    try:
        assert target.edges() == [(STOPPED, STARTING), (STARTING, BACKOFF),
                                  (BACKOFF, STARTING), (STARTING, RUNNING)]
        assert target.changes[1].reason.startswith(
            "aria2c could not be started: [Errno 11] Resource temporarily unavailable")
        assert len(target.runner.children) == 1
    finally:
        await target.process.stop()


async def test_starting_to_backoff_when_runtime_json_cannot_be_written(tmp_path: Path) -> None:
    target = rig(tmp_path / "data")
    # A directory in its place: the atomic rename of runtime.json fails for real.
    (target.layout.runtime / "in-the-way").mkdir(parents=True)

    def clear(change: StateChange) -> None:
        if change.new is BACKOFF:
            (target.layout.runtime / "in-the-way").rmdir()
            target.layout.runtime.rmdir()

    target.process.subscribe(clear)
    await target.process.start()
    try:
        assert target.edges() == [(STOPPED, STARTING), (STARTING, BACKOFF),
                                  (BACKOFF, STARTING), (STARTING, RUNNING)]
        assert "runtime.json cannot be written" in target.changes[1].reason
        # The aria2c that local tools could not have found was stopped, not left running.
        assert target.runner.children[0].signals == [signal.SIGKILL]
    finally:
        await target.process.stop()


async def test_starting_to_stopping_when_stop_is_called_before_rpc_answers(
    tmp_path: Path,
) -> None:
    target = rig(tmp_path, Life(answers=False))
    stops = stop_on(target, STARTING)
    await target.process.start()  # returns: the stop ended supervision
    await stops[0]
    assert target.edges() == [(STOPPED, STARTING), (STARTING, STOPPING), (STOPPING, STOPPED)]
    assert target.runner.children[0].signals == [signal.SIGTERM]
    assert target.rpc.closed


async def test_starting_to_fatal_when_aria2c_crashes_at_every_start(tmp_path: Path) -> None:
    target = rig(tmp_path, CRASH, restart_burst=2)
    with pytest.raises(Aria2Fatal, match="died 3 times within 120s, more than "
                                         "restart_burst=2 allows"):
        await target.process.start()
    assert target.edges()[-1] == (STARTING, FATAL)
    assert len(target.runner.spawns) == 3
    assert target.clock.sleeps.count(0.25) >= 1 and 0.5 in target.clock.sleeps
    assert await target.process.wait() is FATAL
    assert target.rpc.closed


async def test_starting_to_fatal_when_every_spawn_fails_with_eagain(tmp_path: Path) -> None:
    target = rig(tmp_path, EAGAIN, restart_burst=2)
    with pytest.raises(Aria2Fatal, match=r"could not be started: .*Resource temporarily"):
        await target.process.start()  # never hangs
    assert [new for _old, new in target.edges()] == [
        STARTING, BACKOFF, STARTING, BACKOFF, STARTING, FATAL]
    assert not target.runner.children


async def test_running_to_backoff_when_aria2c_dies(tmp_path: Path) -> None:
    target = rig(tmp_path, Life(dies_after=3), Life(), min_uptime=10)
    await target.process.start()
    try:
        await target.until(lambda: len(target.entered(RUNNING)) == 2, "a second RUNNING")
        assert (RUNNING, BACKOFF) in target.edges()
        died = target.entered(BACKOFF)[0]
        assert died.reason == "aria2c exited with code -9; restarting in 0.2s"
        assert gap(target, BACKOFF, STARTING) >= 0.25
        assert target.entered(RUNNING)[1].session_id != target.entered(RUNNING)[0].session_id
    finally:
        await target.process.stop()


async def test_running_to_backoff_without_delay_after_a_stable_life(tmp_path: Path) -> None:
    target = rig(tmp_path, Life(dies_after=60), Life(), min_uptime=10)
    await target.process.start()
    try:
        await target.until(lambda: len(target.entered(RUNNING)) == 2, "a second RUNNING")
        died = target.entered(BACKOFF)[0]
        assert died.old is RUNNING and died.reason.endswith("; restarting now")
        assert gap(target, BACKOFF, STARTING) == 0
    finally:
        await target.process.stop()


async def test_running_to_backoff_when_aria2c_stops_answering(tmp_path: Path) -> None:
    target = rig(tmp_path, Life(stops_answering=True), Life(), health_failures=3,
                 health_interval=5)
    await target.process.start()
    try:
        await target.until(lambda: len(target.entered(RUNNING)) == 2, "a second RUNNING")
        hung = target.entered(BACKOFF)[0]
        assert hung.old is RUNNING
        assert "stopped answering" in hung.reason and "(process is stopped)" in hung.reason
        assert gap(target, RUNNING, BACKOFF) >= 15
        assert target.runner.children[0].signals == [signal.SIGKILL]
    finally:
        await target.process.stop()


async def test_running_to_stopping_when_stop_is_called(tmp_path: Path) -> None:
    target = rig(tmp_path)
    await target.process.start()
    await target.process.stop()
    assert target.edges()[-2:] == [(RUNNING, STOPPING), (STOPPING, STOPPED)]
    assert target.rpc.calls[-1] == "aria2.saveSession"  # saved before SIGTERM
    assert target.runner.children[0].signals == [signal.SIGTERM]
    assert target.rpc.closed
    await target.process.stop()  # a second stop is harmless
    assert target.process.state is STOPPED


class ManagerSpy:
    """What the composition root tells the manager about aria2c."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def aria2_up(self, session_id: str, detail: str) -> None:
        self.told.append(("up", detail))

    def aria2_down(self, detail: str) -> None:
        self.told.append(("down", detail))

    def aria2_fatal(self, detail: str) -> None:
        self.told.append(("fatal", detail))


async def test_running_to_fatal_when_it_dies_after_its_rpc_came_up_with_the_budget_used(
    tmp_path: Path,
) -> None:
    target = rig(tmp_path, Life(dies_after=3), restart_burst=1, min_uptime=10)
    manager = ManagerSpy()
    target.process.subscribe(lambda change: _tell_manager(manager, change))  # type: ignore[arg-type]
    await target.process.start()
    assert await target.process.wait() is FATAL  # no exception: supervision ended cleanly
    assert target.edges() == [(STOPPED, STARTING), (STARTING, RUNNING), (RUNNING, BACKOFF),
                              (BACKOFF, STARTING), (STARTING, RUNNING), (RUNNING, FATAL)]
    reason = target.process.fatal_reason
    assert reason == ("aria2c exited with code -9; gave up: it died 2 times within 120s, "
                      "more than restart_burst=1 allows")
    assert target.changes[-1].reason == reason
    assert manager.told[-1] == ("fatal", reason)  # the admin-chat alert starts here
    assert target.rpc.closed
    await target.process.stop()  # after FATAL: nothing to do
    assert target.process.state is FATAL


async def test_running_to_fatal_even_when_every_life_was_stable(tmp_path: Path) -> None:
    target = rig(tmp_path, Life(dies_after=60), restart_burst=1, min_uptime=10,
                 restart_window=600)
    await target.process.start()
    assert await target.process.wait() is FATAL
    assert target.edges()[-1] == (RUNNING, FATAL)
    assert target.entered(BACKOFF)[0].reason.endswith("restarting now")


async def test_backoff_to_starting_after_a_doubling_delay_capped_at_backoff_max(
    tmp_path: Path,
) -> None:
    target = rig(tmp_path, CRASH, CRASH, CRASH, CRASH, Life(), backoff_initial=0.25,
                 backoff_max=1, restart_burst=10)
    await target.process.start()
    try:
        delays = [gap(target, BACKOFF, STARTING, n) for n in range(4)]
        assert delays == pytest.approx([0.25, 0.5, 1.0, 1.0])
        assert target.process.state is RUNNING
    finally:
        await target.process.stop()


async def test_backoff_to_stopping_when_stop_is_called_during_the_delay(
    tmp_path: Path,
) -> None:
    target = rig(tmp_path, CRASH)
    stops = stop_on(target, BACKOFF)
    await target.process.start()
    await stops[0]
    assert target.edges() == [(STOPPED, STARTING), (STARTING, BACKOFF), (BACKOFF, STOPPING),
                              (STOPPING, STOPPED)]
    assert len(target.runner.spawns) == 1  # no start after the stop


async def test_stopping_to_stopped_with_sigkill_when_aria2c_ignores_sigterm(
    tmp_path: Path,
) -> None:
    target = rig(tmp_path, Life(ignores_sigterm=True), stop_timeout=15)
    await target.process.start()
    await target.process.stop()
    assert target.edges()[-1] == (STOPPING, STOPPED)
    assert target.runner.children[0].signals == [signal.SIGTERM, signal.SIGKILL]
    assert gap(target, STOPPING, STOPPED) >= 15


async def test_start_raises_instead_of_hanging_when_supervision_breaks(tmp_path: Path) -> None:
    target = rig(tmp_path, Life(spawn_error=RuntimeError("a bug in a runner")))
    with pytest.raises(RuntimeError, match="a bug in a runner"):
        await target.process.start()


async def test_running_to_stopping_when_stop_comes_as_a_health_probe_is_answered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A stop whose cancel reaches supervision in the very turn of the loop in which a
    health probe's answer came must stop it, not be swallowed by the probe's time limit
    (``asyncio.wait_for`` on Python 3.11 returns the answer and drops the cancel): the
    supervision then ran on, and the stop waited its whole ``stop_timeout`` for it (a
    15 s stall of every stop, now and then, in CI's runs)."""
    target = rig(tmp_path, stop_timeout=3.0)
    await target.process.start()
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asked = asyncio.Event()
    answer = target.rpc.call

    async def held_probe(method: str, *params: object) -> object:
        if method == "aria2.getVersion" and not gate.done():
            asked.set()
            await gate
        return await answer(method, *params)

    target.rpc.call = held_probe  # type: ignore[method-assign]
    async with asyncio.timeout(10):
        await asked.wait()
    gate.set_result(None)  # the probe's answer, and in the same turn the stop's cancel
    stopping = asyncio.ensure_future(target.process.stop())
    async with asyncio.timeout(10):
        await stopping
    assert "did not stop within" not in caplog.text
    assert target.edges()[-2:] == [(RUNNING, STOPPING), (STOPPING, STOPPED)]
