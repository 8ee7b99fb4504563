"""The WebSocket notification listener on a real aria2c survives its own failures (issue 11,
item 9): a failure inside the listening thread is noticed, logged once, the listener comes
back, and later notifications still arrive."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from manager.aria2.notifications import NotificationListener
from tests.integration.conftest import Engine
from tests.runner import ariabot_run, until
from tests.swarm import Swarm


class FailsOnce(NotificationListener):
    """A listener whose handling of the first notification raises (the injected failure)."""

    failed = False

    def _dispatch(self, message: str | bytes) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("injected: handling a notification failed")
        super()._dispatch(message)


async def test_listener_comes_back_after_a_handler_raises_and_later_notifications_arrive(
    engine: Engine, swarm: Swarm, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="manager.aria2.notifications")
    got: list[tuple[str, str]] = []
    connections: list[float] = []
    loop = asyncio.get_running_loop()
    listener = FailsOnce(engine.rpc.endpoint.ws_url, loop,
                         lambda method, gid: got.append((method, gid)),
                         lambda: connections.append(loop.time()))
    listener.start()
    try:
        await until(lambda: connections, what="the first connection")
        gid = await engine.rpc.call("aria2.addUri", [swarm.dead_magnet("listener")],
                                    {"dir": str(tmp_path / "dl")})
        # onDownloadStart(gid) is the first notification: handling it raises.
        await until(lambda: listener.failed, what="the injected failure")
        await until(lambda: len(connections) >= 2, timeout=20,
                    what="the listener to reconnect after its failure")
        await engine.rpc.call("aria2.forcePause", gid)
        await until(lambda: ("aria2.onDownloadPause", gid) in got, timeout=20,
                    what="a notification after the restart")
        health = listener.health()
        assert health.running and health.connected
        assert health.deaths == 1
        assert health.last_error == "RuntimeError: injected: handling a notification failed"
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "restarting" in errors[0].getMessage()
    finally:
        await asyncio.to_thread(listener.stop)
    assert not listener.health().running


def test_status_and_doctor_show_how_the_listener_of_a_running_ariabot_does(
    tmp_path: Path,
) -> None:
    with ariabot_run(tmp_path / "data") as run:
        run.wait_ready()
        status = subprocess.run([sys.executable, "-m", "supervisor", "status"], env=run.env,
                                capture_output=True, text=True, timeout=60, check=False)
        as_json = subprocess.run([sys.executable, "-m", "supervisor", "status", "--json"],
                                 env=run.env, capture_output=True, text=True, timeout=60,
                                 check=False)
    assert status.returncode == 0, status.stderr
    first, second, *_ = status.stdout.splitlines()
    assert first == "✔ aria2 notifications: connected"
    assert second.startswith("✔ aria2c 1.")
    health = json.loads(as_json.stdout)
    assert health["notifications"] == {"running": True, "connected": True, "deaths": 0,
                                       "last_error": None, "restarting": False}
