"""The state table: every legal edge exists, nothing leaves FATAL."""

from __future__ import annotations

from supervisor.states import LEGAL_TRANSITIONS, ProcessState


def test_every_state_has_an_entry() -> None:
    assert set(LEGAL_TRANSITIONS) == set(ProcessState)


def test_fatal_is_final() -> None:
    assert LEGAL_TRANSITIONS[ProcessState.FATAL] == frozenset()


def test_running_is_reached_only_from_starting() -> None:
    sources = {s for s, targets in LEGAL_TRANSITIONS.items() if ProcessState.RUNNING in targets}
    assert sources == {ProcessState.STARTING}


def test_every_live_state_can_be_stopped() -> None:
    for state in (ProcessState.STARTING, ProcessState.RUNNING, ProcessState.BACKOFF):
        assert ProcessState.STOPPING in LEGAL_TRANSITIONS[state]
