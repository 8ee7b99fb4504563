"""Long passes on the event loop (aria2's waiting list: 100,000 entries at scale), made in
steps that let the rest of ariabot run between them."""

from __future__ import annotations

import asyncio

__all__ = ["between_steps"]

_REST = 0.001
"""Seconds the loop waits on I/O between two steps."""


async def between_steps() -> None:
    """Let others run between two steps of a long pass.

    ``asyncio.sleep(0)`` would run the ready callbacks only: the loop takes the GIL back at
    once, and a thread that waits for it (the store's, which every bot command and control
    request goes through) gets it only every 5 ms switch interval, several times per query.
    A loop that rests a moment on I/O lets those threads run: at 100,000 downloads a
    whole-queue poll kept a control request waiting 149 ms with ``sleep(0)``, 22 to 36 ms
    so (``python -m tests.bench --only scale``).
    """
    await asyncio.sleep(_REST)
