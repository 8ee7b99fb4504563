"""The request ``getUpdates`` goes through: never more than one poll per :data:`POLL_FLOOR`.

Long polling asks the server to hold each ``getUpdates`` open for ``poll_timeout`` seconds,
so a healthy server answers at most once per update burst. A server that answers at once
instead (a misconfigured local Bot API server or proxy) would have python-telegram-bot poll
again at once, hundreds of times a second (its ``poll_interval`` is 0, and raising it would
delay every answer). Here the wait is counted from the start of the previous poll: a held
poll is never delayed, an instant one waits out the rest of the floor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram.request import HTTPXRequest

__all__ = ["POLL_FLOOR", "PollFloorRequest"]

POLL_FLOOR = 0.5
"""Least seconds between the starts of two ``getUpdates`` (at most 2 polls a second)."""


class PollFloorRequest(HTTPXRequest):
    """PTB's ``get_updates_request``: an :class:`HTTPXRequest` (one connection, as PTB builds
    it for polling) that starts a request no sooner than ``floor`` seconds after the last.

    Parameters:
        floor: least seconds between the starts of two requests.
        clock: monotonic seconds (tests inject one).
        sleep: waits that many seconds (tests inject one).
    """

    def __init__(self, floor: float = POLL_FLOOR, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        super().__init__(connection_pool_size=1)
        self.floor = floor
        self._clock = clock
        self._sleep = sleep
        self._last_start: float | None = None

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        """Wait out the floor since the last request started, then send this one."""
        if self._last_start is not None:
            wait = self._last_start + self.floor - self._clock()
            if wait > 0:
                await self._sleep(wait)
        self._last_start = self._clock()
        return await super().do_request(*args, **kwargs)
