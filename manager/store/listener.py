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

from manager.store.engine import engine_for

try:
    import psycopg
except ImportError:  # installed without the `postgresql` extra: SQLite only
    psycopg = None

__all__ = ["CONNECTION", "Listener"]

log = logging.getLogger(__name__)

_RETRY_S = 2.0
"""Seconds before a lost listening connection is opened again."""

CONNECTION: dict[str, Any] = {"autocommit": True, "connect_timeout": 5, "keepalives": 1,
                              "keepalives_idle": 4, "keepalives_interval": 2,
                              "keepalives_count": 3}
"""A connection of a node's own (listening, the front's lock): no transaction held open,
and a silent server found out after about 10 s (idle 4 s, then 3 probes 2 s apart)."""


class Listener:
    """Calls ``heard(channel, payload)`` for each notification on ``channels``.

    Parameters:
        url: the store's database URL.
        channels: the channels to listen on (constants of the store, never input).
        heard: called on the event loop for each notification.
        connected: called after each (re)connection: read what may have been missed.
        name: the session's ``application_name``, for the other nodes to see it.
    """

    def __init__(self, url: str, channels: Sequence[str], heard: Callable[[str, str], None],
                 connected: Callable[[], None], name: str = "") -> None:
        self._url = url
        self._name = name
        self._channels = tuple(channels)
        self._heard = heard
        self._connected = connected
        self._shared = engine_for(url).shared

    async def run(self) -> None:
        """Listen until cancelled, connecting again after a failure."""
        if not self._shared:
            await asyncio.Event().wait()  # one node: nobody else to hear
        failing = False
        while True:
            try:
                named = {"application_name": self._name} if self._name else {}
                async with await psycopg.AsyncConnection.connect(
                        self._url, **named, **CONNECTION) as connection:
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
