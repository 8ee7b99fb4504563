"""The front: the one node of a database that talks to Telegram.

Telegram gives a bot's updates to one receiver (a second ``getUpdates`` is answered 409), and
the bot's messages must be sent once. On PostgreSQL the front is the node whose session holds
the advisory lock :data:`_FRONT_LOCK`, on a connection of its own (never the store's, which
is replaced when it breaks and runs every other query). The same connection listens on
:data:`~manager.store.outbox.NOTICES_CHANNEL`: a notice another node wrote (its download
finished) wakes the front's bot at once. The server frees the lock when that session ends:
the node stopped, was killed, or its host vanished (TCP keepalives end the session about
10 s after the host went silent). The other nodes try for it every :data:`RETRY_S` seconds.
The holder reads its connection every :data:`RETRY_S` seconds; a read that fails means the
lock may be another's already, and it stops being the front at once.

On SQLite, one node runs on a database, and it is the front.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from manager.store.engine import engine_for
from manager.store.listener import CONNECTION
from manager.store.outbox import NOTICES_CHANNEL

try:
    import psycopg
except ImportError:  # installed without the `postgresql` extra: SQLite only
    psycopg = None

__all__ = ["RETRY_S", "FrontLock"]

log = logging.getLogger(__name__)

RETRY_S = 2.0
"""Seconds between two tries for the lock, and between two checks that it is still held."""

_FRONT_LOCK = 0x61726961626F75
"""The advisory lock key of the front (one above the join lock's), the same on every node."""

_CONNECTION: dict[str, Any] = {
    **CONNECTION, "options": "-c tcp_keepalives_idle=4 -c tcp_keepalives_interval=2 "
                             "-c tcp_keepalives_count=3"}
"""The lock's connection: a silent peer is found out as by any of the node's own
connections (libpq's keepalives are this side's), and by the server too (its own, set for
this session: its default is the system's, two hours)."""

_APPLICATION = "ariabot front "
"""The lock's session names its node (``application_name``): who holds the lock."""

_END_DEAD_HOLDER = """
SELECT pg_terminate_backend(activity.pid, 1000)
FROM pg_locks AS held
JOIN pg_stat_activity AS activity ON activity.pid = held.pid
JOIN nodes ON activity.application_name = LEFT('ariabot front ' || nodes.name, 63)
WHERE held.locktype = 'advisory' AND held.granted
  AND held.classid = %(high)s::oid AND held.objid = %(low)s::oid
  AND held.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND nodes.left_at IS NULL AND nodes.name <> %(me)s
  AND nodes.last_seen < EXTRACT(EPOCH FROM clock_timestamp()) - %(dead_after)s
"""
"""Ends the session that holds the front's lock when its node is dead by its heartbeat (a
frozen process, or a host cut off whose TCP connection the server still keeps): its lock
goes with it, and it finds out when it wakes. Nodes share one role, which may end its own
sessions."""


class FrontLock:
    """Whether this node is the front, and waiting to become it.

    Parameters:
        url: the store's database URL.
        node: this node's name.
        dead_after: seconds of silence after which a node is dead (its heartbeats).
    """

    def __init__(self, url: str, node: str, dead_after: float) -> None:
        self._url = url
        self._node = node
        self._dead_after = dead_after
        self._shared = engine_for(url).shared
        self._connection: Any = None

    async def try_acquire(self) -> bool:
        """Try once to become the front (at once on SQLite); a database that cannot be
        reached is a no."""
        if not self._shared:
            return True
        try:
            return await self._try()
        except psycopg.Error as error:
            log.warning("the front's lock cannot be asked for (%s); trying again",
                        error.__class__.__name__)
            await self.release()
            return False

    async def acquire(self) -> None:
        """Return once this node is the front: at once on SQLite, or when the lock is free
        (tried every :data:`RETRY_S` seconds)."""
        if await self.try_acquire():
            return
        log.info("another node is the front (it talks to Telegram); this one takes over "
                 "when it stops")
        while True:
            await asyncio.sleep(RETRY_S)  # a period: nothing tells of a free lock
            if await self.try_acquire():
                return

    async def _try(self) -> bool:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(
                self._url, application_name=f"{_APPLICATION}{self._node}"[:63], **_CONNECTION)
        ended = await (await self._connection.execute(_END_DEAD_HOLDER, {
            "high": _FRONT_LOCK >> 32, "low": _FRONT_LOCK & 0xFFFFFFFF, "me": self._node,
            "dead_after": self._dead_after})).fetchall()
        if ended:
            log.warning("the front's node is dead by its heartbeat but held on to its lock: "
                        "its session was ended, and this node takes over")
        cursor = await self._connection.execute("SELECT pg_try_advisory_lock(%s)",
                                                (_FRONT_LOCK,))
        row = await cursor.fetchone()
        if not (row and row[0]):
            return False
        await self._connection.execute(f"LISTEN {NOTICES_CHANNEL}")
        return True

    async def lost(self, notices_stored: Callable[[], None]) -> None:
        """Return when this node may no longer be the front (its lock's session failed);
        never on SQLite. Meanwhile, call ``notices_stored()`` whenever another node stored
        notices (this node's own writes say so in-process)."""
        if not self._shared:
            await asyncio.Event().wait()  # one node, the front until it stops
        while True:
            try:
                # Notices heard for RETRY_S seconds at most, then a read: a dead session
                # says nothing by itself.
                async for _ in self._connection.notifies(timeout=RETRY_S, stop_after=1):
                    notices_stored()
                await self._connection.execute("SELECT 1")
            except psycopg.Error as error:
                log.warning("the front's lock was lost with its database session (%s): this "
                            "node stops talking to Telegram", error.__class__.__name__)
                await self.release()
                return

    async def release(self) -> None:
        """Let go of the lock (closing its session frees it)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                await connection.close()
