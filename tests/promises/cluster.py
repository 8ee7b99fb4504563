"""Three ariabot nodes on one PostgreSQL database: the world of the nodes' promises machine.

A :class:`Cluster` is a :class:`~tests.promises.world.Stack` whose one ariabot became three
``ariabot run`` processes (alpha, beta, gamma), each with its own data dir, aria2c, download
dir and link server, sharing one token, one fake Telegram, one rclone destination (a cloud
they all mirror to) and a database of their own on the test session's PostgreSQL server.
What a user does goes where a user's request would: Telegram to whichever node is the
front, ``ariabot …`` and the Mini App to one node after another (the one asked passes the
action to the node that holds the download). What the machine reads, it reads as an
outsider: the database's rows, each live node's aria2c, the disks.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg.rows import dict_row

from supervisor.control import ControlClient, NotRunning
from tests.pgserver import PostgresServer
from tests.promises.world import Stack
from tests.runner import AriabotRun, free_port, wait_until

__all__ = ["DEAD_AFTER", "NAMES", "Cluster", "Node"]

NAMES = ("alpha", "beta", "gamma")
DEAD_AFTER = 3.0
"""The nodes' heartbeat limit (seconds; they beat every half second)."""


@dataclass
class Node:
    """One ``ariabot run`` of the cluster and its folders."""

    name: str
    root: Path
    http_port: int = field(default_factory=free_port)
    run: AriabotRun | None = None
    aria2c_pid: int | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def up(self) -> bool:
        """Its process runs (a frozen one counts: it is there, only silent)."""
        return (self.run is not None and self.run.process is not None
                and self.run.process.poll() is None)

    def control(self, operation: str, **fields: Any) -> dict[str, Any]:
        return ControlClient(self.data / "control.sock", timeout=30).request(operation,
                                                                             **fields)


@dataclass
class Cluster(Stack):
    """One example's three nodes (see the module docstring)."""

    database: PostgresServer | None = None
    nodes: dict[str, Node] = field(init=False, default_factory=dict)
    _turns: itertools.count[int] = field(init=False, default_factory=itertools.count)

    def __post_init__(self) -> None:
        super().__post_init__()
        assert self.database is not None, "a cluster needs the session's PostgreSQL server"
        self.database_name = self.database.new_database()
        self.url = self.database.url(self.database_name)
        for name in NAMES:
            node = Node(name, self.root / name)
            node.downloads.mkdir(parents=True)
            self.nodes[name] = node

    def download_dirs(self) -> list[Path]:
        return [node.downloads for node in self.nodes.values()]

    # --- the processes -----------------------------------------------------------------------

    def node_env(self, node: Node) -> dict[str, str]:
        return {**self.env(),
                "ARIABOT_NODE_NAME": node.name,
                "ARIABOT_DATABASE_URL": self.url,
                "ARIABOT_NODE_DEAD_AFTER": str(DEAD_AFTER),
                "ARIABOT_DOWNLOAD_DIR": str(node.downloads),
                "ARIABOT_MAX_CONCURRENT": "3",
                "ARIABOT_PUBLIC_URL": f"http://127.0.0.1:{node.http_port}",
                "ARIABOT_HTTP_LISTEN": f"127.0.0.1:{node.http_port}"}

    def start(self) -> None:
        """Start the three nodes, one after another (the first becomes the front)."""
        for name in NAMES:
            self.start_node(name)

    def start_node(self, name: str) -> None:
        """Start a node and wait until its control socket and link server answer."""
        node = self.nodes[name]
        node.run = AriabotRun(node.data, self.node_env(node)).start()
        self.runs.append(node.run)
        node.aria2c_pid = node.run.wait_ready(60)["aria2c_pid"]
        wait_until(lambda: self._answers_on(node), 30, f"{name}'s control socket to answer")
        wait_until(lambda: self._serves_on(node.http_port), 30, f"{name}'s link server")

    @staticmethod
    def _answers_on(node: Node) -> bool:
        try:
            return bool(node.control("list").get("ok"))
        except (NotRunning, OSError):
            return False

    def up(self) -> list[Node]:
        """The nodes whose process runs, in name order."""
        return [node for node in self.nodes.values() if node.up]

    def down(self) -> set[str]:
        """The names of the nodes that do not run."""
        return {node.name for node in self.nodes.values() if not node.up}

    def kill_node(self, name: str) -> None:
        """``kill -9`` of a node's ariabot; its aria2c, watching ariabot's pid, ends too (a
        machine lost): wait for that, so that no aria2c of a dead node downloads on."""
        node = self.nodes[name]
        assert node.run is not None and node.run.process is not None
        node.run.process.kill()
        node.run.process.wait(10)
        self.reap(name)

    def stop_node(self, name: str) -> None:
        """SIGTERM: the node stops, and stops its aria2c."""
        run = self.nodes[name].run
        assert run is not None
        run.signal(signal.SIGTERM)
        assert run.wait_exit(30) == 0, run.output[-3000:]
        self.reap(name)

    def reap(self, name: str) -> None:
        """A node whose process ended: its aria2c ends with it by itself (it watches
        ariabot's pid); then nothing of the node is left running."""
        node = self.nodes[name]
        pid = node.aria2c_pid

        def gone() -> bool:
            try:
                return pid is None or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True
        wait_until(gone, 30, f"{name}'s aria2c to end with its ariabot")
        assert node.run is not None
        node.run.stop()

    def kill_aria2c_of(self, name: str) -> None:
        """``kill -9`` of a node's aria2c: its supervisor must start another."""
        node = self.nodes[name]
        assert node.run is not None and node.aria2c_pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.aria2c_pid, signal.SIGKILL)
        node.aria2c_pid = node.run.wait_running(60, not_pid=node.aria2c_pid)["aria2c_pid"]

    def freeze(self, name: str) -> None:
        """SIGSTOP of a node's ariabot (its aria2c runs on)."""
        run = self.nodes[name].run
        assert run is not None
        run.signal(signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        run = self.nodes[name].run
        assert run is not None
        with contextlib.suppress(ProcessLookupError):
            run.signal(signal.SIGCONT)

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.run is not None:
                with contextlib.suppress(ProcessLookupError):
                    node.run.signal(signal.SIGCONT)
                node.run.stop()

    def close(self) -> None:
        super().close()
        assert self.database is not None
        with contextlib.suppress(psycopg.Error):
            self.database.drop_database(self.database_name)

    # --- asked of one node after another ------------------------------------------------------

    def _next_up(self) -> Node:
        up = self.up()
        assert up, "no node runs"
        return up[next(self._turns) % len(up)]

    def control(self, operation: str, **fields: Any) -> dict[str, Any]:
        return self._next_up().control(operation, **fields)

    def ask(self, name: str, operation: str, **fields: Any) -> dict[str, Any]:
        """Ask one node (``ariabot …`` on its machine)."""
        return self.nodes[name].control(operation, **fields)

    def web_port(self) -> int:
        return self._next_up().http_port

    # --- what is stored, and what each aria2c holds -------------------------------------------

    def rows(self, table: str = "downloads") -> list[dict[str, Any]]:
        """Every row of a table, as the database holds it now (a fresh connection: the
        machine may have restarted the server). Times as SQLite gives them: ISO text."""
        assert self.database is not None
        try:
            with psycopg.connect(self.url, row_factory=dict_row, autocommit=True,
                                 connect_timeout=10) as connection:
                found = connection.execute(f"SELECT * FROM {table}").fetchall()
        except psycopg.errors.UndefinedTable:
            return []
        return [{key: value.isoformat(" ") if hasattr(value, "isoformat") else value
                 for key, value in row.items()} for row in found]

    def aria2(self) -> list[dict[str, Any]] | None:
        """What every running node's aria2c holds (each entry's ``dir`` names its node's
        download dir), or None when one of them does not answer."""
        entries: list[dict[str, Any]] = []
        for node in self.up():
            held = self._aria2_of(node.data)
            if held is None:
                return None
            entries += held
        return entries

    @property
    def output(self) -> str:
        return "\n".join(f"--- {run.data_dir.parent.name}:\n{run.output}" for run in self.runs
                         if run.log_path.exists())
