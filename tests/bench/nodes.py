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

*the look at 10,000* (smoke: 1,000): a node looks for dead nodes' work after every
heartbeat. With 10,000 finished downloads of a dead node and 10,000 queued of live ones
(none to take), the look is one read; then the take-over of 10,000 unfinished downloads of
a dead node, in one transaction. Both timed on the store (median of 5 looks).

*claim latency*: 1 node, then 3 nodes, on a fresh database each (10 slots each:
room for the adds and the waiting rows, which hold theirs). A magnet
is added on the first node (``ariabot add``); timed from the add's answer (the row stored,
without a node) to the first byte on whichever node claimed it. Median of 3 adds each
(smoke: 1, and the cases side by side). The reference is one node on SQLite, which adds
to its aria2c at once (no queue): the same path but for the claim. The figure is mostly the
swarm's (the magnet's metadata, the tracker's first answer). So the claim itself is timed
too: the bench stores a waiting row as an add does and announces it, and polls the row
(every 2 ms) until a node has claimed it; median of 5 (smoke: 2), on the same nodes.

*the claim at 10,000* (smoke: 1,000): 10,000 downloads wait without a node and three
nodes of 50 slots (the most a node may have) are live; one claim (the free slots counted,
up to 50 waiting rows locked with ``FOR UPDATE SKIP LOCKED``, the others' free slots read,
one taken) timed on the store, median of 6 (the nodes in turn).

*news under a burst*: two nodes, alpha the front (its bot) and beta; another node's burst
of completions (:data:`BURST` downloads in :data:`BURST_CHATS` chats, finished and told in
one transaction, as a node whose downloads all end at once writes them) reaches the front
through ``NOTIFY`` and is sent by its bot, paced by the turns every node shares. Timed from
the commit to each completion message at the fake Bot API (which enforces Telegram's flood
limits): the median and the last; the floor is the whole bot's pace (``BURST`` / 25 per
second). Every 429 is counted (target: none).
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from manager import NoticeKind
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
BURST = 60
BURST_CHATS = 30
SMOKE_LOOK_ROWS = 1_000
"""The rows of each kind for the look and the claim in smoke mode: filling 10,000 three times
and 10,000 once more took 6 of the smoke run's seconds, and smoke figures are not read."""
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


async def _stop(*runs: AriabotRun | None) -> None:
    """Stop the nodes side by side: each stop waits about a second for its aria2c to save
    and exit, and nothing is measured then."""
    await asyncio.gather(*(asyncio.to_thread(run.stop) for run in runs if run is not None))


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
        await _stop(alpha, beta)


async def _looks(url: str, count: int) -> dict[str, float]:
    """The per-heartbeat look, and a take-over, at ``count`` rows of each kind."""
    store = Store(url)
    await store.open()
    try:
        table = store.database.tables.download

        def fill(node: str, state: str, first: int) -> None:
            rows = [dict(info_hash=f"{first + n:040x}", chat_id=1, user_id=1, name=f"n{n}",
                         source_kind="magnet", source=b"magnet:?", directory="/d",
                         state=state, node=node, created_at=now, updated_at=now,
                         completed_at=now if state == "complete" else None)
                    for n in range(count)]
            with store.database.db.atomic():
                for start in range(0, len(rows), 1000):
                    table.insert_many(rows[start:start + 1000]).execute()

        now = utc_now()
        await store.nodes.join("dead", "d" * 32, "bench", 0.0)
        await store.database.run(fill, "dead", "complete", 0)
        await store.database.run(fill, "live", "queued", count)
        epoch = await store.nodes.join("live", "l" * 32, "bench", 3600.0)
        looks = []
        for _ in range(5):
            started = time.perf_counter()
            taken = await store.nodes.take_over("live", epoch, 0.0, str)
            looks.append(time.perf_counter() - started)
            assert taken == []
        await store.database.run(fill, "dead", "queued", 2 * count)
        started = time.perf_counter()
        taken = await store.nodes.take_over("live", epoch, 0.0, str)
        took = time.perf_counter() - started
        assert len(taken) == count
        return {"look": median(looks), "take_over": took}
    finally:
        await store.close()


async def _stored_to_claimed(url: str, count: int, seed: int) -> float:
    """Median seconds from a waiting download's row (stored without a node, as any node's
    add stores it) to its claim by a node: the announcement, the claim's transaction."""
    store = Store(url)
    await store.open()
    took = []
    try:
        for n in range(count):
            info_hash = f"{seed + n:040x}"  # nobody seeds it: it holds its slot, waiting
            record = await store.downloads.create(
                info_hash=info_hash, chat_id=0, user_id=0, name=info_hash,
                source_kind="magnet", source=f"magnet:?xt=urn:btih:{info_hash}".encode(),
                directory="", state="queued")
            stored = time.monotonic()
            await store.placements.announce()
            while (row := await store.downloads.get(record.id)) is None or row.node is None:
                if time.monotonic() - stored > 30:
                    raise TimeoutError("no node claimed a waiting download in 30 s")
                await asyncio.sleep(0.002)
            took.append(time.monotonic() - stored)
    finally:
        await store.close()
    return median(took)


async def _claim_latency(ctx: BenchContext, url: str | None,
                         nodes: int) -> tuple[float, float | None]:
    """Median seconds from an add's answer to the first byte on the node that claimed it
    (``url`` None: one node on SQLite, which adds to its aria2c at once), and from a
    waiting row to its claim (None on SQLite: no queue)."""
    kind = f"claim-{nodes}-{'pg' if url else 'sqlite'}"
    folder = ctx.path("nodes", kind)
    database = {"ARIABOT_DATABASE_URL": url} if url else {}
    runs = [AriabotRun(folder / name, {
        "ARIABOT_NODE_NAME": name, **database,
        "ARIABOT_DOWNLOAD_DIR": str(folder / name / "downloads"), "ARIABOT_SEED_TIME": "0",
        "ARIABOT_MAX_CONCURRENT": "10"}).start() for name in ("alpha", "beta", "gamma")[:nodes]]
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
        claimed = (await _stored_to_claimed(url, ctx.pick(5, 2), 0xC1A1 * 1000 + nodes * 10)
                   if url else None)
    finally:
        await _stop(*runs)
    return median(took), claimed


async def _claim_cost(url: str, count: int) -> float:
    """One claim with ``count`` downloads waiting and three live nodes."""
    store = Store(url)
    await store.open()
    try:
        table = store.database.tables.download
        now = utc_now()
        rows = [dict(info_hash=f"{n:040x}", chat_id=1, user_id=1, name=f"n{n}",
                     source_kind="magnet", source=b"magnet:?", directory="", state="queued",
                     node=None, created_at=now, updated_at=now) for n in range(count)]

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


async def _store_burst(url: str, count: int, chats: int) -> float:
    """``count`` finished downloads of node "delta" in ``chats`` chats, each with its
    completion notice, in one transaction; returns the commit's monotonic time."""
    store = Store(url)
    await store.open()
    try:
        table = store.database.tables.download

        def write() -> None:
            now = utc_now()
            with store.database.db.atomic():
                for n in range(count):
                    download_id = table.insert(
                        info_hash=f"{n + 1:040x}", chat_id=USER + n % chats, user_id=USER,
                        name=f"burst-{n}.bin", source_kind="magnet", source=b"magnet:?",
                        directory="/delta", state="complete", total_bytes=MIB,
                        completed_bytes=MIB, created_at=now, updated_at=now,
                        completed_at=now, node="delta").execute()
                    store.notices.write(download_id, NoticeKind.COMPLETED, now)

        await store.database.run(write)
        return time.monotonic()
    finally:
        await store.close()


async def _news_burst(ctx: BenchContext, server: FakeTelegramServer,
                      url: str) -> dict[str, float]:
    """Seconds from another node's burst of completions to each message (see the module's
    docstring), and the 429s."""
    count, chats = ctx.pick(BURST, 10), ctx.pick(BURST_CHATS, 5)
    folder = ctx.path("nodes", "burst")
    runs: list[AriabotRun] = []
    try:
        for name in ("alpha", "beta"):  # alpha first: the front
            runs.append(AriabotRun(folder / name, _env(server, folder / name, name, url,
                                                       30.0)).start())
            await asyncio.to_thread(runs[-1].wait_ready, 60)
            await _until(lambda: "the Telegram bot @" in runs[0].output, 30, "alpha's bot")
        mark, too_many = server.mark(), server.too_many
        stored = await _store_burst(url, count, chats)
        told: dict[str, float] = {}

        def all_told() -> bool:
            for request in server.requests[mark:]:
                text = str(request.params.get("text", ""))
                if request.method == "sendMessage" and request.status == 200 and (
                        found := re.search(r"is downloaded \(#(\d+)\)", text)):
                    told.setdefault(found.group(1), request.time)
            return len(told) >= count

        await server.wait_until(all_told, timeout=120, what="the burst's news")
        latencies = sorted(at - stored for at in told.values())
        return {"burst_median": median(latencies), "burst_last": latencies[-1],
                "burst_429": server.too_many - too_many, "burst_count": count}
    finally:
        await _stop(*runs)


async def _measure(ctx: BenchContext, server: PostgresServer) -> dict[str, Any]:
    dead_after = ctx.pick(10.0, 3.0)
    rounds = []
    async with FakeTelegramServer() as telegram:
        for number in range(ctx.pick(3, 1)):
            rounds.append(await _round(ctx, telegram, server.url(server.new_database()),
                                       number, dead_after))
        burst = await _news_burst(ctx, telegram, server.url(server.new_database()))
    look_rows = ctx.pick(LOOK_ROWS, SMOKE_LOOK_ROWS)
    looks = await _looks(server.url(server.new_database()), look_rows)
    claims: dict[str, float | None] = {}
    cases = {1: (server.url(server.new_database()), 1),
             3: (server.url(server.new_database()), 3), 0: (None, 1)}
    if ctx.smoke:  # the three side by side (20 s one after the other): figures not read
        took = await asyncio.gather(*(_claim_latency(ctx, url, nodes)
                                      for url, nodes in cases.values()))
        found = dict(zip(cases, took, strict=True))
    else:
        found = {key: await _claim_latency(ctx, url, nodes)
                 for key, (url, nodes) in cases.items()}
    for key, (first_byte, claimed) in found.items():
        claims[f"claim_{key}" if key else "claim_sqlite"] = first_byte
        if key:
            claims[f"claimed_{key}"] = claimed
    claim_cost = await _claim_cost(server.url(server.new_database()), look_rows)
    return {"dead_after": dead_after, "rounds": rounds, "look_rows": look_rows, **looks,
            **claims, "claim_cost": claim_cost, **burst}


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring); the server is stopped on any exit."""
    result = BenchResult()
    with PostgresServer() as server:
        found = asyncio.run(_measure(ctx, server))
    result.figures.update(found)
    takeover = median([r["takeover"] for r in found["rounds"]])
    failover = median([r["failover"] for r in found["rounds"]])
    limit, rows = found["dead_after"], found["look_rows"]
    result.rows = [
        Row(NAME, "front takeover: kill -9 → /status answered by the other node", takeover,
            unit="s", target="< 15 s", met=takeover < 15),
        Row(NAME, f"failover: kill -9 → first byte on the other node (limit {limit:g} s)",
            failover, unit="s"),
        Row(NAME, "failover past the heartbeat limit", failover - limit, unit="s",
            note="the heartbeat period, the take-over, the reconcile, the metadata"),
        Row(NAME, f"the look for dead nodes' work, {rows:,} rows each kind",
            found["look"] * 1000, unit="ms", note="after every heartbeat, none to take"),
        Row(NAME, f"take-over of {rows:,} unfinished downloads", found["take_over"],
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
        Row(NAME, "claim latency: a waiting row → claimed, 1 node", found["claimed_1"] * 1000,
            unit="ms", note="the announcement, then the claim's transaction"),
        Row(NAME, "claim latency: a waiting row → claimed, 3 nodes", found["claimed_3"] * 1000,
            unit="ms", reference=found["claimed_1"] * 1000,
            ratio=found["claimed_1"] / found["claimed_3"] if found["claimed_3"] else None,
            note="reference: 1 node"),
        Row(NAME, f"one claim with {rows:,} waiting, 3 live nodes",
            found["claim_cost"] * 1000, unit="ms", note="FOR UPDATE SKIP LOCKED"),
    ]
    count = found["burst_count"]
    result.rows += [
        Row(NAME, f"news under a burst: {count} completions of another node → median message",
            found["burst_median"], unit="s", note=f"floor for the last: {count / 25:.1f} s "
            "(the whole bot's 25 a second)"),
        Row(NAME, f"news under a burst: {count} completions → the last message",
            found["burst_last"], unit="s"),
        Row(NAME, "news under a burst: 429s from Telegram", found["burst_429"],
            target="0", met=found["burst_429"] == 0),
    ]
    return result
