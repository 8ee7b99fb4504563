"""One node's membership of its database: join, heartbeat, leave, and the list of nodes.

The heartbeat is what other nodes (and ``ariabot nodes``) know of this one: a node silent
for ``dead_after`` seconds is dead. A node that joins takes the unfinished downloads of the
dead ones (failover, :meth:`~manager.store.nodes.Nodes.take_over`) and raises their epochs.
Each heartbeat checks that this process still holds its name (its epoch): one frozen
(SIGSTOP, a suspended VM, a partition) while a newer start took the name, or another node
its downloads, sets :attr:`Membership.replaced`, and the supervisor stops it before it acts
again. Until then, the store refuses its download writes (the epoch fences them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from manager.aria2 import Aria2Rpc
from manager.errors import Aria2Error, NodeReplaced, StoreError
from manager.files import free_bytes
from manager.store import Move, NodeFigures, NodeRecord, Store

__all__ = ["Membership", "NodeConfig", "NodeState", "NodeStatus"]

log = logging.getLogger(__name__)

_BEATS_PER_LIMIT = 6
"""Heartbeats within ``dead_after``: five may be lost before a node reads as offline."""

_RETRY_AFTER = 1.0
"""Seconds before a heartbeat the database refused is tried again (at most a period): a
busy database must not cost a live node more of its limit than it has to."""


@dataclass(frozen=True)
class NodeConfig:
    """Who this node is.

    Attributes:
        name: the node's name, unique on its database (the host name by default).
        home: the random id of this node's data dir (see :class:`~manager.store.nodes.Nodes`).
        version: ariabot's version, shown in ``ariabot nodes``.
        slots: downloads that run at once (aria2's ``max-concurrent-downloads``).
        dead_after: seconds without a heartbeat after which a node is offline.
    """

    name: str
    home: str
    version: str
    slots: int
    dead_after: float = 30.0

    @property
    def beat_interval(self) -> float:
        """Seconds between two heartbeats."""
        return self.dead_after / _BEATS_PER_LIMIT


class NodeState(Enum):
    ONLINE = "online"
    STOPPED = "stopped"
    """Left cleanly (``ariabot`` stopped on request)."""
    OFFLINE = "offline"
    """Silent for longer than ``dead_after`` without leaving: killed, frozen or cut off."""


@dataclass(frozen=True)
class NodeStatus:
    """A node as ``ariabot nodes`` and ``/nodes`` show it."""

    name: str
    version: str
    state: NodeState
    silent_for: float
    """Seconds since its last heartbeat (or since it stopped)."""
    figures: NodeFigures
    this: bool
    """The node that answers."""


class Membership:
    """Joins the database, beats, and leaves.

    Parameters:
        store: the opened store.
        rpc: this node's aria2c (its busy slots).
        config: this node.
        download_dir: where its downloads go (its free space).
        folder_of: a chat's folder here, made when missing (where a download taken from a
            dead node starts again).
        disk_usage: ``psutil.disk_usage``-like function (injected by tests); None for psutil.
    """

    def __init__(self, store: Store, rpc: Aria2Rpc, config: NodeConfig, download_dir: Path, *,
                 folder_of: Callable[[int], Path],
                 disk_usage: Callable[[str], object] | None = None) -> None:
        self._store = store
        self._rpc = rpc
        self.config = config
        self._download_dir = download_dir
        self._folder_of = folder_of
        self._disk_usage = disk_usage
        self._epoch: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_taken: Callable[[list[int]], Awaitable[None]] | None = None
        self._handing: set[asyncio.Task[None]] = set()
        self.replaced = asyncio.Event()
        """Set when a newer start holds this node's name: stop acting as the node."""

    async def join(self) -> None:
        """Take this node's name on the database, and the unfinished downloads of the dead
        nodes (their rows are this node's now, without a GID: the reconcile at start adds
        them to aria2c); beat every :attr:`NodeConfig.beat_interval` seconds from now on (a
        start-up that takes longer than ``dead_after``, aria2c restoring 100,000 downloads,
        must not read as dead). From here on, the store writes downloads only while this
        start holds the name.

        Raises:
            NodeConflict: the name, or the database, is held by another live node.
            StoreError: the database cannot be written.
        """
        config = self.config
        self._epoch = epoch = await self._store.nodes.join(
            config.name, config.home, config.version, config.dead_after, slots=config.slots)
        self._store.database.hold(config.name, epoch)
        log.info("node %r joined its database", config.name)
        self._task = asyncio.create_task(self._beat(epoch), name="node heartbeat")
        await self._take_over(epoch)

    def watch_for_dead(self, on_taken: Callable[[list[int]], Awaitable[None]]) -> None:
        """From now on, after each heartbeat, take the unfinished downloads of the nodes
        that died meanwhile, and hand their ids to ``on_taken`` (the manager tracks them).
        Whichever live node looks first takes them; the others find none left."""
        self._on_taken = on_taken

    async def _take_over(self, epoch: int) -> list[Move]:
        config = self.config
        taken = await self._store.nodes.take_over(
            config.name, epoch, config.dead_after, lambda chat: str(self._folder_of(chat)))
        where = ("back in the queue, for the node with a free slot" if self._store.shared
                 else "to this node")
        for node in sorted({move.from_node for move in taken}):
            ids = [f"#{move.download_id}" for move in taken if move.from_node == node]
            log.warning("node %r is dead (not heard from for %.0f s): its unfinished "
                        "download(s) %s go %s and start again from their source",
                        node, config.dead_after, ", ".join(ids), where)
        return taken

    async def _beat(self, epoch: int) -> None:
        failing = False
        interval = self.config.beat_interval
        clock = asyncio.get_running_loop().time
        heard_since = clock()  # since when this node's heartbeats land without a break
        while True:
            # A period, not a wait for anything; sooner after a beat the database refused.
            await asyncio.sleep(min(_RETRY_AFTER, interval) if failing else interval)
            try:
                held = await self._store.nodes.beat(self.config.name, epoch,
                                                    await self._figures())
            except StoreError as error:
                if not failing:
                    log.warning("the heartbeat cannot be written (%s); other nodes see this "
                                "one offline after %.0f s of it", error, self.config.dead_after)
                failing = True
                continue
            if failing:
                log.info("the heartbeat is written again")
                failing = False
                heard_since = clock()
            if not held:
                log.critical("node %r was replaced while this process was not heard from "
                             "(started again elsewhere, or its downloads taken by another "
                             "node); this one stops", self.config.name)
                self.replaced.set()
                return
            # Others are judged only once this node has been heard for a whole limit: after
            # an outage of the database every node's last heartbeat is as old as the
            # outage, and the first one back must not take the others' downloads.
            if self._on_taken is not None and clock() - heard_since >= self.config.dead_after:
                await self._look_for_dead(epoch, self._on_taken)

    async def _look_for_dead(self, epoch: int,
                             on_taken: Callable[[list[int]], Awaitable[None]]) -> None:
        """Take what the nodes that died since hold unfinished; a failure waits for the
        next beat (the downloads stay where they are meanwhile)."""
        try:
            taken = await self._take_over(epoch)
        except NodeReplaced:
            return  # the next heartbeat finds out, and says so
        except StoreError as error:
            log.warning("could not look for dead nodes' downloads (%s); trying again at the "
                        "next heartbeat", error)
            return
        if taken:  # tracked beside the heartbeat, which must not wait for the manager
            handing = asyncio.create_task(on_taken([move.download_id for move in taken]),
                                          name="downloads taken over")
            self._handing.add(handing)
            handing.add_done_callback(self._handing.discard)

    async def _figures(self) -> NodeFigures:
        """This node's room: aria2's busy slots (a seeding download holds one, as in aria2),
        the download dir's free space, and the downloads stored."""
        counts = await self._store.downloads.state_counts(node=self.config.name)
        try:
            stat = await self._rpc.call("aria2.getGlobalStat")
            used = int(stat["numActive"])
        except (Aria2Error, KeyError, TypeError, ValueError):
            used = 0  # aria2c restarting: nothing runs on it
        usage = (self._disk_usage,) if self._disk_usage else ()
        try:
            free = await asyncio.to_thread(free_bytes, self._download_dir, *usage)
        except OSError:
            free = 0  # the download dir is gone or unreadable: no room (adds say why)
        return NodeFigures(slots_used=used, slots_total=self.config.slots, free_disk=free,
                           downloads=sum(counts.values()))

    async def leave(self) -> None:
        """Stop beating and say the node stopped (unless it was replaced)."""
        for task in (self._task, *self._handing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._epoch is None or self.replaced.is_set():
            return
        try:
            await self._store.nodes.leave(self.config.name, self._epoch)
        except StoreError as error:
            log.warning("could not record that node %r stopped (%s); it reads as offline "
                        "until it starts again", self.config.name, error)

    async def nodes(self) -> list[NodeStatus]:
        """Every node of the database, by name.

        Raises:
            StoreError: the database cannot be read.
        """
        return [self._status(record) for record in await self._store.nodes.all()]

    def _status(self, record: NodeRecord) -> NodeStatus:
        if record.left_at is not None:
            state = NodeState.STOPPED
        elif record.silent_for > self.config.dead_after:
            state = NodeState.OFFLINE
        else:
            state = NodeState.ONLINE
        return NodeStatus(name=record.name, version=record.version, state=state,
                          silent_for=record.silent_for, figures=record.figures,
                          this=record.name == self.config.name)
