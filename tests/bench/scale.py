"""Benchmark 8: ``ariabot run`` with 10,000 stored downloads (smoke: 100).

The data dir is prepared as a restart would find it: N dead magnets (random info-hashes, the
only tracker a closed loopback port) stored as queued rows (inserted in one transaction,
:func:`~tests.bench.common.insert_rows`) and listed, with the same GIDs, in aria2's session
file, which aria2c restores at start (50 fetching metadata, the rest waiting). Then:

*start-up*: a real ``ariabot run`` (local mode, a 1 s poll) timed from its spawn to
``runtime.json`` saying running (aria2c restored the session and answers) and to the control
socket's first answer: the socket opens after ``TorrentManager.start`` loaded the N rows and
reconciled them with aria2's N downloads, so that figure includes the reconcile.

*memory*: ariabot's RSS (and aria2c's) a few polls later, with N tracked downloads; the
reference is an ``ariabot run`` on an empty data dir.

*the control socket* (``ariabot list``'s protocol): time per ``list`` (N rows), per ``status
<id>`` (one row) and per ``health``; and the ``ariabot list`` command itself (a new Python
process, N lines printed), next to ``ariabot status <id>`` (the same process, one row).

*the bot's /status rendering path*: what the ``/status`` handler runs before it replies,
``TorrentManager.list(chat, limit=STATUS_LIMIT)`` and ``status_view``, in this process on the
same database (a manager that is not started: its rows are read from the store, which is
what the handler costs; the running ariabot keeps its own copy).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bot.handlers.commands import STATUS_LIMIT
from bot.views import status_view
from manager import Aria2Endpoint, Aria2Rpc, ManagerConfig, TorrentManager
from manager.store import Store
from supervisor.control import ControlClient, NotRunning
from supervisor.layout import StateLayout, write_private
from tests.bench.common import (
    MIB,
    BenchContext,
    BenchResult,
    Row,
    closed_tracker,
    cost_ratio,
    dead_downloads,
    insert_rows,
    median,
    rss,
    start_ariabot,
    wait_for,
)
from tests.runner import AriabotRun
from tests.swarm import free_port

__all__ = ["NAME", "TITLE", "run"]

NAME = "scale"
TITLE = "8. 10,000 stored downloads"
CHAT = 4242
ENV = {"ARIABOT_MAX_CONCURRENT": "50", "ARIABOT_BT_STOP_TIMEOUT": "0",
       "ARIABOT_SEED_TIME": "0", "ARIABOT_PROGRESS_INTERVAL": "1"}
STARTUP_TARGET = 5.0
"""Seconds from spawn to a reconciled ariabot (issue 16)."""
RSS_TARGET = 150.0
"""MiB of ariabot's RSS with 10,000 tracked downloads (issue 16)."""


def _prepare(data_dir: Path, count: int) -> Path:
    """A data dir holding ``count`` stored downloads and an aria2 session that lists them."""
    layout = StateLayout(data_dir)
    layout.create()
    asyncio.run(_migrate(layout.database))
    folder = data_dir / "downloads" / "torrents" / str(CHAT)
    folder.mkdir(parents=True, mode=0o700)
    downloads = dead_downloads(closed_tracker(), 0, count)
    insert_rows(layout.database, downloads, chat_id=CHAT, directory=folder, state="queued")
    write_private(layout.session, "".join(f"{d.magnet}\n gid={d.gid}\n dir={folder}\n"
                                          for d in downloads))
    return layout.database


async def _migrate(database: Path) -> None:
    store = Store(f"sqlite:///{database}")
    await store.open()  # creates the schema, as the first ariabot run does
    await store.close()


def _timed_start(data_dir: Path) -> tuple[AriabotRun, ControlClient, dict[str, Any]]:
    """Start ``ariabot run``; time aria2c ready and the first answer of the control socket."""
    ariabot = AriabotRun(data_dir, ENV)
    socket = StateLayout(data_dir).control_socket
    client = ControlClient(socket, timeout=60)
    started = time.monotonic()
    ariabot.start()
    try:
        info = ariabot.wait_running(timeout=120)
        ready = time.monotonic() - started

        def answers() -> bool:
            if not socket.exists():
                return False
            try:
                return bool(client.request("health").get("ok"))
            except (NotRunning, OSError):
                return False

        wait_for(answers, timeout=120, what="ariabot's control socket", interval=0.005)
        reconciled = time.monotonic() - started
    except BaseException:
        ariabot.stop()
        raise
    return ariabot, client, {"aria2_ready_s": ready, "reconciled_s": reconciled,
                             "ariabot_pid": info["ariabot_pid"],
                             "aria2c_pid": info["aria2c_pid"]}


def _per_call(function: Any, repeat: int) -> float:
    """Median seconds of ``function()``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return median(times)


def _cli(data_dir: Path, *args: str, repeat: int) -> tuple[float, int]:
    """Run an ``ariabot`` local command as a user would: (median seconds, lines printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARIABOT_")}
    times, lines = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "supervisor", *args], capture_output=True,
                              text=True, check=True, timeout=120,
                              env={**env, "ARIABOT_DATA_DIR": str(data_dir)})
        times.append(time.perf_counter() - started)
        lines = len(done.stdout.splitlines())
    return median(times), lines


async def _status_path(database: Path, download_dir: Path, repeat: int) -> dict[str, float]:
    """What the /status handler costs before it replies, on this database."""
    store = Store(f"sqlite:///{database}")
    await store.open()
    rpc = Aria2Rpc(Aria2Endpoint(free_port(), "unused"), timeout=1)  # never called here
    manager = TorrentManager(rpc, store, ManagerConfig(download_dir=download_dir))
    try:
        listed, rendered, texts = [], [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            torrents = await manager.list(CHAT, limit=STATUS_LIMIT)
            middle = time.perf_counter()
            text, _markup = status_view(torrents, 0)
            listed.append(middle - started)
            rendered.append(time.perf_counter() - middle)
            texts = len(text)
        return {"list_s": median(listed), "view_s": median(rendered),
                "total_s": median(listed) + median(rendered), "rows": len(torrents),
                "text_chars": texts}
    finally:
        await rpc.close()
        await store.close()


def _idle_rss(ctx: BenchContext) -> float | None:
    """RSS (MiB) of an ``ariabot run`` with nothing stored, a few polls after its start."""
    ariabot, info, _client = start_ariabot(ctx.path("scale", "empty") / "data", ENV)
    try:
        time.sleep(3.0)
        return rss(info["ariabot_pid"]) / MIB
    finally:
        ariabot.stop()


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring)."""
    result = BenchResult()
    count = ctx.pick(10_000, 100)
    repeat = ctx.pick(5, 2)
    data_dir = ctx.path("scale", "full") / "data"
    started = time.monotonic()
    database = _prepare(data_dir, count)
    prepared = time.monotonic() - started
    ariabot, client, start = _timed_start(data_dir)
    try:
        output_ok = f"reconciled {count} unfinished download(s)" in ariabot.output
        time.sleep(ctx.pick(3.0, 0.5))  # a few polls (one second apart) over all of them
        ariabot_rss = rss(start["ariabot_pid"]) / MIB
        aria2c_rss = rss(start["aria2c_pid"]) / MIB
        listed = len(client.request("list")["torrents"])
        control = {
            "list_s": _per_call(lambda: client.request("list"), repeat),
            "list_chat_s": _per_call(lambda: client.request("list", chat=CHAT), repeat),
            "status_s": _per_call(lambda: client.request("status", id=count // 2), repeat * 4),
            "health_s": _per_call(lambda: client.request("health"), repeat * 4),
            "listed": listed,
        }
        list_s, lines = _cli(data_dir, "list", repeat=ctx.pick(3, 1))
        status_s = (None if ctx.smoke  # the reference: a process start, not the N rows
                    else _cli(data_dir, "status", str(count // 2), repeat=3)[0])
        cli = {"list_s": list_s, "status_s": status_s, "list_lines": lines}
        status = asyncio.run(_status_path(database, data_dir / "downloads", repeat * 4))
    finally:
        ariabot.stop()
    idle = _idle_rss(ctx) if not ctx.smoke else None
    if ctx.smoke:
        result.not_measured.append("RSS of an empty ariabot and `ariabot status <id>` "
                                   "(full mode only)")
    result.figures.update(downloads=count, prepare_seconds=prepared, startup=start,
                          reconcile_logged=output_ok, rss_mib=ariabot_rss,
                          aria2c_rss_mib=aria2c_rss, idle_rss_mib=idle, control=control,
                          cli=cli, status_path=status,
                          how=("store rows inserted in one transaction and the same GIDs in "
                               "aria2's session file; ariabot run restores and reconciles"))
    ms = 1000
    result.rows += [
        Row(NAME, f"start-up, {count} stored (spawn → reconciled)", start["reconciled_s"],
            unit="s", target=f"<{STARTUP_TARGET:g} s",
            met=start["reconciled_s"] < STARTUP_TARGET and output_ok),
        Row(NAME, "  of which spawn → aria2c ready", start["aria2_ready_s"], unit="s"),
        Row(NAME, f"RSS, {count} tracked (ref: empty)", ariabot_rss, idle, "MiB",
            target=f"≤{RSS_TARGET:g} MiB", met=ariabot_rss <= RSS_TARGET),
        Row(NAME, f"  aria2c RSS, {count} downloads", aria2c_rss, unit="MiB"),
        Row(NAME, f"control list ({listed} rows) / call", control["list_s"] * ms,
            control["health_s"] * ms, "ms", cost_ratio(control["health_s"], control["list_s"]),
            note="reference: health"),
        Row(NAME, "control list --chat / call", control["list_chat_s"] * ms, unit="ms"),
        Row(NAME, "control status <id> / call", control["status_s"] * ms,
            control["health_s"] * ms, "ms", cost_ratio(control["health_s"], control["status_s"]),
            note="reference: health"),
        Row(NAME, f"`ariabot list` ({lines} lines) / call", cli["list_s"] * ms,
            status_s * ms if status_s is not None else None, "ms",
            cost_ratio(status_s, cli["list_s"]),
            note="reference: `ariabot status <id>` (one row, same process start)"),
        Row(NAME, f"/status path ({status['rows']} of {count} rows) / call",
            status["total_s"] * ms, unit="ms"),
        Row(NAME, "  of which manager.list", status["list_s"] * ms, unit="ms"),
    ]
    result.notes.append("scale: reference of the control and CLI rows is the same path with "
                        "one row (health, status <id>): ratio <1 = what the N rows cost")
    return result
