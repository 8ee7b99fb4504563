"""The queue of downloads no node holds yet, on a database that nodes share (placement).

On PostgreSQL, a new download is stored without a node (``downloads.node`` is NULL) and
announced on :data:`QUEUE_CHANNEL`. Every node claims the oldest ones it has free slots and
room for (:meth:`Placements.claim`) with ``FOR UPDATE SKIP LOCKED``: nodes that claim at once
never wait for each other nor take one download twice, and the queue's order (the ids) holds
across nodes. Until a node claims it, a download is only its row: a pause, resume or cancel
changes the row alone, and only while it is still unclaimed (:meth:`Placements.change`), so
that a claim and a user's action never both win.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from peewee import Case, fn

from manager.models import SourceKind, TorrentState
from manager.store.database import StoreDatabase, utc_now
from manager.store.downloads import DownloadRecord, Downloads
from manager.store.engine import engine_of

__all__ = ["CLAIMABLE", "QUEUE_CHANNEL", "Placements"]

QUEUE_CHANNEL = "ariabot_queue"
"""Announced when an unclaimed download may be claimed (added, resumed, given back)."""

CLAIMABLE = (TorrentState.QUEUED.value, TorrentState.METADATA.value)
"""The states in which an unclaimed download waits for a node."""

_MAGNET = SourceKind.MAGNET.value

_SLOT_STATES = (*CLAIMABLE, TorrentState.DOWNLOADING.value, TorrentState.SEEDING.value)
"""The states of a node's downloads that hold one of its slots, as in aria2, whose
``max-concurrent-downloads`` counts a seeding download too (a queued one waits for one)."""


class Placements:
    """The unclaimed downloads of one store (``store.placements``), used from asyncio.

    Parameters:
        database: the store's database and thread.
        downloads: the downloads table (its records).
    """

    def __init__(self, database: StoreDatabase, downloads: Downloads) -> None:
        self._database = database
        self._downloads = downloads

    async def claim(self, node: str, slots: int, room: int, directory_of: Callable[[int], str],
                    *, dead_after: float) -> list[DownloadRecord]:
        """Make the oldest unclaimed downloads that fit node ``node`` its own: as many as it
        has free slots of ``slots`` (its downloads that hold one counted in the same
        transaction), each no larger than ``room`` bytes (a magnet's size is not known yet:
        it fits), in its chat's folder there (``directory_of(chat_id)``). Work is spread:
        a node claims nothing while another live one (heard from within ``dead_after``
        seconds) with room for the oldest of them (its heartbeat's free disk) has more
        free slots, counted the same way from the slots its join and heartbeats give, and
        only as many as leave it no fewer free slots than that one (at least one); nodes
        with as many race for it, and each download goes to one. A claim is announced, so
        that the others look again.

        Returns:
            The downloads claimed, oldest first, without a GID: the node adds them to its
            aria2c.

        Raises:
            NodeReplaced: this node's epoch was raised (nothing is claimed).
            StoreError: the database cannot be written.
        """
        def write() -> list[int]:
            database = self._database.db
            table = self._database.tables.download
            with database.atomic():
                free = slots - self._used(node)
                if free <= 0:
                    return []
                query = (table.select(table.id, table.chat_id, table.total_bytes)
                         .where(table.node.is_null() & table.state.in_(CLAIMABLE)
                                & (table.total_bytes <= room))
                         .order_by(table.id).limit(free))
                if engine_of(database).shared:  # SQLite's one writer already excludes others
                    query = query.for_update(skip_locked=True)
                rows = list(query)
                other = self._freest_other(node, dead_after, rows[0].total_bytes) if rows else 0
                if other > free:
                    return []
                rows = rows[:max(1, free - other)]
                # A magnet whose files are not known yet fetches its metadata first.
                state = Case(None, [((table.source_kind == _MAGNET) & (table.total_bytes == 0),
                                     TorrentState.METADATA.value)], table.state)
                for chat in {row.chat_id for row in rows}:
                    (table.update(node=node, directory=directory_of(chat), state=state,
                                  updated_at=utc_now())
                     .where(table.id.in_([row.id for row in rows if row.chat_id == chat]))
                     .execute())
                if rows:
                    # The others look again: one of them may be the freest now.
                    engine_of(database).announce(database, QUEUE_CHANNEL)
                    self._database.check_held()
                return [row.id for row in rows]

        claimed = await self._database.run(write)
        if not claimed:
            return []
        table = self._database.tables.download
        return await self._database.run(self._downloads.records, table.id.in_(claimed))

    def _used(self, node: str) -> int:
        table = self._database.tables.download
        return table.select().where((table.node == node)
                                    & table.state.in_(_SLOT_STATES)).count()

    def _freest_other(self, node: str, dead_after: float, size: int) -> int:
        """The most free slots of another live node with room for ``size`` bytes by its
        heartbeat's free disk (0 when there is none): a freer node whose disk is full
        does not hold back the others."""
        database = self._database.db
        nodes, table = self._database.tables.node, self._database.tables.download
        now = engine_of(database).clock(database)
        others = {row.name: row.slots_total for row in nodes.select(
            nodes.name, nodes.slots_total).where(
            nodes.left_at.is_null() & (nodes.last_seen > now - dead_after)
            & (nodes.name != node) & (nodes.free_disk >= size))}
        if not others:
            return 0
        used = dict(table.select(table.node, fn.COUNT(table.id))
                    .where(table.node.in_(list(others)) & table.state.in_(_SLOT_STATES))
                    .group_by(table.node).tuples())
        return max(total - used.get(name, 0) for name, total in others.items())

    async def change(self, download_id: int, states: Collection[str],
                     values: Mapping[str, Any]) -> DownloadRecord | None:
        """Write ``values`` to a download that no node claimed and that is in one of
        ``states``; announce it when it becomes claimable.

        Returns:
            The row as written; None when a node claimed it first, or its state changed (read
            it again: its node acts on it now).

        Raises:
            NodeReplaced: this node's epoch was raised (nothing is written).
            StoreError: the database cannot be written.
        """
        def write() -> bool:
            database = self._database.db
            table = self._database.tables.download
            with database.atomic():
                changed = (table.update(**values, updated_at=utc_now())
                           .where((table.id == download_id) & table.node.is_null()
                                  & table.state.in_(list(states))).execute())
                if not changed:
                    return False
                if values.get("node") is None and values.get("state") in CLAIMABLE:
                    engine_of(database).announce(database, QUEUE_CHANNEL)
                self._database.check_held()
                return True

        if not await self._database.run(write):
            return None
        return await self._downloads.get(download_id)

    async def announce(self) -> None:
        """Tell the nodes that an unclaimed download waits (one was just stored).

        Raises:
            StoreError: the database cannot be reached.
        """
        def write() -> None:
            database = self._database.db
            with database.atomic():
                engine_of(database).announce(database, QUEUE_CHANNEL)

        await self._database.run(write)
