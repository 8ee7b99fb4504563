"""Per-user bounds of the Mini App: requests per second, and event streams open at once.

A page asks a handful of times when it opens and then listens to one stream, so a user far
past the request rate is a script or a stuck client; they get 429 with ``Retry-After``
instead of the event loop the bot shares. A user past the number of streams has most likely
reloaded a page, whose old stream the server cannot know is gone until its next ping: the
oldest stream is ended for the new one, so a reload always works. The buckets live in the
app (one per user seen lately, forgotten when full), not in a global.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NewType

__all__ = ["StreamTicket", "UserLimits"]

_MAX_USERS = 10_000
StreamTicket = NewType("StreamTicket", int)
"""One open stream, as :meth:`UserLimits.open_stream` counted it."""


class UserLimits:
    """A token bucket of requests per user, and a count of their open streams.

    Parameters:
        rate: requests per second a user earns back.
        burst: requests a user may make at once.
        streams: event streams a user may hold open at once (pages, tabs).
        clock: monotonic clock (injected by tests).
    """

    def __init__(self, *, rate: float = 5.0, burst: float = 30.0, streams: int = 4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._max_streams = streams
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}
        self._streams: dict[int, list[tuple[StreamTicket, Callable[[], None]]]] = {}
        self._tickets = 0

    def take(self, user_id: int) -> float:
        """Spend one request of ``user_id``: 0 when allowed, else the seconds to wait."""
        now = self._clock()
        tokens, then = self._buckets.get(user_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        if tokens < 1:
            return (1 - tokens) / self._rate
        if user_id not in self._buckets and len(self._buckets) >= _MAX_USERS:
            self._buckets.clear()
        self._buckets[user_id] = (tokens - 1, now)
        return 0.0

    def open_stream(self, user_id: int, stop: Callable[[], None]) -> StreamTicket:
        """Count a stream of ``user_id`` as open; when they already hold ``streams``, the
        oldest is ended (``stop`` as given at its opening). Each ticket is given back to
        :meth:`close_stream` once its stream ends."""
        streams = self._streams.setdefault(user_id, [])
        if len(streams) >= self._max_streams:
            streams.pop(0)[1]()
        self._tickets += 1
        ticket = StreamTicket(self._tickets)
        streams.append((ticket, stop))
        return ticket

    def close_stream(self, user_id: int, ticket: StreamTicket) -> None:
        """A stream of ``user_id`` ended (or was ended)."""
        streams = [s for s in self._streams.get(user_id, []) if s[0] != ticket]
        if streams:
            self._streams[user_id] = streams
        else:
            self._streams.pop(user_id, None)
