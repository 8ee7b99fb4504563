"""Benchmark 11: the store-bound parts on SQLite and on PostgreSQL, side by side in one run.

One throwaway PostgreSQL 15 server (:class:`tests.pgserver.PostgresServer`: ``initdb`` in a
temp dir, ``pg_ctl`` on a free loopback port, run as an unprivileged user, fsync off like the
tests' server) is started for the part and stopped at its end, also when a part failed. Each
engine gets a fresh database (the SQLite file of the data dir, as users have by default, or
a new PostgreSQL database through ``ARIABOT_DATABASE_URL``) and the same three measurements:

*the monitor at N* (10,000; smoke: 20): aria2c and the manager in this process, N dead
magnets tracked (:mod:`tests.bench.monitor`'s set-up), the bench running each cycle itself:
idle, the k running downloads changed, and a sweep. Wall time and SQL statements per cycle
(``Store.statements``, counted on both engines by :mod:`manager.engine`). Both engines run
at once (each its own aria2c) and their cycles are taken in turns, so that the load of a
shared machine falls on both alike: one engine after the other measured 3x on an idle
cycle that sends no SQL at all.

*one store round trip*: ``Store.get`` of one row, the cheapest statement the store sends,
through its worker thread, and ``SELECT 1`` through the driver alone: the per-statement cost
that separates the engines.

*the outbox under a burst*: all N downloads complete, 1,000 per poll's write
(``store.downloads.update_many``: the rows and their notices, a completion and a final edit each, in
one transaction), then the notices are drained as :class:`bot.news.News` drains them, 50
pending at a time (``Store.pending_notices``), each marked sent (``Store.notice_done``, one
commit each); the engines take turns chunk by chunk and page by page. Telegram itself is
left out: this is the store's share of sending news.

*start-up with N stored* (10,000; not in smoke mode): a real ``ariabot run`` on a data dir
that holds N queued rows and an aria2 session listing them, timed from its spawn to the control
socket's first answer (the N rows loaded and reconciled).

Rows: the "ariabot" column is PostgreSQL, the "reference" column SQLite, the ratio
PostgreSQL / SQLite (the one target: at most 2x on the idle cycle).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from manager.downloads.live import LiveDownload
from manager.store import Store
from tests.bench.common import (
    BenchContext,
    BenchResult,
    RequestCounter,
    Row,
    bench_settings,
    closed_tracker,
    median,
)
from tests.bench.monitor import (
    CHAT,
    CycleCost,
    _active_gids,
    _force_changed,
    _grow,
    _Meters,
    _running,
    _settle,
)
from tests.bench.restored import prepare, timed_start
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.pgserver import PostgresServer

__all__ = ["NAME", "TITLE", "run"]

NAME = "engines"
TITLE = "11. SQLite vs PostgreSQL"
TARGET_IDLE = 2.0
"""PostgreSQL's idle cycle may cost at most this many times SQLite's (issue 24)."""
ENGINES = ("sqlite", "postgresql")


def _cycle_figures(costs: list[CycleCost]) -> dict[str, float]:
    return {"wall_ms": median([c.wall for c in costs]) * 1000,
            "cpu_ms": median([c.cpu for c in costs]) * 1000,
            "sql_statements": median([c.statements for c in costs]),
            "rpc_requests": median([c.requests for c in costs])}


async def _round_trip(store: Store, download_id: int, repeat: int) -> dict[str, float]:
    """Median ms of ``store.downloads.get`` (one SELECT by primary key) and the statements
    it sent."""
    times = []
    before = store.statements
    for _ in range(repeat):
        started = time.perf_counter()
        await store.downloads.get(download_id)
        times.append(time.perf_counter() - started)
    return {"get_ms": median(times) * 1000, "statements": (store.statements - before) / repeat}


def _raw_select(engine: Engine, repeat: int) -> float:
    """Median ms of ``SELECT 1`` straight through the driver (sqlite3 or psycopg, no peewee,
    no worker thread): the engine's own per-statement cost, a loopback round trip on
    PostgreSQL."""
    url = engine.settings.database_url
    connection: Any = (psycopg.connect(url, autocommit=True) if url
                       else sqlite3.connect(engine.layout.database))
    try:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchall()
            times.append(time.perf_counter() - started)
        return median(times) * 1000
    finally:
        connection.close()


async def _drain_page(store: Store) -> int:
    """Read the pending notices as News does (50 per chat) and mark each sent; how many."""
    pending = await store.notices.pending()
    for notice in pending:
        await store.notices.done(notice.id)
    return len(pending)


async def _outbox_burst(stores: dict[str, Store], chunk: int) -> dict[str, dict[str, float]]:
    """Every stored download completes, ``chunk`` of them per write
    (``store.downloads.update_many``: the rows and their notices in one transaction, as a
    poll writes them); the notices are then read and marked sent. Engines take turns, chunk
    by chunk and page by page."""
    ids = {name: [record.id for record in await store.downloads.list()]
           for name, store in stores.items()}
    now = datetime.now(UTC).replace(tzinfo=None)
    found = {name: {"write_s": 0.0, "drain_s": 0.0, "reads": 0, "sent": 0} for name in stores}
    statements = {name: store.statements for name, store in stores.items()}
    for start in range(0, max(len(i) for i in ids.values()), chunk):
        for name, store in stores.items():
            completed = {i: {"state": "complete", "completed_at": now}
                         for i in ids[name][start:start + chunk]}
            started = time.perf_counter()
            await store.downloads.update_many(completed)
            found[name]["write_s"] += time.perf_counter() - started
    written = {name: store.statements - statements[name] for name, store in stores.items()}
    statements = {name: store.statements for name, store in stores.items()}
    busy = set(stores)
    while busy:
        for name in list(busy):
            started = time.perf_counter()
            sent = await _drain_page(stores[name])
            found[name]["drain_s"] += time.perf_counter() - started
            found[name]["reads"] += 1
            found[name]["sent"] += sent
            if not sent:
                busy.discard(name)
    result = {}
    for name, store in stores.items():
        figures, sent = found[name], found[name]["sent"]
        if sent != len(ids[name]):
            raise RuntimeError(f"{name}: {len(ids[name])} downloads completed but {sent} "
                               "notices were sent")
        result[name] = {
            "notices": sent, "chunk": chunk, "write_ms": figures["write_s"] * 1000,
            "write_statements": written[name], "drain_s": figures["drain_s"],
            "per_notice_ms": figures["drain_s"] / sent * 1000, "reads": figures["reads"],
            "drain_statements_per_notice": (store.statements - statements[name]) / sent}
    return result


@dataclass
class _Side:
    """One engine's aria2c + store + manager with N tracked, and its meter."""

    engine: Engine
    meter: _Meters
    running: list[LiveDownload]


async def _start_side(ctx: BenchContext, folder: Path, database_url: str | None,
                      size: int) -> _Side:
    """aria2c and the manager on one engine, ``size`` dead magnets tracked and settled."""
    settings = dataclasses.replace(
        bench_settings(folder / "data", ARIABOT_MAX_CONCURRENT="50",
                       ARIABOT_BT_STOP_TIMEOUT="0", ARIABOT_SEED_TIME="0",
                       **({"ARIABOT_DATABASE_URL": database_url} if database_url else {})),
        progress_interval=3600.0,  # no background poll: the benchmark runs every cycle
    )
    engine = await start_engine(settings)
    try:
        assert engine.aria2.pid is not None
        counter = RequestCounter()
        client = engine.rpc._client  # the manager's one aria2p client (bench-only access)
        client.post = counter.wrap(client.post)  # type: ignore[method-assign]
        meter = _Meters(counter, lambda: engine.store.statements,
                        psutil.Process(engine.aria2.pid))
        await _grow(engine, closed_tracker(), 0, size)
        await _settle(engine)
        await engine.manager.poll_once(sweep=True)  # learn queue positions once, unmeasured
        await _settle(engine)
        return _Side(engine, meter, _running(engine, await _active_gids(engine)))
    except BaseException:
        await stop_engine(engine)
        raise


async def _interleaved(sides: dict[str, _Side], cycles: int,
                       cycle: Callable[[_Side], Awaitable[Any]]) -> dict[str, list[CycleCost]]:
    """``cycles`` measured cycles on each engine, taken in turns (A, B, A, B...), so that
    the load of a shared machine falls on both alike."""
    found: dict[str, list[CycleCost]] = {name: [] for name in sides}
    for _ in range(cycles):
        for name, side in sides.items():
            found[name].append(await side.meter.measure(lambda side=side: cycle(side)))
    return found


async def _monitor(ctx: BenchContext, server: PostgresServer,
                   size: int) -> dict[str, dict[str, Any]]:
    """The monitor's idle / k changed / sweep cycles at ``size``, one store round trip, and
    the outbox burst, on both engines (each its own aria2c), cycles taken in turns."""
    cycles = ctx.pick(10, 3)
    sides: dict[str, _Side] = {}
    try:
        for name in ENGINES:
            url = None if name == "sqlite" else server.url(server.new_database())
            sides[name] = await _start_side(ctx, ctx.path("engines", name, "monitor"), url,
                                            size)

        async def idle(side: _Side) -> None:
            await side.engine.manager.poll_once()

        async def changed(side: _Side) -> None:
            _force_changed(side.running)
            await side.engine.manager.poll_once()

        async def sweep(side: _Side) -> None:
            await side.engine.manager.poll_once(sweep=True)

        measured = {key: await _interleaved(sides, cycles, cycle)
                    for key, cycle in (("idle", idle), ("k_changed", changed),
                                       ("sweep", sweep))}
        found: dict[str, dict[str, Any]] = {}
        for name, side in sides.items():
            first = next(iter(side.engine.manager.live)).record.id
            found[name] = {
                "tracked": len(side.engine.manager.live), "k": len(side.running),
                **{key: _cycle_figures(costs[name]) for key, costs in measured.items()},
                "round_trip": await _round_trip(side.engine.store, first, ctx.pick(500, 50)),
                "raw_select_ms": await asyncio.to_thread(_raw_select, side.engine,
                                                         ctx.pick(500, 50)),
            }
        bursts = await _outbox_burst({name: side.engine.store for name, side in sides.items()},
                                     ctx.pick(1000, 10))
        for name, burst in bursts.items():
            found[name]["outbox"] = burst
        return found
    finally:
        for side in sides.values():
            await stop_engine(side.engine)


def _startup(data_dir: Path, database_url: str | None, count: int) -> dict[str, float]:
    """``ariabot run`` with ``count`` stored: spawn → aria2c ready, → reconciled."""
    prepare(data_dir, count, chat_id=CHAT, database_url=database_url)
    ariabot, _client, start = timed_start(data_dir, count, database_url=database_url)
    ariabot.stop()
    return {"aria2_ready_s": start["aria2_ready_s"], "reconciled_s": start["reconciled_s"]}


def _measure(ctx: BenchContext, server: PostgresServer) -> dict[str, dict[str, Any]]:
    size, stored = ctx.pick(10_000, 20), 10_000
    found = asyncio.run(_monitor(ctx, server, size))
    for figures in found.values():
        figures.update(n=size, stored=stored)
    if ctx.smoke:  # two more ariabot runs: 5 to 10 s that CI's smoke run need not spend
        return found
    for name in ENGINES:
        url = None if name == "sqlite" else server.url(server.new_database())
        found[name]["startup"] = _startup(ctx.path("engines", name, "startup") / "data", url,
                                          stored)
    return found


def _rows(found: dict[str, dict[str, Any]]) -> list[Row]:
    lite, pg = found["sqlite"], found["postgresql"]
    n, k = f"N={lite['n']}", pg["k"]
    rows = []

    def row(metric: str, pick: Callable[[dict[str, Any]], float], unit: str,
            target: float | None = None, note: str = "") -> None:
        mine, theirs = pick(pg), pick(lite)
        ratio = mine / theirs if theirs else None
        met = None if target is None or ratio is None else ratio <= target
        rows.append(Row(NAME, metric, mine, theirs, unit, ratio,
                        f"≤{target:g}x SQLite" if target else "", met, note))

    for key, label in (("idle", "idle"), ("k_changed", f"k={k} changed"), ("sweep", "sweep")):
        row(f"{n} monitor wall / cycle [{label}]", lambda f, key=key: f[key]["wall_ms"], "ms",
            TARGET_IDLE if key == "idle" else None)
        row(f"  {n} SQL statements / cycle [{label}]",
            lambda f, key=key: f[key]["sql_statements"], "")
    row("one store round trip (Store.get)", lambda f: f["round_trip"]["get_ms"], "ms")
    row("  SELECT 1 through the driver alone", lambda f: f["raw_select_ms"], "ms")
    notices = pg["outbox"]["notices"]
    row(f"outbox: {notices} notices written ({pg['outbox']['chunk']} a transaction)",
        lambda f: f["outbox"]["write_ms"], "ms")
    row(f"outbox: {notices} notices read + marked sent",
        lambda f: f["outbox"]["drain_s"], "s")
    row("  outbox per notice sent", lambda f: f["outbox"]["per_notice_ms"], "ms")
    if "startup" in pg:
        row(f"start-up, {pg['stored']} stored (spawn → reconciled)",
            lambda f: f["startup"]["reconciled_s"], "s")
        row("  of which spawn → aria2c ready", lambda f: f["startup"]["aria2_ready_s"], "s")
    return rows


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring); the server is stopped on any exit."""
    result = BenchResult()
    with PostgresServer() as server:
        found = _measure(ctx, server)
    result.figures.update(found)
    if ctx.smoke:
        result.not_measured.append("start-up with N stored on each engine (full mode only)")
    result.rows = _rows(found)
    result.notes.append("engines: the 'ariabot' column is PostgreSQL, 'reference' SQLite, "
                        "ratio = PostgreSQL / SQLite")
    return result
