"""The promises machine on three nodes sharing one PostgreSQL database (issue 25).

Every rule of :class:`~tests.promises.machine.PromisesMachine` plays on a
:class:`~tests.promises.cluster.Cluster`: a user's message reaches whichever node is the
front, ``ariabot …`` and the Mini App are asked of one node after another, so most actions
on a download are passed to the node that holds it (or refused with where it is). The
faults are a node's: ``kill -9`` (its aria2c ends with it: a machine lost) or SIGTERM, then
back later; ``kill -9`` of its aria2c; SIGSTOP past the heartbeat limit, then SIGCONT (it
goes on if nothing was taken from it, else finds out that its downloads moved and stops);
and PostgreSQL restarted under all of them (every connection lost: the store writes that
fail then must not lose anything).

The promises are the same, read per node: I1 over every node's download dir and the shared
destination; I3 between each row and the aria2c of its node (a row of a node that is down
is not compared; if it was unfinished and its node was killed or frozen out, it must be
running elsewhere within the bound: failover); I4 over every node's paths; I7 becomes: no
node is down but those the machine brought down, and every node that runs is listed online.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, ClassVar, cast

from hypothesis import strategies as st
from hypothesis.stateful import rule

from tests.pgserver import PostgresServer
from tests.promises.cluster import DEAD_AFTER, Cluster
from tests.promises.machine import (
    KNOWN_DEFECTS,
    RUNNING,
    UPLOADING,
    Knobs,
    PromisesMachine,
    Tally,
    pick,
)
from tests.promises.world import Catalog, LoopThread
from tests.runner import wait_until

__all__ = ["NodesMachine", "make_nodes_machine"]

UNFINISHED = frozenset({"queued", "metadata", "downloading", "paused"})
"""Row states a dead node's downloads are taken in (unless they had finished)."""


class NodesMachine(PromisesMachine):
    """The promises machine on a :class:`Cluster`; :func:`make_nodes_machine` binds it."""

    database: ClassVar[PostgresServer]

    def __init__(self) -> None:
        super().__init__()
        self.brought_down: set[str] = set()
        """Nodes the machine killed, stopped or froze out, and not back: no other node
        may be down."""
        self.stopped: set[str] = set()
        """Those stopped by SIGTERM: they said so, and keep their downloads (README,
        "Several machines": only a node not heard from is dead)."""

    def _world(self, root: Path) -> Cluster:
        return Cluster(root, self.telegram_loop, self.catalog, database=self.database)

    @property
    def cluster(self) -> Cluster:
        return cast(Cluster, self.stack)

    # --- rules: the nodes and their database --------------------------------------------------

    def _running(self, which: int) -> str:
        up = self.cluster.up()
        return up[which % len(up)].name

    @rule(how=pick(("kill-9", "sigterm", "kill-9-aria2c")), which=st.integers(0, 2))
    def restart(self, how: str, which: int) -> None:
        """A node's fault (``which`` picks one of those running): ``kill -9`` (its aria2c
        with it) or SIGTERM, and it stays down until :meth:`come_back`; or ``kill -9`` of
        its aria2c. One node always runs: the last one only has its aria2c killed."""
        name = self._running(which)
        if len(self.cluster.up()) < 2:
            how = "kill-9-aria2c"
        self._step(f"node {how}", name)
        if how == "kill-9-aria2c":
            self.cluster.kill_aria2c_of(name)
        elif how == "kill-9":
            self.cluster.kill_node(name)
            self.brought_down.add(name)
        else:
            self.cluster.stop_node(name)
            self.brought_down.add(name)
            self.stopped.add(name)
        self.disagree.clear()  # the bound starts again once the node is back or gone

    @rule(which=st.integers(0, 2))
    def freeze(self, which: int) -> None:
        """SIGSTOP of a node (not the last one running) until another node takes what it
        had unfinished (or, holding none, until it reads as offline), then SIGCONT: it goes
        on if nothing was taken, else finds out at its next heartbeat and stops (exit 1),
        its aria2c with it."""
        name = self._running(which)
        if len(self.cluster.up()) < 2:
            return
        self._step("node freeze", name)
        witness = next(node for node in self.cluster.up() if node.name != name)
        self.cluster.freeze(name)
        try:
            wait_until(lambda: self._state_of(name, witness.name) != "online"
                       and not self._unfinished_on(name), 30 + DEAD_AFTER,
                       f"{name} to be found dead and its downloads taken",
                       describe=lambda: self.cluster.output[-3000:])
        finally:
            self.cluster.thaw(name)
        node = self.cluster.nodes[name]
        wait_until(lambda: not node.up or self._state_of(name, witness.name) == "online",
                   30, f"{name}, woken, to stop or beat again",
                   describe=lambda: self.cluster.output[-3000:])
        if not node.up:
            assert node.run is not None and node.run.process is not None
            assert node.run.process.returncode == 1, node.run.output[-3000:]
            self.cluster.reap(name)
            self.brought_down.add(name)
        self.disagree.clear()

    def _state_of(self, name: str, asked: str) -> str | None:
        nodes = self.cluster.ask(asked, "nodes").get("nodes", [])
        return next((node["state"] for node in nodes if node["name"] == name), None)

    def _unfinished_on(self, name: str) -> list[int]:
        return [row["id"] for row in self.cluster.rows() if row["node"] == name
                and row["state"] in UNFINISHED and row["completed_at"] is None]

    @rule(which=st.integers(0, 2))
    def come_back(self, which: int) -> None:
        """A node that is down starts again (on its own data dir and disk): it must drop
        the downloads that moved meanwhile, and only their data."""
        down = sorted(self.cluster.down())
        if not down:
            return
        name = down[which % len(down)]
        self._step("node back", name)
        self.cluster.start_node(name)
        self.brought_down.discard(name)
        self.stopped.discard(name)
        self.disagree.clear()

    @rule(seconds=st.just(0.0))
    def store_write_fails(self, seconds: float) -> None:
        """PostgreSQL restarted under all nodes: every connection is lost, the writes under
        way fail; nothing may be lost, and every node must be online again after."""
        self._step("database restart")
        assert self.cluster.database is not None
        self.cluster.database.restart()
        wait_until(self._all_online, 30, "every node online again after the restart",
                   describe=lambda: self.cluster.output[-3000:])
        self.disagree.clear()

    def _all_online(self) -> bool:
        try:
            self._i7_one_node_online()
        except AssertionError:
            return False
        return True

    # --- the promises, per node ---------------------------------------------------------------

    def _i7_one_node_online(self) -> None:
        """No node is down but those the machine brought down; every node that runs is
        listed online by each of them, as itself by itself."""
        fallen = self.cluster.down() - self.brought_down
        assert not fallen, f"I7: {sorted(fallen)} stopped by itself:\n" + "\n".join(
            self.cluster.nodes[name].run.output[-2000:] for name in sorted(fallen)
            if self.cluster.nodes[name].run is not None)
        running = {node.name for node in self.cluster.up()}
        for name in sorted(running):
            listed = self.cluster.ask(name, "nodes")
            states = {node["name"]: (node["state"], node["this"])
                      for node in listed.get("nodes", [])}
            wrong = {other: states.get(other) for other in running
                     if states.get(other) != ("online", other == name)}
            assert not wrong, f"I7: {name} lists {wrong} (all of {states})"

    def _i3_row(self, row: dict[str, Any], theirs: list[dict[str, Any]],
                tag: str) -> str | None:
        node, state = row["node"], row["state"]
        if node in self.cluster.down():
            if state in UNFINISHED and row["completed_at"] is None and node not in self.stopped:
                return f"{tag} is stored {state} on node {node}, which is down"
            return None  # its aria2c is gone with it; its disk is checked (I3's disk part)
        if node is None and state == "paused":  # back in the queue, paused
            if any(e["status"] in ("active", "waiting", "paused") for e in theirs):
                return f"{tag} waits paused in the queue, yet aria2 holds it"
            return None
        return super()._i3_row(row, theirs, f"{tag} on node {node}")

    def _busy(self) -> list[str]:
        """A download on a node stopped, and a mirror of one on a node that is down, wait
        for that node: they are not under way."""
        down = self.cluster.down()
        rows = self.cluster.rows()
        held = {row["id"]: row["node"] for row in rows}
        busy = [f"- #{r['id']} {r['state']} on {r['node']}" for r in rows
                if r["state"] in RUNNING and r["node"] not in self.stopped]
        uploads = [f"- mirror of #{m['download_id']} {m['state']}"
                   for m in self.cluster.rows("mirrors") if m["state"] in UPLOADING
                   and held.get(m["download_id"]) not in down]
        return busy + uploads

    def _describe_busy(self) -> str:
        """With the nodes' last log lines about mirrors and takings (which node did what)."""
        lines = [line for line in self.cluster.output.splitlines()
                 if any(word in line for word in ("mirror", "rclone", "dead", "claim", "---"))]
        return "\n".join([super()._describe_busy(), "logs:", *lines[-60:]])


def make_nodes_machine(catalog: Catalog, root: Path, telegram_loop: LoopThread,
                       database: PostgresServer, knobs: Knobs = KNOWN_DEFECTS,
                       tally: Tally | None = None) -> type[NodesMachine]:
    """The nodes' machine bound to one swarm's catalog, a scratch folder, the fake
    Telegram's loop and the PostgreSQL server each example gets a database of."""
    return type("NodesPromises", (NodesMachine,), {
        "catalog": catalog, "root": root, "telegram_loop": telegram_loop, "knobs": knobs,
        "tally": tally or Tally(), "numbers": itertools.count(1), "database": database,
        "__module__": __name__})
