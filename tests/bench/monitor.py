"""Benchmark 1: the monitor's cost per cycle, ariabot vs the original sketch.

Setup (fair, one aria2 state for both): one aria2c rendered and supervised as ``ariabot run``
does it (``tests.integration.conftest.start_engine``), ``max_concurrent`` = 50 (the setting's
cap) and ``bt_stop_timeout`` = 0. N magnets of random info-hashes whose only tracker is a
closed loopback port are added through ``TorrentManager.add``: they stay in their metadata
phase for ever (50 active, the rest ``waiting``) and cost aria2 nothing. The baseline
(:class:`~tests.bench.baseline.OriginalMonitor`) then tracks exactly the GIDs aria2 lists, so
both monitors watch the same N downloads of the same aria2c.

Per cycle, for each: wall time, HTTP requests to aria2's RPC (each client's ``post`` is
wrapped), new TCP connections (urllib3's ``connect``, counted while that client posts), SQL
statements (``Store.statements`` / the baseline's own trace callback), CPU time of this Python
process (``time.process_time``: all its threads) and of aria2c (psutil).

ariabot is measured twice: as it runs (dead magnets do not change, so nothing is written) and
with every row forced to differ from aria2 before each cycle (its worst case: N ``UPDATE`` s
in one transaction), since the baseline writes every row every cycle anyway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psutil

from manager.tracking import POLL_KEYS
from tests.bench.baseline import OriginalMonitor
from tests.bench.common import (
    BenchContext,
    BenchResult,
    RequestCounter,
    Row,
    bench_settings,
    closed_tracker,
    cost_ratio,
    counting_connections,
    dead_magnet,
    median,
)
from tests.integration.conftest import Engine, start_engine, stop_engine

__all__ = ["NAME", "TITLE", "run"]

NAME = "monitor"
TITLE = "1. monitor cost vs original"
CHAT = 4242
TARGET_RATIO = 20.0


@dataclass(frozen=True)
class CycleCost:
    """What one monitor cycle cost."""

    wall: float
    cpu: float
    aria2_cpu: float
    requests: int
    connections: int
    statements: int


@dataclass
class _Meters:
    """Reads the counters before and after a cycle."""

    counter: RequestCounter
    statements: Callable[[], int]
    aria2: psutil.Process

    def read(self) -> tuple[float, float, float, int, int, int]:
        times = self.aria2.cpu_times()
        requests, connections = self.counter.snapshot()
        return (time.perf_counter(), time.process_time(), times.user + times.system,
                requests, connections, self.statements())

    async def measure(self, cycle: Callable[[], Awaitable[Any]]) -> CycleCost:
        before = self.read()
        await cycle()
        after = self.read()
        wall, cpu, aria2_cpu, requests, connections, statements = (
            b - a for a, b in zip(before, after, strict=True))
        return CycleCost(wall, cpu, aria2_cpu, int(requests), int(connections), int(statements))


def _transactions(costs: list[CycleCost], changed: int) -> float:
    """ariabot's commits per cycle: its statements are BEGIN + one UPDATE per changed row +
    COMMIT (``Store.update_many``), so (statements - changed) / 2 transactions."""
    return median([max(c.statements - changed, 0) / 2 for c in costs])


def _summary(costs: list[CycleCost], commits: float) -> dict[str, Any]:
    count = len(costs)
    return {
        "commits": commits,
        "cycles": count,
        "wall_ms": median([c.wall for c in costs]) * 1000,
        "cpu_ms": median([c.cpu for c in costs]) * 1000,
        # aria2c's CPU is read in clock ticks (10 ms): the mean over cycles is finer.
        "aria2_cpu_ms": sum(c.aria2_cpu for c in costs) / count * 1000,
        "rpc_requests": median([c.requests for c in costs]),
        "tcp_connections": median([c.connections for c in costs]),
        "sql_statements": median([c.statements for c in costs]),
        "per_cycle": [dataclasses.asdict(c) for c in costs],
    }


async def _settle(engine: Engine, quiet: float = 0.5, timeout: float = 60.0) -> None:
    """Wait until the manager wrote nothing for ``quiet`` seconds (adds' refreshes are done)."""
    deadline = time.monotonic() + timeout
    last, since = engine.store.statements, time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise TimeoutError("the manager never went quiet")
        await asyncio.sleep(0.05)
        if engine.store.statements != last:
            last, since = engine.store.statements, time.monotonic()


async def _aria2_gids(engine: Engine) -> list[str]:
    active, waiting = await engine.rpc.multicall([
        ("aria2.tellActive", [["gid"]]), ("aria2.tellWaiting", [0, 100_000, ["gid"]]),
    ])
    return [s["gid"] for s in [*active, *waiting]]


async def _breakdown(engine: Engine, repeat: int = 3) -> dict[str, float]:
    """Where an all-rows-changed cycle goes: its one RPC, its one write, and the rest.

    Times (median, ms) of the poll's multicall alone and of ``Store.update_many`` writing one
    column of every tracked row alone, next to a whole forced cycle.
    """
    keys = list(POLL_KEYS)
    calls = [("aria2.tellActive", [keys]), ("aria2.tellWaiting", [0, 100_000, keys]),
             ("aria2.tellStopped", [0, 100_000, keys])]
    ids = engine.manager.live.ids()
    rpc, write, cycle = [], [], []
    for attempt in range(repeat):
        started = time.perf_counter()
        await engine.rpc.multicall(calls)
        rpc.append(time.perf_counter() - started)
        started = time.perf_counter()
        await engine.store.update_many({i: {"seeders": attempt + 1} for i in ids})
        write.append(time.perf_counter() - started)
        _force_all_changed(engine)
        started = time.perf_counter()
        await engine.manager.poll_once()
        cycle.append(time.perf_counter() - started)
    whole, one_rpc, one_write = (median(v) * 1000 for v in (cycle, rpc, write))
    return {"rows": len(ids), "forced_cycle_ms": whole, "multicall_ms": one_rpc,
            "update_many_ms": one_write, "rest_ms": whole - one_rpc - one_write}


def _force_all_changed(engine: Engine) -> None:
    """Make every tracked row differ from aria2's answer, so the next poll writes all of them.

    Reaches into the manager's working memory on purpose (bench only): this is the cost of a
    cycle in which every download moved, which dead magnets never do.
    """
    for live in engine.manager.live:
        live.record = dataclasses.replace(live.record, peers=-1)


async def _measure(ctx: BenchContext, result: BenchResult) -> None:
    sizes = ctx.pick((10, 100, 1000), (10, 50))
    ariabot_cycles = ctx.pick(10, 3)
    baseline_cycles = ctx.pick(3, 2)
    folder = ctx.path("monitor")
    settings = dataclasses.replace(
        bench_settings(folder / "data", ARIABOT_MAX_CONCURRENT="50",
                       ARIABOT_BT_STOP_TIMEOUT="0", ARIABOT_SEED_TIME="0"),
        # No background poll: the benchmark runs every cycle itself.
        progress_interval=3600.0,
    )
    engine = await start_engine(settings)
    baseline: OriginalMonitor | None = None
    try:
        assert engine.aria2.pid is not None
        aria2 = psutil.Process(engine.aria2.pid)
        ours, theirs = RequestCounter(), RequestCounter()
        client = engine.rpc._client  # the manager's one aria2p client (bench-only access)
        client.post = ours.wrap(client.post)  # type: ignore[method-assign]
        baseline = OriginalMonitor(engine.rpc.endpoint, folder / "original.db")
        baseline.open()
        baseline.client.post = theirs.wrap(baseline.client.post)  # type: ignore[method-assign]
        ariabot_meter = _Meters(ours, lambda: engine.store.statements, aria2)
        baseline_meter = _Meters(theirs, lambda: baseline.statements, aria2)
        tracker = closed_tracker()
        added = 0
        tracked_gids: set[str] = set()
        per_size: dict[str, Any] = {}
        started = time.monotonic()
        for size in sizes:
            while added < size:
                await engine.manager.add(dead_magnet(tracker, added), chat_id=CHAT, user_id=1)
                added += 1
            await _settle(engine)
            await engine.manager.poll_once()  # learn queue positions etc. once, unmeasured
            await _settle(engine)
            gids = await _aria2_gids(engine)
            if len(gids) != size:
                raise RuntimeError(f"aria2 lists {len(gids)} downloads, expected {size}")
            new = [g for g in gids if g not in tracked_gids]
            baseline.track(CHAT, new)
            tracked_gids.update(new)
            with counting_connections(ours, theirs):
                steady = [await ariabot_meter.measure(engine.manager.poll_once)
                          for _ in range(ariabot_cycles)]
                forced = []
                for _ in range(ariabot_cycles):
                    _force_all_changed(engine)
                    forced.append(await ariabot_meter.measure(engine.manager.poll_once))
                commits_before = baseline.commits
                original = [await baseline_meter.measure(lambda: asyncio.to_thread(baseline.cycle))
                            for _ in range(baseline_cycles)]
            per_size[str(size)] = {
                "ariabot": _summary(steady, _transactions(steady, 0)),
                "ariabot_all_rows_changed": _summary(forced, _transactions(forced, size)),
                "original": _summary(original, (baseline.commits - commits_before)
                                     / baseline_cycles),
                "tracked_by_ariabot": len(engine.manager.live),
                "tracked_by_original": baseline.tracked(),
                "aria2_active_waiting": len(gids),
            }
        result.figures["breakdown_at_largest_n"] = await _breakdown(engine)
        result.figures.update(
            sizes=per_size, setup_seconds=time.monotonic() - started,
            how=("same aria2c, same N dead magnets added through TorrentManager.add; the "
                 "baseline tracks the GIDs aria2 lists; both polled by the bench, one cycle "
                 "at a time, no background poll"),
            baseline_pragmas="same as ariabot's store (WAL, synchronous=normal)",
        )
        _rows(result, per_size, sizes[-1])
    finally:
        if baseline is not None:
            baseline.close()
        await stop_engine(engine)


def _rows(result: BenchResult, per_size: dict[str, Any], largest: int) -> None:
    """Wall, CPU and RPC for every N; the full breakdown for the largest N only."""
    basic = (("wall_ms", "wall time / cycle", "ms"), ("cpu_ms", "CPU (python) / cycle", "ms"))
    detail = (("tcp_connections", "TCP connects / cycle", ""),
              ("sql_statements", "SQL statements / cycle", ""),
              ("commits", "commits / cycle", ""),
              ("aria2_cpu_ms", "CPU (aria2c) / cycle", "ms"))
    for size_key, figures in per_size.items():
        size = int(size_key)
        original = figures["original"]
        wanted = [*basic, ("rpc_requests", "RPC requests / cycle", "")]
        if size == largest:
            wanted += detail
        for key, metric, unit in wanted:
            for variant, label in (("ariabot", ""), ("ariabot_all_rows_changed", " [all changed]")):
                if variant != "ariabot" and key in ("rpc_requests", "tcp_connections",
                                                   "aria2_cpu_ms"):
                    continue  # the same as in the steady state
                mine, theirs = figures[variant][key], original[key]
                ratio = cost_ratio(theirs, mine)
                target, met = "", None
                if key == "rpc_requests":
                    target, met = "1 (O(1))", mine == 1
                elif size == 1000 and key in ("wall_ms", "cpu_ms"):
                    target = f"≥{TARGET_RATIO:g}x cheaper"
                    met = ratio is not None and ratio >= TARGET_RATIO
                note = "ariabot: derived from its BEGIN/COMMIT count" if key == "commits" else ""
                result.rows.append(Row(NAME, f"N={size} {metric}{label}", mine, theirs, unit,
                                       ratio, target, met, note))


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring)."""
    result = BenchResult()
    asyncio.run(_measure(ctx, result))
    if ctx.smoke:
        result.not_measured.append("N=1000 (full mode only)")
    return result
