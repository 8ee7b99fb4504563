"""Hearing the other nodes: a PostgreSQL connection of this node's own that ``LISTEN``\\ s.

The store's connection runs every query on its one thread and is replaced when it breaks;
notifications need a connection that waits for them, so each listener opens its own (async
psycopg, on the event loop). A notification sent while the connection was down is lost:
after every (re)connection the listener says so (``connected``), and its user reads what it
may have missed. On SQLite there is no other node: the listener waits for nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

try:
    import psycopg
except ImportError:  # installed without the `postgresql` extra: SQLite only
    psycopg = None

__all__ = ["Listener"]

log = logging.getLogger(__name__)

_RETRY_S = 2.0
"""Seconds before a lost listening connection is opened again."""

_CONNECTION: dict[str, Any] = {"autocommit": True, "connect_timeout": 5, "keepalives": 1,
                               "keepalives_idle": 4, "keepalives_interval": 2,
                               "keepalives_count": 3}


class Listener:
    """Calls ``heard(channel, payload)`` for each notification on ``channels``.

    Parameters:
        url: the store's database URL.
        channels: the channels to listen on (constants of the store, never input).
        heard: called on the event loop for each notification.
        connected: called after each (re)connection: read what may have been missed.
    """

    def __init__(self, url: str, channels: Sequence[str], heard: Callable[[str, str], None],
                 connected: Callable[[], None]) -> None:
        self._url = url
        self._channels = tuple(channels)
        self._heard = heard
        self._connected = connected
        self._shared = url.split("://", 1)[0].lower() in ("postgres", "postgresql")

    async def run(self) -> None:
        """Listen until cancelled, connecting again after a failure."""
        if not self._shared:
            await asyncio.Event().wait()  # one node: nobody else to hear
        failing = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url,
                                                                 **_CONNECTION) as connection:
                    for channel in self._channels:
                        await connection.execute(f"LISTEN {channel}")
                    if failing:
                        log.info("hearing the other nodes again")
                    failing = False
                    self._connected()
                    async for notice in connection.notifies():
                        self._heard(notice.channel, notice.payload)
            except psycopg.Error as error:
                if not failing:
                    log.warning("cannot hear the other nodes (%s); trying again",
                                error.__class__.__name__)
                failing = True
            await asyncio.sleep(_RETRY_S)  # a period: nothing tells of the server's return
