"""Long passes on the event loop (aria2's waiting list: 100,000 entries at scale), made in
steps that let the rest of ariabot run between them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

__all__ = ["Pacer", "in_steps", "paced_missing", "release"]

T = TypeVar("T")

_WORK = 0.005
"""Seconds of steps between two rests."""

_REST = 0.001
"""Seconds the loop waits on I/O at a rest."""

_CHUNK = 2_000
"""Items a step of :func:`release` or :func:`paced_missing` handles (about 0.2 ms)."""


class Pacer:
    """Paces one long pass: call :meth:`step` between two of its steps.

    ``asyncio.sleep(0)`` alone runs the ready callbacks only: the loop takes the GIL back at
    once, and a thread that waits for it (the store's, which every bot command and control
    request goes through) gets it only every 5 ms switch interval, several times per query.
    Resting a moment on I/O lets those threads run: at 100,000 downloads a whole-queue poll
    kept a control request waiting 149 ms with ``sleep(0)`` alone, 17 to 36 ms with a rest
    between steps (``python -m tests.bench --only scale``). A rest after every step made
    the start-up's reconcile 1.4 s longer, hence one per :data:`_WORK` of steps.

    Parameters:
        clock: monotonic clock.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._since = clock()

    async def step(self) -> None:
        """Between two steps: let the ready callbacks run, and rest if it is time."""
        if self._clock() - self._since < _WORK:
            await asyncio.sleep(0)
            return
        await asyncio.sleep(_REST)
        self._since = self._clock()


async def release(items: list[Any]) -> None:
    """Empty a long list a chunk per step, from its end (no shifting).

    Dropped at once, the 100,000 entries of aria2's waiting list (a dict and its strings
    each) are freed in one step: 6 to 8 ms of the loop. The caller holds the only
    reference that matters: entries still referred to elsewhere are not freed here.
    """
    pacer = Pacer()
    while items:
        del items[-_CHUNK:]
        await pacer.step()


async def in_steps(items: Sequence[T], size: int) -> AsyncIterator[Sequence[T]]:
    """``items`` a slice of ``size`` at a time, the loop let run (:class:`Pacer`) after each:
    every long pass over aria2's waiting list goes through here."""
    pacer = Pacer()
    for start in range(0, len(items), size):
        yield items[start:start + size]
        await pacer.step()


async def paced_missing(ids: Sequence[int], seen: set[int]) -> list[int]:
    """The ids not in ``seen``, sorted, a chunk per step (100,000 in one step: 8 ms)."""
    missing: list[int] = []
    async for chunk in in_steps(ids, _CHUNK):
        missing += [i for i in chunk if i not in seen]
    return sorted(missing)
