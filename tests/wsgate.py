"""A loopback TCP proxy in front of aria2c's RPC port that can cut its WebSockets.

aria2 sends notifications only to WebSocket clients connected at that moment; a client that
reconnects later has lost them for good. To make "the WebSocket is down while something
happens" certain rather than a race, a test routes the manager through this gate::

    gate = WebSocketGate()
    await gate.start()
    engine = await start_engine(settings, via=gate.route)
    gate.close()   # WebSockets cut now and refused from now on; JSON-RPC over HTTP goes on
    ...
    gate.open()    # the manager's listener reconnects

Everything stays on 127.0.0.1. The gate runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib

from manager.aria2.rpc import Aria2Endpoint

__all__ = ["WebSocketGate"]

_LOOPBACK = "127.0.0.1"
_CHUNK = 1 << 16


class WebSocketGate:
    """Forwards every connection to aria2c's port; WebSocket upgrades only while open."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._target = 0
        self._open = True
        self._websockets: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.refused = 0
        """WebSocket connections refused while closed (the listener's reconnect attempts)."""

    @property
    def port(self) -> int:
        """The gate's port on 127.0.0.1."""
        assert self._server is not None, "start() the gate first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def websockets(self) -> int:
        """WebSocket connections forwarded right now."""
        return len(self._websockets)

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._handle, _LOOPBACK, 0)

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def route(self, endpoint: Aria2Endpoint) -> Aria2Endpoint:
        """The endpoint to give the manager instead of aria2c's own (same secret)."""
        self._target = endpoint.port
        return Aria2Endpoint(self.port, endpoint.secret)

    def close(self) -> None:
        """Cut the WebSockets now and refuse new ones until :meth:`open`."""
        self._open = False
        for task in list(self._websockets):
            task.cancel()

    def open(self) -> None:
        """Let WebSockets through again."""
        self._open = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._forward(reader, writer, task)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # cut by close() or stop()
        finally:
            self._tasks.discard(task)
            self._websockets.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       task: asyncio.Task[None]) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        websocket = b"upgrade: websocket" in head.lower()
        if websocket and not self._open:
            self.refused += 1
            return
        up_reader, up_writer = await asyncio.open_connection(_LOOPBACK, self._target)
        if websocket:
            self._websockets.add(task)
        try:
            up_writer.write(head)
            pipes = [asyncio.create_task(_pipe(reader, up_writer)),
                     asyncio.create_task(_pipe(up_reader, writer))]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            up_writer.close()
            with contextlib.suppress(ConnectionError):
                await up_writer.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
