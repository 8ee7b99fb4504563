"""What every benchmark shares: results, the run context, counters and small measuring tools."""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psutil
import psycopg
import urllib3.connection

from supervisor.config import Settings, load_settings
from supervisor.control import ControlClient
from supervisor.layout import StateLayout
from tests.runner import AriabotRun
from tests.swarm import Swarm, free_listen_port, free_port, magnet_uri

if TYPE_CHECKING:
    from tests.integration.conftest import Engine

__all__ = [
    "MIB",
    "BenchContext",
    "BenchResult",
    "DeadDownload",
    "DiskWatch",
    "RequestCounter",
    "Row",
    "bench_settings",
    "closed_tracker",
    "cost_ratio",
    "counting_connections",
    "dead_downloads",
    "dead_magnet",
    "insert_rows",
    "median",
    "percentile",
    "rss",
    "seed_engine",
    "speed_ratio",
    "start_ariabot",
    "wait_for",
]

MIB = 1024 * 1024
T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One line of the results table.

    ``ratio`` is always oriented so that bigger is better for ariabot: ``reference/ariabot``
    for costs (how many times cheaper), ``ariabot/reference`` for speeds.
    """

    benchmark: str
    metric: str
    ariabot: float | None
    reference: float | None = None
    unit: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class BenchResult:
    """What one benchmark measured: table rows, every raw figure, and what it could not do."""

    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)
    """What this benchmark could not measure, each with the reason."""


class BenchContext:
    """One run of the benchmarks: mode, a scratch folder on one disk, a shared local swarm.

    Parameters:
        workdir: scratch space; everything (swarm content, downloads, data dirs) goes below
            it, so raw aria2c and ariabot read and write the same disk.
        smoke: shrink sizes and repetitions (CI mode).
    """

    def __init__(self, workdir: Path, *, smoke: bool) -> None:
        self.workdir = workdir
        self.smoke = smoke
        self._swarm: Swarm | None = None

    def pick(self, full: T, smoke: T) -> T:
        """``smoke`` in smoke mode, ``full`` otherwise."""
        return smoke if self.smoke else full

    def path(self, *parts: str) -> Path:
        """A fresh, empty folder below the work dir."""
        folder = self.workdir.joinpath(*parts)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    @property
    def swarm(self) -> Swarm:
        """The local swarm (tracker + seeding aria2c), started on first use."""
        if self._swarm is None:
            self._swarm = Swarm(self.workdir / "swarm").start()
        return self._swarm

    def close(self) -> None:
        """Stop the swarm if it was started."""
        swarm, self._swarm = self._swarm, None
        if swarm is not None:
            swarm.stop()


# --- numbers -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median (``nan`` for no values)."""
    return percentile(values, 50)


def cost_ratio(reference: float | None, ariabot: float | None) -> float | None:
    """How many times cheaper ariabot is (``reference / ariabot``); ``inf`` when it costs 0."""
    if reference is None or ariabot is None:
        return None
    if ariabot == 0:
        return math.inf if reference > 0 else 1.0
    return reference / ariabot


def speed_ratio(ariabot: float | None, reference: float | None) -> float | None:
    """ariabot's speed as a fraction of the reference's."""
    if reference is None or ariabot is None or reference == 0:
        return None
    return ariabot / reference


# --- settings and sources ------------------------------------------------------------------


def bench_settings(data_dir: Path, **env: str) -> Settings:
    """ariabot settings for an in-process engine: loopback only, a free BT port."""
    return load_settings(None, {
        "ARIABOT_DATA_DIR": str(data_dir),
        "ARIABOT_ENABLE_DHT": "false",
        "ARIABOT_LISTEN_PORT": str(free_listen_port()),
        **env,
    })


def closed_tracker() -> str:
    """An announce URL on a loopback port nothing listens on: every announce is refused."""
    return f"http://127.0.0.1:{free_port()}/announce"


def dead_magnet(tracker_url: str, index: int) -> str:
    """A magnet of a random info-hash nobody has: it stays in its metadata phase for ever."""
    return magnet_uri(secrets.token_hex(20), f"bench-{index:05d}", tracker_url)


@dataclass(frozen=True)
class DeadDownload:
    """One dead magnet as a stored row would hold it (with the GID aria2 gives or restores)."""

    info_hash: str
    name: str
    magnet: str
    gid: str


def dead_downloads(tracker_url: str, start: int, count: int) -> list[DeadDownload]:
    """``count`` dead magnets numbered from ``start``, each with a fresh 16-hex-digit GID."""
    found = []
    for index in range(start, start + count):
        info_hash, name = secrets.token_hex(20), f"bench-{index:05d}"
        found.append(DeadDownload(info_hash, name, magnet_uri(info_hash, name, tracker_url),
                                  secrets.token_hex(8)))
    return found


def insert_rows(database: Path | str, downloads: Sequence[DeadDownload], *, chat_id: int,
                directory: Path, state: str = "queued") -> None:
    """Insert rows for ``downloads`` straight into an opened (migrated) store, in one
    transaction: a SQLite file, or a ``postgresql://`` URL (the same SQL through psycopg).

    10,000 ``store.downloads.create`` calls take about 8 s (one commit each); the benchmarks that
    need 10,000 rows in the store seed it this way, with every column a row added through
    :meth:`TorrentManager.add` would have (a magnet before its metadata: no size yet).
    """
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    rows = [(d.info_hash, chat_id, 1, None, d.name, "magnet", d.magnet.encode(), str(directory),
             d.gid, state, 0, 0, 0, 0, 0, 0, 0, None, None, now, now, None) for d in downloads]
    insert = ('INSERT INTO "downloads" (info_hash, chat_id, user_id, message_id, name, '
              'source_kind, source, directory, gid, state, total_bytes, completed_bytes, '
              'upload_bytes, download_speed, upload_speed, seeders, peers, error, '
              'selected_files, created_at, updated_at, completed_at) '
              f'VALUES ({", ".join(["?"] * 22)})')
    if isinstance(database, str):  # a postgresql:// URL; the block commits on success
        with psycopg.connect(database) as pg, pg.cursor() as cursor:
            cursor.executemany(insert.replace("?", "%s"), rows)
        return
    connection = sqlite3.connect(database)
    try:
        with connection:
            connection.executemany(insert, rows)
    finally:
        connection.close()


async def seed_engine(engine: Engine, downloads: Sequence[DeadDownload], *, chat_id: int,
                      directory: Path, batch: int = 500) -> None:
    """Give a running engine's aria2c and manager many dead magnets, fast.

    aria2 gets them in ``system.multicall`` batches of ``aria2.addUri`` (with the GIDs of
    ``downloads``: the ``gid`` option), the store gets their rows in one transaction
    (:func:`insert_rows`), and the manager tracks them (``LiveDownloads.remember``, as
    ``TorrentManager.add`` does): the same state as that many adds, minus the activity log
    and the ``TorrentAdded`` events, in seconds instead of minutes.
    """
    for start in range(0, len(downloads), batch):
        answers = await engine.rpc.multicall([
            ("aria2.addUri", [[d.magnet], {"dir": str(directory), "gid": d.gid}])
            for d in downloads[start:start + batch]])
        refused = [a for a in answers if not isinstance(a, str)]
        if refused:
            raise RuntimeError(f"aria2 refused {len(refused)} dead magnets: {refused[0]}")
    insert_rows(engine.settings.database_url or engine.layout.database, downloads,
                chat_id=chat_id, directory=directory, state="metadata")
    wanted = {d.gid for d in downloads}
    for record in await engine.store.downloads.list(states=["metadata"]):
        if record.gid in wanted:
            engine.manager.live.remember(record)


# --- counting HTTP requests and TCP connections --------------------------------------------


class RequestCounter:
    """Counts the HTTP requests one JSON-RPC client sends, and the TCP connections it opens.

    Wrap the client's ``post`` (the single method aria2p's ``Client`` sends every request
    through); connections are counted by :func:`counting_connections` while a wrapped
    ``post`` runs on that thread.
    """

    def __init__(self) -> None:
        self.requests = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def wrap(self, post: Callable[[str], Any]) -> Callable[[str], Any]:
        """Return a counting ``post``; set it on the client instance."""
        def counted(payload: str) -> Any:
            with self._lock:
                self.requests += 1
            self._local.active = True
            try:
                return post(payload)
            finally:
                self._local.active = False

        return counted

    def connected(self) -> None:
        """Called for every new TCP connection made in this process."""
        if getattr(self._local, "active", False):
            with self._lock:
                self.connections += 1

    def snapshot(self) -> tuple[int, int]:
        """``(requests, connections)`` so far."""
        with self._lock:
            return self.requests, self.connections


@contextlib.contextmanager
def counting_connections(*counters: RequestCounter) -> Iterator[None]:
    """Tell ``counters`` about every TCP connection urllib3 opens inside the block."""
    original = urllib3.connection.HTTPConnection.connect

    def connect(self: urllib3.connection.HTTPConnection) -> None:
        for counter in counters:
            counter.connected()
        original(self)

    urllib3.connection.HTTPConnection.connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        urllib3.connection.HTTPConnection.connect = original  # type: ignore[method-assign]


# --- processes and disks -------------------------------------------------------------------


def rss(pid: int) -> int:
    """Resident set size of a process, in bytes."""
    return int(psutil.Process(pid).memory_info().rss)


def start_ariabot(data_dir: Path, env: dict[str, str] | None = None,
                  ) -> tuple[AriabotRun, dict[str, Any], ControlClient]:
    """Start ``ariabot run`` (tests.runner) and wait until aria2c runs and the control socket
    listens (runtime.json says "running" a moment before the socket exists)."""
    ariabot = AriabotRun(data_dir, env).start()
    try:
        info = ariabot.wait_running(timeout=60)
        socket = StateLayout(data_dir).control_socket
        wait_for(socket.exists, timeout=30, what="ariabot's control socket")
    except BaseException:
        ariabot.stop()
        raise
    return ariabot, info, ControlClient(socket)


def wait_for(predicate: Callable[[], T], *, timeout: float, what: str,
             interval: float = 0.02) -> T:
    """Poll ``predicate`` until it is truthy; return its value (TimeoutError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class DiskWatch:
    """Watches the bytes written under a folder, to time a download's data phase.

    Every ``interval`` seconds it sums the *allocated* size (``st_blocks``) of the files below
    ``folder`` (aria2's ``.aria2`` control files and saved ``.torrent`` files aside), so a
    sparse file counts only what was written. ``first_byte`` is when data first appeared,
    ``full`` when ``total`` bytes were there. The same observer watches every contestant.
    """

    def __init__(self, folder: Path, total: int, interval: float = 0.01) -> None:
        self.folder = folder
        self.total = total
        self.interval = interval
        self.first_byte: float | None = None
        self.full: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-watch", daemon=True)

    def start(self) -> DiskWatch:
        """Start watching."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching, with one last look (the end may fall between two polls)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self.full is None and self._allocated() >= self.total:
            self.full = time.monotonic()
            if self.first_byte is None:
                self.first_byte = self.full

    @property
    def data_seconds(self) -> float | None:
        """Seconds from the first byte on disk to the last."""
        if self.first_byte is None or self.full is None:
            return None
        return self.full - self.first_byte

    def _allocated(self) -> int:
        total = 0
        for root, _dirs, files in os.walk(self.folder):
            for name in files:
                if name.endswith((".aria2", ".torrent")):
                    continue
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(root, name)).st_blocks * 512  # noqa: PTH116,PTH118
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            written = self._allocated()
            now = time.monotonic()
            if written > 0 and self.first_byte is None:
                self.first_byte = now
            if written >= self.total:
                self.full = now
                return
            self._stop.wait(self.interval)
