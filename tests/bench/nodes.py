"""Benchmark 14: several nodes on one PostgreSQL: front takeover, failover, the look's cost.

One throwaway PostgreSQL server (:class:`tests.pgserver.PostgresServer`), the fake Bot API
and the local swarm. Two real ``ariabot run`` nodes, alpha then beta, share a database and a
token; alpha is the front. Each round:

*front takeover*: a magnet is sent in the chat (it lands on the front, alpha) and, once its
first bytes are on alpha's disk, alpha is killed (-9). Timed from the kill to beta's answer
to a ``/status`` sent at the kill (the lock frees with alpha's session; beta tries every 2 s,
then starts a bot).

*failover*: from the same kill to the download's first byte on beta's disk (its row taken
once alpha is past ``ARIABOT_NODE_DEAD_AFTER``, then re-added from the magnet). The limit
is 30 s by default; these rounds use 3 s (smoke) or 10 s, so the figure to read is the time
*past the limit*: the heartbeat's period (limit / 6), the take-over, the reconcile and the
magnet's metadata.

*the look at 10,000*: a node looks for dead nodes' work after every heartbeat. With 10,000
finished downloads of a dead node and 10,000 queued of live ones (none to take), the look
is one read; then the take-over of 10,000 unfinished downloads of a dead node, in one
transaction. Both timed on the store (median of 5 looks).

*claim latency*: 1 node, then 3 nodes, on a fresh database each (3 slots each). A magnet
is added on the first node (``ariabot add``); timed from the add's answer (the row stored,
without a node) to the first byte on whichever node claimed it. Median of 3 adds each
(smoke: 1). The reference is one node on SQLite, which adds to its aria2c at once (no
queue): the same path but for the claim. The figure is mostly the swarm's (the magnet's
metadata, the tracker's first answer): the nodes' logs show each claim within milliseconds
of the add.

*the claim at 10,000*: 10,000 downloads wait without a node and three nodes of 50 slots
(the most a node may have) are live; one claim (the free slots counted, up to 50 waiting
rows locked with ``FOR UPDATE SKIP LOCKED``, the others' free slots read, one taken) timed
on the store, median of 6 (the nodes in turn).

Not measured: news through the front under a burst.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from manager.store import NodeFigures, Store
from manager.store.database import utc_now
from tests.bench.common import BenchContext, BenchResult, Row, median
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer
from tests.pgserver import PostgresServer
from tests.runner import AriabotRun
from tests.swarm import SwarmTorrent

__all__ = ["NAME", "TITLE", "run"]

NAME = "nodes"
TITLE = "14. several nodes: front takeover, failover, placement"
USER = 4242
MIB = 1024 * 1024
LOOK_ROWS = 10_000
_MOST_SLOTS = 50
"""The most slots a node may have (``ARIABOT_MAX_CONCURRENT``): a claim locks at most as
many waiting rows as the node has free slots."""


def _env(server: FakeTelegramServer, folder: Path, name: str, url: str,
         dead_after: float) -> dict[str, str]:
    return {"ARIABOT_NODE_NAME": name, "ARIABOT_DATABASE_URL": url,
            "ARIABOT_DOWNLOAD_DIR": str(folder / "downloads"),
            "ARIABOT_NODE_DEAD_AFTER": str(dead_after), "ARIABOT_SEED_TIME": "0",
            "ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN, "ARIABOT_TELEGRAM_API_URL": server.url,
            "ARIABOT_ALLOWED_USERS": str(USER)}


def _first_byte(path: Path) -> bool:
    try:
        return path.stat().st_blocks > 0
    except FileNotFoundError:
        return False


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.02)


async def _round(ctx: BenchContext, server: FakeTelegramServer, url: str, number: int,
                 dead_after: float) -> dict[str, float]:
    torrent: SwarmTorrent = ctx.swarm.add(f"node-round-{number}.bin", 8 * MIB, seed=900 + number)
    folder = ctx.path("nodes", f"round-{number}")
    alpha = AriabotRun(folder / "alpha", _env(server, folder / "alpha", "alpha", url,
                                              dead_after)).start()
    beta: AriabotRun | None = None
    try:
        await asyncio.to_thread(alpha.wait_ready, 60)
        await _until(lambda: "the Telegram bot @" in alpha.output, 30, "alpha's bot")
        on_alpha = folder / "alpha" / "downloads" / "torrents" / str(USER) / torrent.name
        on_beta = folder / "beta" / "downloads" / "torrents" / str(USER) / torrent.name
        ctx.swarm.seeder.set_upload_limit(256 * 1024)
        try:
            server.push_text(USER, USER, torrent.magnet)  # alpha alone: alpha claims it
            await _until(lambda: _first_byte(on_alpha), 60, "alpha's first byte")
            beta = AriabotRun(folder / "beta", _env(server, folder / "beta", "beta", url,
                                                    dead_after)).start()
            await asyncio.to_thread(beta.wait_ready, 60)
            mark = server.mark()
            alpha.signal(signal.SIGKILL)
            killed = time.monotonic()
            server.push_text(USER, USER, "/status")
            answer = await server.wait_for("sendMessage", lambda r: r.status == 200,
                                           timeout=60, since=mark)
            await _until(lambda: _first_byte(on_beta), 120, "beta's first byte")
            moving = time.monotonic()
        finally:
            ctx.swarm.seeder.set_upload_limit(0)
        return {"takeover": answer.time - killed, "failover": moving - killed}
    finally:
        for run in (alpha, beta):
            if run is not None:
                await asyncio.to_thread(run.stop)


async def _looks(url: str) -> dict[str, float]:
    """The per-heartbeat look, and a take-over, at :data:`LOOK_ROWS`."""
    store = Store(url)
    await store.open()
    try:
        table = store.database.tables.download

        def fill(node: str, state: str, first: int) -> None:
            rows = [dict(info_hash=f"{first + n:040x}", chat_id=1, user_id=1, name=f"n{n}",
                         source_kind="magnet", source=b"magnet:?", directory="/d",
                         state=state, node=node, created_at=now, updated_at=now,
                         completed_at=now if state == "complete" else None)
                    for n in range(LOOK_ROWS)]
            with store.database.db.atomic():
                for start in range(0, len(rows), 1000):
                    table.insert_many(rows[start:start + 1000]).execute()

        now = utc_now()
        await store.nodes.join("dead", "d" * 32, "bench", 0.0)
        await store.database.run(fill, "dead", "complete", 0)
        await store.database.run(fill, "live", "queued", LOOK_ROWS)
        epoch = await store.nodes.join("live", "l" * 32, "bench", 3600.0)
        looks = []
        for _ in range(5):
            started = time.perf_counter()
            taken = await store.nodes.take_over("live", epoch, 0.0, str)
            looks.append(time.perf_counter() - started)
            assert taken == []
        await store.database.run(fill, "dead", "queued", 2 * LOOK_ROWS)
        started = time.perf_counter()
        taken = await store.nodes.take_over("live", epoch, 0.0, str)
        took = time.perf_counter() - started
        assert len(taken) == LOOK_ROWS
        return {"look": median(looks), "take_over": took}
    finally:
        await store.close()


async def _claim_latency(ctx: BenchContext, url: str | None, nodes: int) -> float:
    """Median seconds from an add's answer to the first byte on the node that claimed it
    (``url`` None: one node on SQLite, which adds to its aria2c at once)."""
    kind = f"claim-{nodes}-{'pg' if url else 'sqlite'}"
    folder = ctx.path("nodes", kind)
    database = {"ARIABOT_DATABASE_URL": url} if url else {}
    runs = [AriabotRun(folder / name, {
        "ARIABOT_NODE_NAME": name, **database,
        "ARIABOT_DOWNLOAD_DIR": str(folder / name / "downloads"), "ARIABOT_SEED_TIME": "0",
        "ARIABOT_MAX_CONCURRENT": "3"}).start() for name in ("alpha", "beta", "gamma")[:nodes]]
    took = []
    try:
        for run in runs:
            await asyncio.to_thread(run.wait_ready, 60)
        ctx.swarm.seeder.set_upload_limit(256 * 1024)  # running, not finished, when measured
        try:
            for add in range(ctx.pick(3, 1)):  # smoke: one add each
                torrent = ctx.swarm.add(f"{kind}-{add}.bin", 4 * MIB,
                                        seed=700 + 10 * nodes + 5 * bool(url) + add)
                added = await asyncio.to_thread(subprocess.run, [
                    sys.executable, "-m", "supervisor", "add", torrent.magnet],
                    env=runs[0].env, capture_output=True, check=True)
                answered = time.monotonic()
                assert added.returncode == 0
                paths = [folder / run_name / "downloads" / "torrents" / "0" / torrent.name
                         for run_name in ("alpha", "beta", "gamma")[:nodes]]
                await _until(lambda p=paths: any(_first_byte(path) for path in p), 60,
                             "the first byte on a node")
                took.append(time.monotonic() - answered)
        finally:
            ctx.swarm.seeder.set_upload_limit(0)
    finally:
        for run in runs:
            await asyncio.to_thread(run.stop)
    return median(took)


async def _claim_cost(url: str) -> float:
    """One claim with :data:`LOOK_ROWS` downloads waiting and three live nodes."""
    store = Store(url)
    await store.open()
    try:
        table = store.database.tables.download
        now = utc_now()
        rows = [dict(info_hash=f"{n:040x}", chat_id=1, user_id=1, name=f"n{n}",
                     source_kind="magnet", source=b"magnet:?", directory="", state="queued",
                     node=None, created_at=now, updated_at=now) for n in range(LOOK_ROWS)]

        def fill() -> None:
            with store.database.db.atomic():
                for start in range(0, len(rows), 1000):
                    table.insert_many(rows[start:start + 1000]).execute()

        for name in ("alpha", "beta", "gamma"):  # first: the first node takes older rows
            epoch = await store.nodes.join(name, name[0] * 32, "bench", 3600.0)
            await store.nodes.beat(name, epoch, NodeFigures(slots_total=_MOST_SLOTS))
        await store.database.run(fill)
        costs = []
        for turn in range(6):  # each in turn: the one with the most free slots claims
            started = time.perf_counter()
            claimed = await store.placements.claim(("alpha", "beta", "gamma")[turn % 3],
                                                   _MOST_SLOTS, 2**50, lambda chat: "/d",
                                                   dead_after=3600.0)
            costs.append(time.perf_counter() - started)
            assert claimed
        return median(costs)
    finally:
        await store.close()


async def _measure(ctx: BenchContext, server: PostgresServer) -> dict[str, Any]:
    dead_after = ctx.pick(10.0, 3.0)
    rounds = []
    async with FakeTelegramServer() as telegram:
        for number in range(ctx.pick(3, 1)):
            rounds.append(await _round(ctx, telegram, server.url(server.new_database()),
                                       number, dead_after))
    looks = await _looks(server.url(server.new_database()))
    claims = {"claim_sqlite": await _claim_latency(ctx, None, 1)}
    for nodes in (1, 3):
        claims[f"claim_{nodes}"] = await _claim_latency(ctx, server.url(server.new_database()),
                                                        nodes)
    claim_cost = await _claim_cost(server.url(server.new_database()))
    return {"dead_after": dead_after, "rounds": rounds, **looks, **claims,
            "claim_cost": claim_cost}


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring); the server is stopped on any exit."""
    result = BenchResult()
    with PostgresServer() as server:
        found = asyncio.run(_measure(ctx, server))
    result.figures.update(found)
    takeover = median([r["takeover"] for r in found["rounds"]])
    failover = median([r["failover"] for r in found["rounds"]])
    limit = found["dead_after"]
    result.rows = [
        Row(NAME, "front takeover: kill -9 → /status answered by the other node", takeover,
            unit="s", target="< 15 s", met=takeover < 15),
        Row(NAME, f"failover: kill -9 → first byte on the other node (limit {limit:g} s)",
            failover, unit="s"),
        Row(NAME, "failover past the heartbeat limit", failover - limit, unit="s",
            note="the heartbeat period, the take-over, the reconcile, the metadata"),
        Row(NAME, f"the look for dead nodes' work, {LOOK_ROWS:,} rows each kind",
            found["look"] * 1000, unit="ms", note="after every heartbeat, none to take"),
        Row(NAME, f"take-over of {LOOK_ROWS:,} unfinished downloads", found["take_over"],
            unit="s", note="one transaction"),
    ]
    direct, one, three = found["claim_sqlite"], found["claim_1"], found["claim_3"]
    result.rows += [
        Row(NAME, "add → first byte, 1 node on SQLite (no queue)", direct, unit="s"),
        Row(NAME, "claim latency: add → first byte, 1 node", one, unit="s", reference=direct,
            ratio=direct / one if one else None, note="reference: SQLite, no queue"),
        Row(NAME, "claim latency: add → first byte, 3 nodes", three, unit="s",
            reference=one, ratio=one / three if three else None,
            note="reference: 1 node"),
        Row(NAME, f"one claim with {LOOK_ROWS:,} waiting, 3 live nodes",
            found["claim_cost"] * 1000, unit="ms", note="FOR UPDATE SKIP LOCKED"),
    ]
    result.not_measured += ["news latency through the front under a burst"]
    return result
