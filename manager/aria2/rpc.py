"""The one place that talks JSON-RPC to aria2c: aria2p's wire client, made safe for asyncio.

aria2p is synchronous and opens a new TCP connection per call. Here each worker thread keeps
one ``requests.Session`` (keep-alive), calls run on a small dedicated thread pool so they never
block the event loop nor starve ``asyncio.to_thread`` users, and every foreign error is mapped
to :class:`~manager.errors.Aria2Unavailable` or :class:`~manager.errors.Aria2RpcError`.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aria2p
import requests

from manager.errors import Aria2RpcError, Aria2Unavailable

__all__ = ["Aria2Endpoint", "Aria2Rpc", "RpcFault"]


@dataclass(frozen=True)
class Aria2Endpoint:
    """Where aria2c's RPC listens and the secret it wants; ``repr`` hides the secret."""

    port: int
    secret: str = field(repr=False)
    host: str = "127.0.0.1"

    @property
    def http_url(self) -> str:
        """The JSON-RPC URL."""
        return f"http://{self.host}:{self.port}/jsonrpc"

    @property
    def ws_url(self) -> str:
        """The WebSocket URL that carries aria2's notifications."""
        return f"ws://{self.host}:{self.port}/jsonrpc"


@dataclass(frozen=True)
class RpcFault:
    """A failed entry of a multicall: its slot holds this instead of a result."""

    code: int
    message: str


class _PooledClient(aria2p.Client):
    """aria2p's client with one keep-alive HTTP session per worker thread."""

    def __init__(self, endpoint: Aria2Endpoint, timeout: float) -> None:
        super().__init__(
            host=f"http://{endpoint.host}", port=endpoint.port, secret=endpoint.secret,
            timeout=timeout,
        )
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def post(self, payload: str) -> dict:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._sessions_lock:
                self._sessions.append(session)
        return session.post(self.server, data=payload, timeout=self.timeout).json()

    def close_sessions(self) -> None:
        """Close every thread's keep-alive connection."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()


class Aria2Rpc:
    """Async access to aria2's JSON-RPC methods.

    Parameters:
        endpoint: port and secret of the aria2c to talk to.
        timeout: seconds one call may take before it counts as unanswered.
        workers: threads for concurrent calls (a slow call must not hold up a probe).
    """

    def __init__(self, endpoint: Aria2Endpoint, *, timeout: float = 5.0, workers: int = 4):
        self.endpoint = endpoint
        self._client = _PooledClient(endpoint, timeout)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aria2-rpc")

    async def call(self, method: str, *params: Any) -> Any:
        """Call one ``aria2.*`` or ``system.*`` method; the secret is added for you.

        Raises:
            Aria2Unavailable: no answer within the timeout, or the connection failed.
            Aria2RpcError: aria2 answered with an error.
        """
        return await self._run(self._client.call, method, list(params))

    async def multicall(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send several calls in one HTTP request (``system.multicall``).

        Returns:
            One slot per call: the call's result, or an :class:`RpcFault` when that call failed
            (check each slot; a fault in one does not fail the others).

        Raises:
            Aria2Unavailable: no answer at all.
        """
        if not calls:
            return []
        fresh = [(method, list(params)) for method, params in calls]
        answers = await self._run(self._client.multicall2, fresh)
        results: list[Any] = []
        for answer in answers:
            if isinstance(answer, dict) and "faultCode" in answer:
                results.append(RpcFault(int(answer["faultCode"]), str(answer.get("faultString"))))
            else:
                results.append(answer[0] if isinstance(answer, list) and len(answer) == 1
                               else answer)
        return results

    async def _run(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(function, *args))
        except aria2p.ClientException as error:
            raise Aria2RpcError(error.code, error.message) from None
        except (requests.RequestException, ValueError) as error:
            # ValueError: the answer was not JSON (aria2c dying mid-reply).
            raise Aria2Unavailable(
                f"aria2 did not answer: {type(error).__name__}"
            ) from None
        except RuntimeError as error:
            # The pool was shut down under us: the manager is closing.
            raise Aria2Unavailable("aria2 connection is closed") from error

    async def close(self) -> None:
        """Stop the worker threads and close their connections; later calls raise
        :class:`Aria2Unavailable`. Waits (off the loop) for a call in flight to end."""
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        self._client.close_sessions()
