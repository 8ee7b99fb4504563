"""Which downloads this node may act on: the ones its own aria2c and disk hold.

Every download row names its node (``downloads.node``), once a node claimed it: before, on
a database that nodes share, it waits in the queue (:mod:`manager.store.placements`) and is
nobody's. A node tracks, purges and changes only its own; another node's download is listed
but refused with where it is, before anything is done: its files are on another disk, its
GID in another aria2c.
"""

from __future__ import annotations

import dataclasses

from manager.errors import OnAnotherNode
from manager.models import Torrent, TorrentState
from manager.nodes.membership import NodeConfig
from manager.nodes.text import ago
from manager.store import DownloadRecord, NodeRecord, Store

__all__ = ["Ownership"]

_WAITING = "waiting for a node with a free slot and room for it"
"""Where a download is that no node claimed yet."""


class Ownership:
    """This node's claim on the downloads.

    Parameters:
        store: the opened store (the other nodes' heartbeats).
        config: this node; None in tests of the manager without a node, where every
            download is this process's.
    """

    def __init__(self, store: Store, config: NodeConfig | None) -> None:
        self._store = store
        self._config = config

    @property
    def node(self) -> str | None:
        """This node's name: the filter of its own rows (None: every row)."""
        return self._config.name if self._config else None

    def owns(self, record: DownloadRecord) -> bool:
        """``record`` is held here."""
        return self._here(record.node)

    def unplaced(self, record: DownloadRecord) -> bool:
        """``record`` waits for a node to claim it (:mod:`~manager.store.placements`): no
        aria2c and no disk has any of it yet."""
        return self._config is not None and record.node is None

    def _here(self, node: str | None) -> bool:
        return self._config is None or node == self._config.name

    async def check(self, record: DownloadRecord) -> None:
        """Refuse, with where it is, a download another node holds (one that no node
        claimed yet has nothing anywhere: what reads it finds nothing).

        Raises:
            OnAnotherNode: another node holds it.
            StoreError: the database cannot be read.
        """
        if self.owns(record) or record.node is None:
            return
        held = await self._store.nodes.get(record.node)
        raise OnAnotherNode(f"#{record.id} is {self._where(record.node, held)}; only that "
                            "node has it", node=record.node, online=self._online(held))

    async def place(self, torrents: list[Torrent]) -> list[Torrent]:
        """The same snapshots, those another node holds with where they are
        (:attr:`~manager.models.Torrent.elsewhere`); one query when there are any.

        Raises:
            StoreError: the database cannot be read.
        """
        if all(self._here(t.node) for t in torrents):
            return torrents
        if all(self._here(t.node) or t.node is None for t in torrents):
            nodes = {}  # none of another node: nothing to read
        else:
            nodes = {record.name: record for record in await self._store.nodes.all()}
        return [t if self._here(t.node) else self._placed(t, nodes.get(t.node or ""))
                for t in torrents]

    def _placed(self, torrent: Torrent, held: NodeRecord | None) -> Torrent:
        """Another node's download with where it is; one whose node is not heard from
        moves no more, whatever its node last stored (its speeds, its peers)."""
        if torrent.node is None:  # waiting, unless it is paused or was cancelled meanwhile
            waits = torrent.state in (TorrentState.QUEUED, TorrentState.METADATA)
            return dataclasses.replace(torrent, elsewhere=_WAITING) if waits else torrent
        placed = dataclasses.replace(torrent, elsewhere=self._where(torrent.node, held))
        if self._online(held):
            return placed
        return dataclasses.replace(placed, download_speed=0, upload_speed=0, seeders=0,
                                   peers=0, unreachable=True)

    def _online(self, held: NodeRecord | None) -> bool:
        assert self._config is not None
        return (held is not None and held.left_at is None
                and held.silent_for <= self._config.dead_after)

    def _where(self, name: str, held: NodeRecord | None) -> str:
        """``on node alpha, stopped 3 min ago`` and the like."""
        assert self._config is not None
        if held is None:
            state = "which never joined this database"
        elif held.left_at is not None:
            state = f"stopped {ago(held.silent_for)}"
        elif not self._online(held):
            state = f"offline, last heard from {ago(held.silent_for)}"
        else:
            return f"on node {name}"  # online: its news and figures come from there
        return f"on node {name}, {state}"
