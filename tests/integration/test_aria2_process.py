"""Aria2Process in-process: listeners see every state change and aria2's new sessionId."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from manager.aria2rpc import Aria2Endpoint
from supervisor.config import load_settings
from supervisor.layout import StateLayout
from supervisor.process import Aria2Process, SupervisionPolicy
from supervisor.render import new_secret, pick_free_port, render_config
from supervisor.states import ProcessState, StateChange
from tests.runner import free_port, until


async def test_listeners_see_restart_with_a_new_session_id(tmp_path: Path) -> None:
    settings = load_settings(None, {
        "ARIABOT_DATA_DIR": str(tmp_path), "ARIABOT_ENABLE_DHT": "false",
        "ARIABOT_LISTEN_PORT": str(free_port()),
    })
    layout = StateLayout(tmp_path)
    layout.create()
    endpoint = Aria2Endpoint(pick_free_port(), new_secret())
    render_config(settings, layout, port=endpoint.port, secret=endpoint.secret)
    aria2c = shutil.which("aria2c")
    assert aria2c, "aria2c must be installed (./setup.sh test installs it)"
    policy = SupervisionPolicy(health_interval=0.2, backoff_initial=0.05, backoff_max=0.1)
    process = Aria2Process(Path(aria2c), layout, endpoint, policy)
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
