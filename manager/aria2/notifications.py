"""aria2's WebSocket notifications, delivered to the event loop, reconnecting for ever.

aria2p's own listener ends silently when the connection drops and dies with its callbacks.
This one runs in a daemon thread, hands every notification to the event loop with
``call_soon_threadsafe`` (the thread never runs manager code), and reconnects with
tenacity's exponential backoff. Notifications sent while it was disconnected are lost for
good, so ``on_connected`` fires after every (re)connection: that is the manager's cue to
reconcile from ``tellActive``/``tellWaiting``/``tellStopped``.

A failure that is not a disconnect (a bug, a message nobody foresaw) must not end the
thread silently, as it did: it is logged at ERROR with its traceback, counted, and the
listener starts again after a growing delay (0.5 s doubling to 30 s, back to 0.5 s after a
minute without failure). :meth:`NotificationListener.health` says how it is doing, for
``ariabot status`` and ``ariabot doctor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import websocket
from tenacity import (
    Retrying,
    retry_if_exception_type,
    sleep_using_event,
    stop_when_event_set,
    wait_exponential,
)

__all__ = ["NOTIFICATIONS", "ListenerHealth", "NotificationListener"]

log = logging.getLogger(__name__)

NOTIFICATIONS = frozenset({
    "aria2.onDownloadStart",
    "aria2.onDownloadPause",
    "aria2.onDownloadStop",
    "aria2.onDownloadComplete",
    "aria2.onDownloadError",
    "aria2.onBtDownloadComplete",
})

_RECV_TIMEOUT = 0.5
"""How often the receiving thread checks whether it was asked to stop (s)."""
_RESTART_FIRST = 0.5
"""Delay before the first restart after an unexpected failure (s); it doubles each time."""
_RESTART_MAX = 30.0
"""Longest delay between two restarts (s)."""
_HEALTHY_AFTER = 60.0
"""A run this long without failure resets the restart delay (s)."""


@dataclass(frozen=True)
class ListenerHealth:
    """How the notification listener is doing.

    Attributes:
        running: its thread is alive (False before start and after stop).
        connected: it is connected to aria2 now.
        deaths: unexpected failures since it started (each was logged and restarted).
        last_error: the last of them, ``"Type: message"``; None when there was none.
        restarting: it is waiting to start again after a failure.
    """

    running: bool
    connected: bool
    deaths: int
    last_error: str | None
    restarting: bool


class _Disconnected(Exception):
    """The WebSocket could not be opened or was closed; try again."""


class NotificationListener:
    """Listen to aria2's notifications on ``url`` from a background thread.

    Parameters:
        url: ``ws://127.0.0.1:<port>/jsonrpc``.
        loop: the event loop that gets the callbacks.
        on_notification: ``(method, gid)`` for each notification, run on the loop.
        on_connected: run on the loop after each successful (re)connection.
        on_disconnected: run on the loop when the connection is lost.
        clock: monotonic clock (injected by tests).
        sleep: waits between restarts; returns early when :meth:`stop` is called (the
            default waits on the stop event; injected by tests).
    """

    def __init__(
        self,
        url: str,
        loop: asyncio.AbstractEventLoop,
        on_notification: Callable[[str, str], None],
        on_connected: Callable[[], None],
        on_disconnected: Callable[[], None] = lambda: None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.url = url
        self._loop = loop
        self._on_notification = on_notification
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._stop = threading.Event()
        self._clock = clock
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._deaths = 0
        self._last_error: str | None = None
        self._restarting = False
        self._thread = threading.Thread(target=self._run, name="aria2-notifications",
                                        daemon=True)
        self._connected = threading.Event()

    def start(self) -> None:
        """Start the listening thread."""
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the thread to end and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def health(self) -> ListenerHealth:
        """A snapshot of the listener's state (safe from any thread)."""
        return ListenerHealth(
            running=self._thread.is_alive(),
            connected=self._connected.is_set(),
            deaths=self._deaths,
            last_error=self._last_error,
            restarting=self._restarting,
        )

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        # RuntimeError: the loop closed between the check and the call.
        if not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(callback, *args)

    def _run(self) -> None:
        """Listen until stopped; restart after any failure that is not a disconnect."""
        streak = 0
        while not self._stop.is_set():
            began = self._clock()
            try:
                self._listen()
            except Exception as error:
                if self._clock() - began >= _HEALTHY_AFTER:
                    streak = 0
                delay = min(_RESTART_MAX, _RESTART_FIRST * 2**streak)
                streak += 1
                self._deaths += 1
                self._last_error = f"{type(error).__name__}: {error}"[:300]
                self._restarting = True
                log.error("the aria2 notification listener failed (%s); restarting it in "
                          "%.1f s", self._last_error, delay, exc_info=True)
                self._sleep(delay)
                self._restarting = False
        log.debug("notification listener stopped")

    def _listen(self) -> None:
        """Connect and reconnect (with backoff) until stopped; other failures propagate."""
        retrying = Retrying(
            retry=retry_if_exception_type(_Disconnected),
            wait=wait_exponential(multiplier=0.1, max=2.0),
            stop=stop_when_event_set(self._stop),
            sleep=sleep_using_event(self._stop),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._session()
        except _Disconnected:
            pass  # only reached when stopping

    def _session(self) -> None:
        """One connection's life; raises :class:`_Disconnected` when it ends unasked."""
        try:
            socket = websocket.create_connection(self.url, timeout=_RECV_TIMEOUT)
        except (OSError, websocket.WebSocketException) as error:
            raise _Disconnected(str(error)) from None
        self._connected.set()
        self._post(self._on_connected)
        try:
            while not self._stop.is_set():
                try:
                    message = socket.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                except (OSError, websocket.WebSocketException) as error:
                    raise _Disconnected(str(error)) from None
                if not message:
                    raise _Disconnected("connection closed")
                self._dispatch(message)
        finally:
            self._connected.clear()
            socket.close()
            if not self._stop.is_set():
                self._post(self._on_disconnected)

    def _dispatch(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
            method = data["method"]
            gid = data["params"][0]["gid"]
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            method = gid = None
        if not (isinstance(method, str) and isinstance(gid, str)):
            log.warning("ignoring a malformed aria2 notification")
            return
        if method in NOTIFICATIONS:
            self._post(self._on_notification, method, gid)
