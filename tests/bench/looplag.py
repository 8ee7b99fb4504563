"""How late an asyncio event loop runs its callbacks: the lag a blocking call causes.

A task asks to wake every ``interval`` seconds and records how much later than asked it
woke; anything that holds the loop (a synchronous disk read, a parse) shows as lag. The
figures are what the benchmarks report: the worst lag and the 99th percentile, in ms.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tests.bench.common import percentile

__all__ = ["LagFigures", "LoopLag"]


@dataclass(frozen=True)
class LagFigures:
    """The lag seen while the monitor ran, in milliseconds."""

    max_ms: float
    p99_ms: float
    samples: int


class LoopLag:
    """Samples the running loop's lag until :meth:`stop`.

    Parameters:
        interval: seconds between two wake-ups asked for.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self._interval = interval
        self._lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling (call on the loop to watch)."""
        self._lags.clear()
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def stop(self) -> LagFigures:
        """Stop sampling; the figures since :meth:`start`."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        lags = [lag * 1000 for lag in self._lags] or [0.0]
        return LagFigures(max(lags), percentile(lags, 99), len(self._lags))

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            self._lags.append(max(0.0, loop.time() - asked))
