"""The nodes sharing one database: who runs, since when, last heard from when, with what room.

Each ``ariabot run`` is a node: it joins at start (:meth:`Nodes.join`), writes a heartbeat
every few seconds (:meth:`Nodes.beat`) and leaves when it stops (:meth:`Nodes.leave`). Times
are the database's clock (:meth:`~manager.store.engine.Engine.clock`), so that machines whose
clocks differ still agree on who was heard from last.

A node's name is held by one data dir at a time (its ``home``). A start raises the row's
epoch, and every heartbeat names the epoch it holds: a process that was frozen while another
took its name finds out at its next heartbeat, before it does anything else as that node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import peewee
from peewee import Case

from manager.errors import NodeConflict, NodeReplaced
from manager.models import SourceKind, TorrentState
from manager.store.database import StoreDatabase, utc_now
from manager.store.engine import engine_of
from manager.store.placements import QUEUE_CHANNEL

__all__ = ["Move", "NodeFigures", "NodeRecord", "Nodes"]

T = TypeVar("T")

_UNFINISHED = tuple(state.value for state in (
    TorrentState.QUEUED, TorrentState.METADATA, TorrentState.DOWNLOADING, TorrentState.PAUSED))
"""The states of a download a dead node's disk does not hold whole: another node may fetch
it again from its source. A finished one (seeding, complete, paused after its end) stays the
dead node's: its files are there only."""

_MAGNET = SourceKind.MAGNET.value
_PAUSED = TorrentState.PAUSED.value
_QUEUED = TorrentState.QUEUED.value

_CHUNK = 500
"""Rows per statement of a take-over (SQLite binds at most 32,766 values in one)."""


def _chunks(rows: list[T]) -> list[list[T]]:
    return [rows[start:start + _CHUNK] for start in range(0, len(rows), _CHUNK)]


@dataclass(frozen=True)
class NodeFigures:
    """What a heartbeat says of its node's room."""

    slots_used: int = 0
    slots_total: int = 0
    free_disk: int = 0
    downloads: int = 0


@dataclass(frozen=True)
class NodeRecord:
    """A node as stored, with its silence measured by the database's clock."""

    name: str
    version: str
    started_at: float
    last_seen: float
    left_at: float | None
    figures: NodeFigures
    silent_for: float
    """Seconds since its last heartbeat, by the database's clock when it was read."""


@dataclass(frozen=True)
class Move:
    """An unfinished download taken from a dead node, as it was there (failover)."""

    id: int
    download_id: int
    info_hash: str
    from_node: str
    from_home: str
    """The data dir that held ``from_node``'s name when it died."""
    to_node: str
    gid: str | None
    """Its GID in the dead node's aria2c."""
    directory: str
    """Its folder on the dead node's disk."""


class Nodes:
    """The nodes table of one store (``store.nodes``), used from asyncio.

    Parameters:
        database: the store's database and thread.
    """

    def __init__(self, database: StoreDatabase) -> None:
        self._database = database

    async def join(self, name: str, home: str, version: str, dead_after: float, *,
                   slots: int = 0) -> int:
        """Take ``name`` for the data dir ``home``; returns the epoch its heartbeats name.

        The data dir that held the name last takes it back at once (its lock proves the
        process before is gone); another data dir takes it only from a node that left or
        was silent for ``dead_after`` seconds. The first node to join takes the downloads
        stored before nodes existed (they are in its aria2c and on its disk); after it, a
        download without a node is one no node claimed yet (:mod:`~manager.store.placements`).
        Several nodes share a PostgreSQL database; a SQLite one serves one node: another one
        that is heard from refuses the start. ``slots`` is how many downloads it runs at
        once (its heartbeats say it again).

        Raises:
            NodeConflict: the name is held by a live node of another data dir, or another
                node runs on this SQLite database.
            StoreError: the database cannot be written.
        """
        def write() -> int:
            database = self._database.db
            node = self._database.tables.node
            engine = engine_of(database)
            with engine.joining(database):
                now = engine.clock(database)
                live = (node.left_at.is_null() & (node.last_seen > now - dead_after))
                held = node.select().where(node.name == name).first()
                if (held is not None and held.home != home and held.left_at is None
                        and held.last_seen > now - dead_after):
                    raise NodeConflict(
                        f"a node named {name!r} runs on this database from another data dir "
                        f"(last heard from {now - held.last_seen:.0f} s ago): give each "
                        "machine its own ARIABOT_NODE_NAME")
                other = node.select().where(live & (node.name != name)).first()
                if other is not None and not engine.shared:
                    raise NodeConflict(
                        f"node {other.name!r} runs on this database (last heard from "
                        f"{now - other.last_seen:.0f} s ago): a SQLite database serves one "
                        "node; several nodes share a PostgreSQL database "
                        "(ARIABOT_DATABASE_URL)")
                first = not node.select().exists()  # before this node's own row
                epoch = held.epoch + 1 if held is not None else 1
                # Its slots count from now on: a node that just joined is the freest, and
                # must not read as full until its first heartbeat.
                values = dict(home=home, epoch=epoch, version=version, started_at=now,
                              last_seen=now, left_at=None, slots_used=0, slots_total=slots,
                              free_disk=0, downloads=0)
                if held is None:
                    node.insert(name=name, **values).execute()
                else:
                    node.update(**values).where(node.name == name).execute()
                if first:  # later, a download without a node waits to be claimed
                    download = self._database.tables.download
                    download.update(node=name).where(download.node.is_null()).execute()
                return epoch

        return await self._database.run(write)

    async def take_over(self, name: str, epoch: int, dead_after: float,
                        directory_of: Callable[[int], str]) -> list[Move]:
        """Take the unfinished downloads of every dead node (silent for ``dead_after``
        seconds without leaving) for node ``name``, whose start holds ``epoch``.

        The epoch of each dead node that holds any is raised first, in the same
        transaction: one only frozen finds out at its next heartbeat and stops, and its
        download writes are refused from now on
        (:meth:`~manager.store.database.StoreDatabase.check_held`), so a completion it sees
        after waking is never announced. Each download taken keeps its source, file choice,
        chat and message, and restarts from nothing without a GID (a magnet without its
        size, so that its names are checked again where it starts). On a database nodes
        share it goes back to the queue (paused if it was, else queued, announced), for
        the node with a free slot (:mod:`~manager.store.placements`); on SQLite it is this
        node's, in its chat's folder here (``directory_of(chat_id)``), and the reconcile
        adds it to this node's aria2c. A
        :class:`Move` row says where it was, for the dead node to clean up when it comes
        back (:meth:`moves_from`). A dead node with nothing to take keeps its epoch, and a
        look that finds nothing takes no write lock.

        Returns:
            The downloads taken.

        Raises:
            NodeReplaced: ``epoch`` is no longer this node's.
            StoreError: the database cannot be written.
        """
        def dead_work(now: float) -> peewee.Expression:
            """Unfinished rows of nodes dead at ``now`` (other than this one)."""
            node, download = self._database.tables.node, self._database.tables.download
            dead = node.select(node.name).where(
                node.left_at.is_null() & (node.last_seen <= now - dead_after)
                & (node.name != name))
            return (download.node.in_(dead) & download.completed_at.is_null()
                    & download.state.in_(_UNFINISHED))

        def any_to_take() -> bool:
            # A plain read first: most heartbeats find nothing, and take no write lock.
            database = self._database.db
            download = self._database.tables.download
            now = engine_of(database).clock(database)
            return download.select(download.id).where(dead_work(now)).exists()

        def write() -> list[Move]:
            database = self._database.db
            tables = self._database.tables
            node, download, move = tables.node, tables.download, tables.download_move
            engine = engine_of(database)
            with engine.joining(database):
                now = engine.clock(database)
                if engine.node_epoch(database, name) != epoch:
                    raise NodeReplaced
                owners = [row.node for row in download.select(download.node).distinct()
                          .where(dead_work(now))]
                if not owners:
                    return []
                # Fenced before their rows are read again: a write of theirs that got in
                # first is seen by this read (a download finished: it stays there), and
                # every later one is refused.
                node.update(epoch=node.epoch + 1).where(node.name.in_(owners)).execute()
                homes = {row.name: row.home for row in
                         node.select(node.name, node.home).where(node.name.in_(owners))}
                taken = list(download.select(
                    download.id, download.info_hash, download.chat_id, download.node,
                    download.gid, download.directory, download.source_kind,
                ).where(dead_work(now)).order_by(download.id))
                # In bulk: a dead node may hold 10,000 queued downloads.
                for chunk in _chunks(taken):
                    move.insert_many([dict(
                        download_id=row.id, info_hash=row.info_hash, from_node=row.node,
                        from_home=homes[row.node], to_node=name, gid=row.gid,
                        directory=row.directory, moved_at=now,
                    ) for row in chunk]).execute()
                restart = dict(gid=None, completed_bytes=0, download_speed=0,
                               upload_speed=0, seeders=0, peers=0, updated_at=utc_now())
                if engine.shared:  # back in the queue: the node with a free slot claims it
                    queued = Case(None, [(download.state == _PAUSED, _PAUSED)], _QUEUED)
                    for chunk in _chunks(taken):
                        download.update(**restart, node=None, directory="", state=queued).where(
                            download.id.in_([row.id for row in chunk])).execute()
                    engine.announce(database, QUEUE_CHANNEL)
                else:
                    for chat in {row.chat_id for row in taken}:
                        for chunk in _chunks([row for row in taken if row.chat_id == chat]):
                            download.update(**restart, node=name,
                                            directory=directory_of(chat)).where(
                                download.id.in_([row.id for row in chunk])).execute()
                # The metadata aria2 saved is on the dead node's disk: here a magnet's files
                # are fetched and checked again, as a new one's.
                for chunk in _chunks([row for row in taken if row.source_kind == _MAGNET]):
                    download.update(total_bytes=0).where(
                        download.id.in_([row.id for row in chunk])).execute()
                return [Move(row.id, row.download_id, row.info_hash, row.from_node,
                             row.from_home, row.to_node, row.gid, row.directory)
                        for row in move.select().where((move.to_node == name)
                                                       & (move.moved_at == now))
                        .order_by(move.id)]

        if not await self._database.run(any_to_take):
            return []
        return await self._database.run(write)

    async def moves_from(self, name: str, home: str) -> list[Move]:
        """The downloads other nodes took from node ``name`` while it ran on the data dir
        ``home`` and was dead, oldest first (another data dir under the name has none of
        their data: they wait for that one).

        Raises:
            StoreError: the database cannot be read.
        """
        def query() -> list[Move]:
            move = self._database.tables.download_move
            return [Move(row.id, row.download_id, row.info_hash, row.from_node, row.from_home,
                         row.to_node, row.gid, row.directory)
                    for row in move.select().where((move.from_node == name)
                                                   & (move.from_home == home))
                    .order_by(move.id)]

        return await self._database.run(query)

    async def forget_moves(self, move_ids: Sequence[int]) -> None:
        """The dead node cleaned these up: forget them.

        Raises:
            StoreError: the database cannot be written.
        """
        def write() -> None:
            move = self._database.tables.download_move
            move.delete().where(move.id.in_(list(move_ids))).execute()

        await self._database.run(write)

    async def beat(self, name: str, epoch: int, figures: NodeFigures) -> bool:
        """Record a heartbeat; False when the name now belongs to a newer start (this
        process was replaced and must stop acting as the node).

        Raises:
            StoreError: the database cannot be written.
        """
        def write() -> int:
            database = self._database.db
            node = self._database.tables.node
            now = engine_of(database).clock(database)
            return (node.update(last_seen=now, slots_used=figures.slots_used,
                                slots_total=figures.slots_total, free_disk=figures.free_disk,
                                downloads=figures.downloads)
                    .where((node.name == name) & (node.epoch == epoch)).execute())

        return await self._database.run(write) == 1

    async def leave(self, name: str, epoch: int) -> None:
        """Say that this start of the node stopped cleanly (not when it was replaced).

        Raises:
            StoreError: the database cannot be written.
        """
        def write() -> None:
            database = self._database.db
            node = self._database.tables.node
            now = engine_of(database).clock(database)
            (node.update(left_at=now, last_seen=now, slots_used=0)
             .where((node.name == name) & (node.epoch == epoch)).execute())

        await self._database.run(write)

    async def get(self, name: str) -> NodeRecord | None:
        """The node of that name, None when none ever joined.

        Raises:
            StoreError: the database cannot be read.
        """
        return next((record for record in await self.all() if record.name == name), None)

    async def all(self) -> list[NodeRecord]:
        """Every node ever joined, by name.

        Raises:
            StoreError: the database cannot be read.
        """
        def query() -> list[NodeRecord]:
            database = self._database.db
            node = self._database.tables.node
            now = engine_of(database).clock(database)
            return [NodeRecord(
                name=row.name, version=row.version, started_at=row.started_at,
                last_seen=row.last_seen, left_at=row.left_at,
                figures=NodeFigures(row.slots_used, row.slots_total, row.free_disk,
                                    row.downloads),
                silent_for=max(0.0, now - row.last_seen),
            ) for row in node.select().order_by(node.name)]

        return await self._database.run(query)

