"""One pass at a time, and never a wake-up lost: what the queue's claims and the routed
commands both need.

A node looks at the database when it is told something changed (a ``NOTIFY``, an event, a
reconnection). Tellings come in bursts, and a look must not run twice at once (two claims
by one node would race each other); but one that comes while a look runs may be about a
row that look has already read past, so it must cause one more look, once it ends. Not
one per telling: however many came meanwhile, one more pass reads them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["Passes"]


class Passes:
    """Runs ``work`` one pass at a time; a call while a pass runs makes one more pass.

    Parameters:
        work: one pass; returns True when it should run once more at once (it did
            something that may have made more work).
    """

    def __init__(self, work: Callable[[], Awaitable[bool]]) -> None:
        self._work = work
        self._running = asyncio.Lock()
        self._again = False

    async def run(self) -> None:
        """Run passes until one asks for no other and nothing was asked meanwhile; return
        at once when a pass runs already (it runs once more after)."""
        if self._running.locked():
            self._again = True
            return
        async with self._running:
            self._again = True
            while self._again:
                self._again = False
                if await self._work():
                    self._again = True
