"""Paces every node shares: turns taken in one place, so that limits that are the bot's (not
a node's) hold for all nodes together.

Telegram's flood limits count every message of the bot, whichever machine sent it: three
nodes each pacing itself at one message a second in a chat would send three a second there.
Each :class:`Pace` is a generic cell rate algorithm (GCRA, as in ATM networks and most rate
limiters over a shared store): its whole state is one time, ``due``, when the next turn comes
at the sustained pace, and a turn may be taken up to ``tolerance`` seconds before it (the
burst). :meth:`Paces.take` takes one turn of several paces in one statement (an upsert that
locks each pace's row for an instant, in the order of their keys, so two nodes never wait
on each other crosswise; :mod:`manager.store.engine` has it) and returns how long to wait
before using them: a turn is reserved, never refused, so a node waits for its turn rather
than asking again and again.

Only on PostgreSQL: a SQLite database has one node, which paces itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from manager.store.database import StoreDatabase
from manager.store.engine import engine_for, engine_of

__all__ = ["Pace", "Paces"]


@dataclass(frozen=True)
class Pace:
    """A pace to keep with every other node.

    Parameters:
        key: what is paced (``chat:42``, ``all``).
        spacing: seconds between two turns, sustained.
        burst: turns that may be taken back to back after a quiet while (at least 1).
    """

    key: str
    spacing: float
    burst: int = 1

    @property
    def tolerance(self) -> float:
        """How far ahead of its sustained time a turn may be taken."""
        return (max(1, self.burst) - 1) * self.spacing


class Paces:
    """The shared paces of one store (``store.paces``), used from asyncio.

    Parameters:
        database: the store's database and thread.
    """

    def __init__(self, database: StoreDatabase) -> None:
        self._database = database
        self._shared = engine_for(database.url).shared

    async def take(self, paces: Sequence[Pace]) -> float:
        """Take one turn of every pace in ``paces`` (once per key); returns the seconds to
        wait before using them (0: now, and always on SQLite, where nothing is read or
        written).

        Raises:
            StoreError: the database cannot be written (no turn was taken).
        """
        if not self._shared:
            return 0.0  # not even a trip to the store's thread: one node paces itself
        ordered = sorted({pace.key: pace for pace in paces}.values(), key=lambda p: p.key)

        def take() -> float:
            database = self._database.db
            return engine_of(database).take_turns(
                database, [(p.key, p.spacing, p.tolerance) for p in ordered])

        return await self._database.run(take)
