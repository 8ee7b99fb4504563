"""Every illegal edge of aria2c's state machine is refused, and every edge has a test.

Each illegal move is tried on a real Aria2Process (on the fakes of
:mod:`tests.fakes.supervision`) at the moment a scenario has brought it into the source
state: the move raises InvalidTransition, the state stays, no listener hears of it, and
supervision carries on as if nothing happened.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from supervisor.process import Aria2Fatal
from supervisor.states import LEGAL_TRANSITIONS, InvalidTransition, ProcessState, StateChange
from tests.fakes.supervision import Life, rig
from tests.unit.supervisor import test_process_edges

STOPPED, STARTING, RUNNING = ProcessState.STOPPED, ProcessState.STARTING, ProcessState.RUNNING
BACKOFF, STOPPING, FATAL = ProcessState.BACKOFF, ProcessState.STOPPING, ProcessState.FATAL


@dataclass(frozen=True)
class Scenario:
    """A run of Aria2Process that passes through one state."""

    lives: tuple[Life, ...] = (Life(),)
    policy: dict[str, Any] = field(default_factory=dict)


SCENARIOS = {
    STOPPED: Scenario(),
    STARTING: Scenario(),
    RUNNING: Scenario(),
    BACKOFF: Scenario((Life(exit_at_start=1), Life())),
    STOPPING: Scenario(),
    FATAL: Scenario((Life(exit_at_start=1),), {"restart_burst": 1}),
}


async def refused(tmp_path: Path, old: ProcessState, new: ProcessState) -> None:
    """Bring an Aria2Process into ``old``, try ``new`` there, and check it was refused."""
    scenario = SCENARIOS[old]
    target = rig(tmp_path, *scenario.lives, **scenario.policy)
    outcomes: list[tuple[str, ProcessState]] = []

    def attempt() -> None:
        try:
            target.process._set_state(new, "an illegal move")
        except InvalidTransition as error:
            outcomes.append((str(error), target.process.state))
        else:
            outcomes.append(("allowed", target.process.state))

    def on_change(change: StateChange) -> None:
        if change.new is old and not outcomes:
            attempt()

    target.process.subscribe(on_change)
    if old is STOPPED:
        attempt()
    if old is FATAL:
        with pytest.raises(Aria2Fatal):
            await target.process.start()
    else:
        await target.process.start()
        await target.process.stop()
    assert outcomes == [(f"aria2c cannot go from {old.name} to {new.name}", old)]
    assert (old, new) not in target.edges(), "a listener heard of the refused move"
    # Supervision went on undisturbed: it ended where the scenario ends.
    assert target.process.state is (FATAL if old is FATAL else STOPPED)


def _edge_tests(module: object) -> list[str]:
    return [name for name in dir(module) if name.startswith("test_")]


def test_every_edge_of_the_state_machine_has_its_own_test() -> None:
    legal_tests = _edge_tests(test_process_edges)
    illegal_tests = _edge_tests(sys.modules[__name__])
    for old in ProcessState:
        for new in ProcessState:
            prefix = f"test_{old.value}_to_{new.value}_"
            if new in LEGAL_TRANSITIONS[old]:
                assert any(n.startswith(prefix) for n in legal_tests), f"no {prefix}* test"
            else:
                assert [n for n in illegal_tests if n.startswith(prefix)], f"no {prefix}*"


async def test_stopped_to_stopped_is_refused_as_it_is_already_stopped(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPED, STOPPED)


async def test_stopped_to_running_is_refused_as_nothing_was_started(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPED, RUNNING)


async def test_stopped_to_backoff_is_refused_as_nothing_has_died(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPED, BACKOFF)


async def test_stopped_to_stopping_is_refused_as_there_is_nothing_to_stop(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPED, STOPPING)


async def test_stopped_to_fatal_is_refused_as_nothing_has_died(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPED, FATAL)


async def test_starting_to_starting_is_refused_as_it_is_already_starting(tmp_path: Path) -> None:
    await refused(tmp_path, STARTING, STARTING)


async def test_starting_to_stopped_is_refused_as_a_stop_goes_through_stopping(
    tmp_path: Path,
) -> None:
    await refused(tmp_path, STARTING, STOPPED)


async def test_running_to_running_is_refused_as_it_is_already_running(tmp_path: Path) -> None:
    await refused(tmp_path, RUNNING, RUNNING)


async def test_running_to_starting_is_refused_as_a_restart_goes_through_backoff(
    tmp_path: Path,
) -> None:
    await refused(tmp_path, RUNNING, STARTING)


async def test_running_to_stopped_is_refused_as_a_stop_goes_through_stopping(
    tmp_path: Path,
) -> None:
    await refused(tmp_path, RUNNING, STOPPED)


async def test_backoff_to_backoff_is_refused_as_it_is_already_waiting(tmp_path: Path) -> None:
    await refused(tmp_path, BACKOFF, BACKOFF)


async def test_backoff_to_running_is_refused_as_it_must_be_started_first(tmp_path: Path) -> None:
    await refused(tmp_path, BACKOFF, RUNNING)


async def test_backoff_to_stopped_is_refused_as_a_stop_goes_through_stopping(
    tmp_path: Path,
) -> None:
    await refused(tmp_path, BACKOFF, STOPPED)


async def test_backoff_to_fatal_is_refused_as_fatal_is_decided_when_it_dies(tmp_path: Path) -> None:
    await refused(tmp_path, BACKOFF, FATAL)


async def test_stopping_to_stopping_is_refused_as_it_is_already_stopping(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPING, STOPPING)


async def test_stopping_to_starting_is_refused_as_a_stop_is_not_undone(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPING, STARTING)


async def test_stopping_to_running_is_refused_as_a_stop_is_not_undone(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPING, RUNNING)


async def test_stopping_to_backoff_is_refused_as_a_stop_is_not_undone(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPING, BACKOFF)


async def test_stopping_to_fatal_is_refused_as_a_stop_is_not_a_death(tmp_path: Path) -> None:
    await refused(tmp_path, STOPPING, FATAL)


async def test_fatal_to_stopped_is_refused_as_fatal_is_final(tmp_path: Path) -> None:
    await refused(tmp_path, FATAL, STOPPED)


async def test_fatal_to_starting_is_refused_as_fatal_is_final(tmp_path: Path) -> None:
    await refused(tmp_path, FATAL, STARTING)


async def test_fatal_to_running_is_refused_as_fatal_is_final(tmp_path: Path) -> None:
    await refused(tmp_path, FATAL, RUNNING)


async def test_fatal_to_backoff_is_refused_as_fatal_is_final(tmp_path: Path) -> None:
    await refused(tmp_path, FATAL, BACKOFF)


async def test_fatal_to_stopping_is_refused_as_fatal_is_final(tmp_path: Path) -> None:
    await refused(tmp_path, FATAL, STOPPING)


async def test_fatal_to_fatal_is_refused_as_fatal_is_final(tmp_path: Path) -> None:
    await refused(tmp_path, FATAL, FATAL)
