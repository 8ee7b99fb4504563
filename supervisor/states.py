"""The life cycle of the supervised aria2c, after supervisord's process states.

This module depends on nothing else in ariabot so that every other part (and the tests) can
name a state without pulling in the machinery that drives it.

::

    STOPPED ──start──▶ STARTING ──RPC answered──▶ RUNNING ──stop──▶ STOPPING ──▶ STOPPED
                          │  ▲                       │
            died / no RPC │  │ delay over            │ died / hung
                          ▼  │                       ▼
                         BACKOFF ◀───────────────────┘

    STARTING or RUNNING ──died once too often (restart_burst within restart_window)──▶ FATAL

Whether a death is one too many is decided when it happens, so FATAL is entered from the
state aria2c died in (STARTING or RUNNING), never from BACKOFF. STARTING, RUNNING and
BACKOFF can all be stopped. Nothing leaves FATAL.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["LEGAL_TRANSITIONS", "InvalidTransition", "ProcessState", "StateChange"]


class ProcessState(enum.Enum):
    """Where the supervised aria2c is in its life."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    FATAL = "fatal"


LEGAL_TRANSITIONS: Mapping[ProcessState, frozenset[ProcessState]] = MappingProxyType({
    ProcessState.STOPPED: frozenset({ProcessState.STARTING}),
    ProcessState.STARTING: frozenset(
        {ProcessState.RUNNING, ProcessState.BACKOFF, ProcessState.STOPPING, ProcessState.FATAL}
    ),
    ProcessState.RUNNING: frozenset(
        {ProcessState.BACKOFF, ProcessState.STOPPING, ProcessState.FATAL}
    ),
    ProcessState.BACKOFF: frozenset({ProcessState.STARTING, ProcessState.STOPPING}),
    ProcessState.STOPPING: frozenset({ProcessState.STOPPED}),
    ProcessState.FATAL: frozenset(),
})
"""For each state, the states it may move to; anything else is a bug in the supervisor."""


class InvalidTransition(RuntimeError):
    """The supervisor tried a move that :data:`LEGAL_TRANSITIONS` does not allow."""


@dataclass(frozen=True)
class StateChange:
    """What listeners receive on every move of aria2c's state.

    Attributes:
        old: the state before.
        new: the state now.
        reason: why, in words for a log line or an admin alert.
        session_id: aria2's ``sessionId`` once RUNNING; it changes with every aria2c start,
            which is how the manager knows it must reconcile.
        restarts: restarts counted in the current window (for alerts).
    """

    old: ProcessState
    new: ProcessState
    reason: str = ""
    session_id: str | None = None
    restarts: int = 0
