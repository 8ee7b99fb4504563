"""Aria2Process in-process: listeners see every state change and aria2's new sessionId."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from supervisor.process import SupervisionPolicy
from supervisor.states import ProcessState, StateChange
from tests.integration.conftest import loopback_settings, prepare_aria2
from tests.runner import until


async def test_listeners_see_restart_with_a_new_session_id(tmp_path: Path) -> None:
    policy = SupervisionPolicy(health_interval=0.2, backoff_initial=0.05, backoff_max=0.1)
    process, _endpoint, _layout = prepare_aria2(loopback_settings(tmp_path), policy)
    changes: list[StateChange] = []
    process.subscribe(changes.append)
    process.subscribe(lambda change: 1 / 0)  # a broken listener must not break the others
    await process.start()
    try:
        first_session = process.session_id
        assert process.state is ProcessState.RUNNING and first_session
        os.kill(process.pid, signal.SIGKILL)
        await until(lambda: len(changes) > 2 and changes[-1].new is ProcessState.RUNNING)
        assert process.session_id != first_session
        assert changes[-1].session_id == process.session_id
        assert [c.new for c in changes] == [
            ProcessState.STARTING, ProcessState.RUNNING, ProcessState.BACKOFF,
            ProcessState.STARTING, ProcessState.RUNNING,
        ]
        assert "exited with code -9" in changes[2].reason
    finally:
        await process.stop()
    assert process.state is ProcessState.STOPPED
    assert changes[-1].old is ProcessState.STOPPING
