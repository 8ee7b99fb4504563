"""The bot benchmarks' rig: fake Bot API server + real bot + real manager + real aria2c.

Wired the way ``ariabot run`` wires them (the engine from ``tests.integration.conftest``, the
bot built by the composition root's ``bot_config``), in this process so that the benchmark
can timestamp the manager's events. :class:`Aria2Notifications` is the benchmark's own
WebSocket client on aria2c, to timestamp aria2's notifications independently of ariabot.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import websocket

from bot.app import EmbeddedBot, build_application
from manager import Event
from supervisor.root import bot_config
from tests.bench.common import bench_settings
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer
from tests.integration.conftest import Engine, start_engine, stop_engine

__all__ = ["Aria2Notifications", "BotStack", "bot_stack"]


@dataclass
class BotStack:
    """Everything a bot benchmark drives and observes."""

    server: FakeTelegramServer
    engine: Engine
    bot: EmbeddedBot
    events: list[tuple[float, Event]] = field(default_factory=list)
    """Every manager event with the ``time.monotonic()`` it was emitted at."""


@contextlib.asynccontextmanager
async def bot_stack(folder: Path, **env: str) -> AsyncIterator[BotStack]:
    """Start the fake server, aria2c + manager, and the bot; stop all of them after.

    Parameters:
        folder: holds the data dir.
        env: more ``ARIABOT_*`` settings (the allowed users, at least).
    """
    async with FakeTelegramServer() as server:
        settings = bench_settings(folder / "data", ARIABOT_TELEGRAM_TOKEN=DEFAULT_TOKEN,
                                  ARIABOT_TELEGRAM_API_URL=server.url, **env)
        engine = await start_engine(settings)
        try:
            stack = BotStack(server, engine, EmbeddedBot(
                build_application(bot_config(settings), engine.manager), engine.manager))
            # Subscribed before the bot's board: the timestamp is taken before it reacts.
            engine.manager.subscribe(lambda event: stack.events.append((time.monotonic(),
                                                                         event)))
            await stack.bot.start()
            try:
                yield stack
            finally:
                await stack.bot.stop()
        finally:
            await stop_engine(engine)


class Aria2Notifications:
    """A WebSocket client of aria2c that timestamps every notification on arrival.

    Parameters:
        url: ``ws://127.0.0.1:<port>/jsonrpc`` (aria2 notifies every client, secret or not).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[tuple[float, str, str]] = []
        """``(time.monotonic(), method, gid)`` in arrival order."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket: websocket.WebSocket | None = None
        self._thread = threading.Thread(target=self._run, name="bench-aria2-ws", daemon=True)

    def start(self) -> Aria2Notifications:
        """Connect, then receive in a background thread."""
        self._socket = websocket.create_connection(self.url, timeout=10)
        self._socket.settimeout(0.2)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop receiving and close the connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self._socket is not None:
            self._socket.close()

    def first(self, method: str, gid: str) -> float | None:
        """When ``method`` first arrived for ``gid``, or None."""
        with self._lock:
            return next((at for at, m, g in self.received if m == method and g == gid), None)

    def _run(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                message = self._socket.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError):
                return
            at = time.monotonic()
            with contextlib.suppress(ValueError, KeyError, TypeError):
                data = json.loads(message)
                with self._lock:
                    for params in data.get("params", []):
                        self.received.append((at, str(data["method"]), str(params["gid"])))
