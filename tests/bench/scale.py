"""Benchmark 8: ``ariabot run`` with 10,000 and with 100,000 stored downloads on SQLite,
and 100,000 on PostgreSQL (smoke: 100 on each).

The data dir is prepared as a restart would find it (:mod:`tests.bench.restored`): N dead
magnets stored as queued rows and listed, with the same GIDs, in aria2's session file, which
aria2c restores at start (50 fetching metadata, the rest waiting). On PostgreSQL the rows go
to a fresh database of a throwaway server (:class:`tests.pgserver.PostgresServer`, started
for the part and stopped at its end), which ``ariabot run`` and the CLI reach through
``ARIABOT_DATABASE_URL``; its rows are marked ``[PostgreSQL]``. Then:

*start-up*: a real ``ariabot run`` (local mode, a 1 s poll) timed from its spawn to
``runtime.json`` saying running (aria2c restored the session and answers) and to the control
socket's first answer: the socket opens after ``TorrentManager.start`` loaded the N rows and
reconciled them with aria2's N downloads, so that figure includes the reconcile.

*memory*: ariabot's RSS (and aria2c's) a few polls later, with N tracked downloads; the
reference is an ``ariabot run`` on an empty data dir.

*the control socket* (``ariabot list``'s protocol): time per ``list`` page (LIST_PAGE rows),
every page walked (N rows), per ``status <id>`` (one row) and per ``health``; and the
``ariabot list`` command itself (a new Python process, N lines printed), next to ``ariabot
status <id>`` (the same process, one row).

*how long one request holds ariabot's event loop*: its slowest step (from one ``await`` to
the next: what a bot update or a control request queued behind it waits for), timed inside
ariabot (:mod:`tests.bench.stepmeter`) while ``ariabot list`` walks all N rows, while nothing
but the poll runs, and while a poll reads the whole queue; next to it, the slowest answer to
``health`` (next to nothing on the loop, one small query in the store's thread) that a thread
asked every 10 ms meanwhile: the same step plus the machine's scheduling. (Asked every 2 ms,
its queries contended with the loop for the GIL enough to lengthen the steps they measure:
a walk's slowest step 8 to 11 ms against 7 without them, in one probe on a busy machine.)

*the bot's /status rendering path*: what the ``/status`` handler runs before it replies,
``TorrentManager.status_page`` (its first and its last page) and ``status_view``, in this
process on the same database (a manager that is not started: its rows are read from the
store, as the handler's are), with this loop's lag sampled meanwhile (:mod:`looplag`).

``ariabot run`` runs with the product's health-probe timings
(:data:`~tests.bench.restored.RESTART_ENV`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bot.views import STATUS_PAGE_SIZE, status_view
from manager import Aria2Endpoint, Aria2Rpc, ManagerConfig, TorrentManager
from manager.store import Store
from supervisor.control import LIST_PAGE, ControlClient, list_torrents
from supervisor.layout import StateLayout
from tests.bench.common import (
    MIB,
    BenchContext,
    BenchResult,
    Row,
    cost_ratio,
    median,
    rss,
    start_ariabot,
)
from tests.bench.looplag import LoopLag
from tests.bench.restored import RESTART_ENV, prepare, store_url, timed_start
from tests.bench.stepmeter import slowest
from tests.pgserver import PostgresServer
from tests.swarm import free_port

__all__ = ["NAME", "TITLE", "run"]

NAME = "scale"
TITLE = "8. 10,000 and 100,000 stored downloads"
CHAT = 4242
STARTUP_TARGET = 5.0
"""Seconds from spawn to a reconciled ariabot with 10,000 stored (issue 16)."""
STARTUP_OVER_ARIA2 = 2.0
"""Seconds a reconciled ariabot may come after aria2c's own restore, with 100,000 (issue 24)."""
RSS_TARGETS = {10_000: 150.0, 100_000: 300.0}
"""MiB of ariabot's RSS with N tracked downloads (issues 16 and 24)."""
LOOP_HOLD_TARGET = 10.0
"""Milliseconds one request may hold the event loop (issue 24)."""


def _per_call(function: Any, repeat: int) -> float:
    """Median seconds of ``function()``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return median(times)


def _cli(data_dir: Path, database_url: str | None, *args: str,
         repeat: int) -> tuple[float, int]:
    """Run an ``ariabot`` local command as a user would: (median seconds, lines printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARIABOT_")}
    if database_url:
        env["ARIABOT_DATABASE_URL"] = database_url
    times, lines = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "supervisor", *args], capture_output=True,
                              text=True, check=True, timeout=120,
                              env={**env, "ARIABOT_DATA_DIR": str(data_dir)})
        times.append(time.perf_counter() - started)
        lines = len(done.stdout.splitlines())
    return median(times), lines


async def _status_path(database_url: str, download_dir: Path, repeat: int) -> dict[str, Any]:
    """What the /status handler costs before it replies, on this database: its first and
    its last page, and how long that held this loop."""
    store = Store(database_url)
    await store.open()
    rpc = Aria2Rpc(Aria2Endpoint(free_port(), "unused"), timeout=1)  # never called here
    manager = TorrentManager(rpc, store, ManagerConfig(download_dir=download_dir))
    lag = LoopLag()
    try:
        listed, rendered, texts, rows, pages = [], [], 0, 0, 0
        lag.start()
        for number in range(repeat):
            started = time.perf_counter()
            page = await manager.status_page(CHAT, 10**6 if number % 2 else 0, STATUS_PAGE_SIZE)
            middle = time.perf_counter()
            text, _markup = status_view(page)
            listed.append(middle - started)
            rendered.append(time.perf_counter() - middle)
            texts, rows, pages = len(text), page.total, page.pages
        held = await lag.stop()
        return {"list_s": median(listed), "view_s": median(rendered),
                "total_s": median(listed) + median(rendered), "rows": rows, "pages": pages,
                "text_chars": texts, "loop_lag_max_ms": held.max_ms,
                "loop_lag_p99_ms": held.p99_ms}
    finally:
        await rpc.close()
        await store.close()


def _slowest_page(client: ControlClient) -> float:
    """Seconds of the slowest ``list`` answer while every page is walked once."""
    slowest, before = 0.0, None
    while True:
        started = time.perf_counter()
        answer = client.request("list", **({"before": before} if before else {}))
        slowest = max(slowest, time.perf_counter() - started)
        before = answer["next"]
        if before is None:
            return slowest


@dataclass(frozen=True)
class _Hold:
    """How long ariabot's loop was held while an action ran (ms)."""

    step_ms: float
    """Its slowest step (:mod:`tests.bench.stepmeter`): the figure with the target."""
    step: str
    """What that step was."""
    quiet_step_ms: float
    """The slowest step of the same time before the action."""
    health_ms: float
    """The slowest ``health`` answer meanwhile: the step, and the machine's scheduling."""
    quiet_health_ms: float


def _loop_hold(socket: Path, steps: Path, during: Callable[[], object],
               quiet_s: float = 1.0) -> _Hold:
    """Run ``during()`` after ``quiet_s`` quiet seconds (the reference), and measure how long
    the loop was held by one step meanwhile, and how late ``health`` (asked every 10 ms) was
    answered; at most as long again is watched after it (a step that ends late)."""
    answers: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        client = ControlClient(socket, timeout=120)
        while not stop.is_set():
            started = time.perf_counter()
            client.request("health")
            answers.append(time.perf_counter() - started)
            time.sleep(0.01)

    thread = threading.Thread(target=probe, name="loop-hold probe")
    thread.start()
    try:
        started = time.monotonic()
        time.sleep(quiet_s)
        quiet, quiet_health = time.monotonic(), max(answers, default=0.0)
        answers.clear()
        during()
        time.sleep(min(quiet_s, time.monotonic() - started))
        ended = time.monotonic()
    finally:
        stop.set()
        thread.join()
    before, step = slowest(steps, started, quiet), slowest(steps, quiet, ended)
    return _Hold(step_ms=step.seconds * 1000 if step else 0.0, step=step.what if step else "",
                 quiet_step_ms=before.seconds * 1000 if before else 0.0,
                 health_ms=max(answers, default=0.0) * 1000, quiet_health_ms=quiet_health * 1000)


def _idle_rss(ctx: BenchContext) -> float | None:
    """RSS (MiB) of an ``ariabot run`` with nothing stored, a few polls after its start."""
    ariabot, info, _client = start_ariabot(ctx.path("scale", "empty") / "data", RESTART_ENV)
    try:
        time.sleep(3.0)
        return rss(info["ariabot_pid"]) / MIB
    finally:
        ariabot.stop()


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring) at each size."""
    result = BenchResult()
    counts = ctx.pick((10_000, 100_000), (100,))
    for count in counts:
        _one_size(ctx, count, result)
    with PostgresServer() as server:  # the largest size again, on PostgreSQL
        _one_size(ctx, counts[-1], result, server.url(server.new_database()))
    idle = _idle_rss(ctx) if not ctx.smoke else None
    if ctx.smoke:
        result.not_measured.append("RSS of an empty ariabot and `ariabot status <id>` "
                                   "(full mode only)")
    result.figures["idle_rss_mib"] = idle
    result.rows = [replace(row, reference=idle) if row.metric.startswith("RSS") else row
                   for row in result.rows]
    result.notes.append("scale: reference of the control and CLI rows is the same path with "
                        "one row (health, status <id>): ratio <1 = what the N rows cost")
    result.notes.append("scale: 'loop held' is the slowest step of ariabot's event loop while "
                        "the action ran, timed in ariabot (tests.bench.stepmeter); 'quiet' is "
                        "the same before it")
    return result


def _one_size(ctx: BenchContext, count: int, result: BenchResult,
              database_url: str | None = None) -> None:
    """``ariabot run`` with ``count`` stored downloads (on SQLite, or on the PostgreSQL
    database at ``database_url``): its rows and figures."""
    repeat = ctx.pick(5, 2)
    engine = "postgresql" if database_url else "sqlite"
    data_dir = ctx.path("scale", f"{count}-{engine}") / "data"
    started = time.monotonic()
    prepare(data_dir, count, chat_id=CHAT, database_url=database_url)
    prepared = time.monotonic() - started
    steps = data_dir.parent / "loop-steps.txt"
    ariabot, client, start = timed_start(data_dir, count, database_url=database_url,
                                         steps=steps)
    socket = StateLayout(data_dir).control_socket
    try:
        time.sleep(ctx.pick(3.0, 0.5))  # a few polls (one second apart) over all of them
        ariabot_rss = rss(start["ariabot_pid"]) / MIB
        aria2c_rss = rss(start["aria2c_pid"]) / MIB
        listed = sum(1 for _ in list_torrents(client))
        control = {
            "list_page_s": _per_call(lambda: client.request("list"), repeat * 4),
            "list_all_s": _per_call(lambda: sum(1 for _ in list_torrents(client)), repeat),
            "list_page_max_s": _slowest_page(client),
            "list_chat_s": _per_call(lambda: client.request("list", chat=CHAT), repeat * 4),
            "status_s": _per_call(lambda: client.request("status", id=count // 2), repeat * 4),
            "health_s": _per_call(lambda: client.request("health"), repeat * 4),
            "listed": listed,
        }
        # Smoke: 0.3 s of quiet before and after each action, not 1 s (4 s saved a size).
        quiet = ctx.pick(1.0, 0.3)
        cli_runs: list[tuple[float, int]] = []
        list_hold = _loop_hold(socket, steps, lambda: cli_runs.append(
            _cli(data_dir, database_url, "list", repeat=1)), quiet)
        list_s, lines = cli_runs[0]
        poll_hold = _loop_hold(socket, steps, lambda: time.sleep(ctx.pick(14.0, 1.0)), quiet)
        # A pause moves the queue: the next poll (1 s) reads all of it, page by page.
        sweep_hold = _loop_hold(socket, steps, lambda: (
            client.request("pause", id=count), time.sleep(ctx.pick(4.0, 2.0))), quiet)
        status_s = (None if ctx.smoke  # the reference: a process start, not the N rows
                    else _cli(data_dir, database_url, "status", str(count // 2), repeat=3)[0])
        cli = {"list_s": list_s, "status_s": status_s, "list_lines": lines}
        rss_after = rss(start["ariabot_pid"]) / MIB
        status = asyncio.run(_status_path(store_url(data_dir, database_url),
                                          data_dir / "downloads", repeat * 4))
    finally:
        ariabot.stop()
    held = {"list": asdict(list_hold), "idle_poll": asdict(poll_hold),
            "sweep": asdict(sweep_hold)}
    result.figures[f"{count}-{engine}"] = {
        "downloads": count, "engine": engine, "prepare_seconds": prepared, "startup": start,
        "rss_mib": ariabot_rss, "rss_after_list_mib": rss_after,
        "aria2c_rss_mib": aria2c_rss, "control": control, "cli": cli, "status_path": status,
        "loop_held": held,
        "how": ("store rows inserted in one transaction and the same GIDs in aria2's session "
                "file; ariabot run restores and reconciles")}
    ms, n = 1000, f"{count:,}"
    over_aria2 = start["reconciled_s"] - start["aria2_ready_s"]
    if count >= 100_000:
        startup_row = Row(NAME, f"start-up, {n} stored: reconciled after aria2c ready",
                          over_aria2, unit="s", target=f"≤{STARTUP_OVER_ARIA2:g} s",
                          met=over_aria2 <= STARTUP_OVER_ARIA2)
    else:
        startup_row = Row(NAME, f"start-up, {n} stored (spawn → reconciled)",
                          start["reconciled_s"], unit="s", target=f"<{STARTUP_TARGET:g} s",
                          met=start["reconciled_s"] < STARTUP_TARGET)
    rss_target = RSS_TARGETS.get(count)
    rows = [
        startup_row,
        Row(NAME, f"  {n}: spawn → aria2c ready (its own restore)", start["aria2_ready_s"],
            unit="s"),
        Row(NAME, f"  {n}: spawn → reconciled", start["reconciled_s"], unit="s"),
        Row(NAME, f"RSS, {n} tracked (ref: empty)", ariabot_rss, None, "MiB",
            target=f"≤{rss_target:g} MiB" if rss_target else "",
            met=ariabot_rss <= rss_target if rss_target else None),
        Row(NAME, f"  {n}: RSS after the list walks", rss_after, unit="MiB"),
        Row(NAME, f"  {n}: aria2c RSS", aria2c_rss, unit="MiB"),
        Row(NAME, f"control list page ({LIST_PAGE} of {listed}) / call",
            control["list_page_s"] * ms, control["health_s"] * ms, "ms",
            cost_ratio(control["health_s"], control["list_page_s"]), note="reference: health"),
        Row(NAME, f"  {n}: slowest page of a walk", control["list_page_max_s"] * ms, unit="ms"),
        Row(NAME, f"  {n}: every page walked / call", control["list_all_s"] * ms, unit="ms"),
        Row(NAME, f"  {n}: list --chat page / call", control["list_chat_s"] * ms, unit="ms"),
        Row(NAME, f"  {n}: control status <id> / call", control["status_s"] * ms,
            control["health_s"] * ms, "ms", cost_ratio(control["health_s"], control["status_s"]),
            note="reference: health"),
        Row(NAME, f"`ariabot list` ({lines} lines) / call", cli["list_s"] * ms,
            status_s * ms if status_s is not None else None, "ms",
            cost_ratio(status_s, cli["list_s"]),
            note="reference: `ariabot status <id>` (one row, same process start)"),
        _hold_row(f"  {n}: loop held during `ariabot list`", list_hold),
        _hold_row(f"  {n}: loop held by the idle poll", poll_hold),
        _hold_row(f"  {n}: loop held by a poll that reads the whole queue", sweep_hold,
                  "after a pause; "),
        Row(NAME, f"/status page ({status['pages']} pages of {status['rows']}) / call",
            status["total_s"] * ms, unit="ms"),
        Row(NAME, f"  {n}: /status loop lag", status["loop_lag_max_ms"], unit="ms",
            target=f"<{LOOP_HOLD_TARGET:g} ms",
            met=status["loop_lag_max_ms"] < LOOP_HOLD_TARGET),
    ]
    result.rows += [replace(row, metric=f"{row.metric} [PostgreSQL]") if database_url else row
                    for row in rows]


def _hold_row(metric: str, hold: _Hold, note: str = "") -> Row:
    """A "loop held" row: the slowest step, against the slowest of a quiet second before."""
    return Row(NAME, metric, hold.step_ms, hold.quiet_step_ms, "ms",
               target=f"<{LOOP_HOLD_TARGET:g} ms", met=hold.step_ms < LOOP_HOLD_TARGET,
               note=f"{note}reference: quiet; health answered within {hold.health_ms:.1f} ms "
                    f"(quiet {hold.quiet_health_ms:.1f})")
