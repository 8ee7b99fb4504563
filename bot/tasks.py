"""TaskSet: background tasks the bot starts from synchronous code and must reap on stop.

The progress board is called synchronously by the manager, so its work runs in tasks; a set
keeps a reference to each (asyncio holds only weak ones), logs a task that failed instead of
losing the error, and cancels what is left on :meth:`TaskSet.cancel`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskSet"]

log = logging.getLogger(__name__)


class TaskSet:
    """Running tasks of one kind (progress edits, news), each forgotten when it ends."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def start(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``work`` on the running loop as a task called ``name``."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def wait(self, grace: float) -> None:
        """Give the running tasks up to ``grace`` seconds to end by themselves."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)

    async def cancel(self) -> None:
        """Cancel every running task and wait until each has ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a progress task failed", exc_info=task.exception())
