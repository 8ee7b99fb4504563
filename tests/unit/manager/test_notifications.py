"""NotificationListener: malformed messages, failures of its own thread, restart backoff.

aria2 never sends malformed notifications, so they come from a small aiohttp WebSocket server
on 127.0.0.1; the listener's real failures on a real aria2c are in
tests/integration/test_listener.py. The restart timing uses an injected clock and sleep.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from manager.aria2.notifications import ListenerHealth, NotificationListener
from tests.runner import until

GOOD = {"jsonrpc": "2.0", "method": "aria2.onDownloadStart", "params": [{"gid": "00aa"}]}


@pytest.fixture
async def ws_server() -> AsyncIterator[tuple[str, asyncio.Queue[str]]]:
    """A WebSocket server that sends each text put on the queue to every client."""
    outbox: asyncio.Queue[str] = asyncio.Queue()
    clients: list[web.WebSocketResponse] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        clients.append(socket)
        async for _ in socket:  # until the client goes
            pass
        clients.remove(socket)
        return socket

    async def pump() -> None:
        while True:
            text = await outbox.get()
            for socket in list(clients):
                await socket.send_str(text)

    app = web.Application()
    app.router.add_get("/jsonrpc", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    pumping = asyncio.create_task(pump())
    try:
        yield f"ws://127.0.0.1:{port}/jsonrpc", outbox
    finally:
        pumping.cancel()
        await runner.cleanup()


async def test_malformed_notifications_are_ignored_and_later_ones_arrive(
    ws_server: tuple[str, asyncio.Queue[str]], caplog: pytest.LogCaptureFixture
) -> None:
    url, outbox = ws_server
    got: list[tuple[str, str]] = []
    connected = threading.Event()
    listener = NotificationListener(url, asyncio.get_running_loop(),
                                    lambda method, gid: got.append((method, gid)),
                                    connected.set)
    listener.start()
    try:
        await until(lambda: listener.health().connected, what="the connection")
        for bad in (
            {"method": ["aria2.onDownloadStart"], "params": [{"gid": "1"}]},  # unhashable
            {"method": {"a": 1}, "params": [{"gid": "1"}]},
            {"method": "aria2.onDownloadStart", "params": [{"gid": ["1"]}]},  # gid not text
            {"method": "aria2.onDownloadStart", "params": {"gid": "1"}},
            [1, 2, 3],
        ):
            await outbox.put(json.dumps(bad))
        await outbox.put("[" * 100_000)  # json.loads raises RecursionError on this
        await outbox.put("\x00 not json")
        await outbox.put(json.dumps(GOOD))
        await until(lambda: got, what="the good notification")
        assert got == [("aria2.onDownloadStart", "00aa")]
        assert listener.health() == ListenerHealth(running=True, connected=True, deaths=0,
                                                   last_error=None, restarting=False)
    finally:
        await asyncio.to_thread(listener.stop)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted(NotificationListener):
    """A listener whose connections follow a script instead of opening sockets.

    Each entry is how long the connection "lasts" on the injected clock before it fails
    with an unexpected error; after the script, it waits until stopped.
    """

    def __init__(self, script: list[float], clock: Clock, slept: list[float]) -> None:
        loop = asyncio.new_event_loop()
        loop.close()  # nothing is posted to it: the scripted sessions never connect
        self.script = list(script)
        self.clock = clock

        def sleep(seconds: float) -> bool:
            slept.append(seconds)
            return self._stop.is_set()

        super().__init__("ws://127.0.0.1:9/jsonrpc", loop, lambda m, g: None, lambda: None,
                         clock=clock, sleep=sleep)
        self.finished = threading.Event()

    def _session(self) -> None:
        if not self.script:
            self.finished.set()
            self._stop.wait()
            return
        self.clock.now += self.script.pop(0)
        raise ValueError(f"boom {len(self.script)}")


def test_unexpected_failures_restart_with_growing_backoff_reset_after_a_healthy_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="manager.aria2.notifications")
    slept: list[float] = []
    # Four quick deaths, then one after a long healthy run, then a quick one again.
    listener = Scripted([0, 0, 0, 0, 3600, 0], Clock(), slept)
    listener.start()
    assert listener.finished.wait(10)
    health = listener.health()
    listener.stop()
    assert slept == [0.5, 1.0, 2.0, 4.0, 0.5, 1.0]
    assert health.deaths == 6 and health.running and not health.restarting
    assert health.last_error == "ValueError: boom 0"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 6  # once per death, each with its traceback
    assert all(r.exc_info for r in errors)
    assert "restarting it in 0.5 s" in errors[0].getMessage()
    assert not listener.health().running


def test_backoff_is_capped() -> None:
    slept: list[float] = []
    listener = Scripted([0] * 12, Clock(), slept)
    listener.start()
    assert listener.finished.wait(10)
    listener.stop()
    assert max(slept) == 30.0 and slept[-3:] == [30.0, 30.0, 30.0]


def test_health_before_start_and_after_stop() -> None:
    listener = Scripted([], Clock(), [])
    assert listener.health() == ListenerHealth(running=False, connected=False, deaths=0,
                                               last_error=None, restarting=False)
    listener.start()
    assert listener.finished.wait(10)
    assert listener.health().running
    listener.stop()
    assert not listener.health().running
