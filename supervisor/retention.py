"""Retention: the running ariabot purges old finished downloads from the list once a day.

``[manager] retention_days`` (``ARIABOT_RETENTION_DAYS``; 0 keeps everything) removes
finished downloads (complete, error, cancelled) whose row last changed more than that many
days ago. Their files are never deleted by this job; ``ariabot purge --delete-files`` does
that on request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol

__all__ = ["RETENTION_INTERVAL", "Purger", "run_retention"]

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 24 * 3600.0
"""Seconds between two purges: daily."""


class Purger(Protocol):
    """What the retention job needs of the manager."""

    async def purge_finished(self, older_than: timedelta, *,
                             delete_files: bool = False) -> int: ...


async def run_retention(
    manager: Purger,
    days: int,
    *,
    interval: float = RETENTION_INTERVAL,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Purge at start, then every ``interval`` seconds, until cancelled.

    A failed purge is logged and tried again at the next interval; it never stops ariabot.

    Parameters:
        manager: the torrent manager.
        days: finished downloads older than this many days go (must be > 0).
        interval: seconds between two purges.
        sleep: the pause between purges (injected by tests).
    """
    if days <= 0:
        raise ValueError("retention needs a number of days above 0")
    while True:
        try:
            count = await manager.purge_finished(timedelta(days=days))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the daily purge of finished downloads failed; next try in %.0f h",
                          interval / 3600)
        else:
            if count:
                log.info("retention: %d finished download(s) older than %d days left the list",
                         count, days)
        await sleep(interval)
