"""The queue nodes share, on a real PostgreSQL server: claims by free slots and room in the
queue's order, never one download twice, and changes of a waiting download that lose to a
claim (or win over it) without both happening."""

from __future__ import annotations

import asyncio

import pytest

from manager import NodeConfig, NodeFigures, NodeReplaced, Store
from manager.downloads.live import snapshot
from manager.nodes import Ownership
from manager.store import DownloadRecord

pytestmark = pytest.mark.postgresql

LIMIT = 30.0
GIB = 2**30


async def _queued(store: Store, number: int, *, node: str | None = None, state: str = "queued",
                  size: int = 0, chat: int = 1) -> int:
    record = await store.downloads.create(
        info_hash=f"{number:040x}", chat_id=chat, user_id=1, name=f"n{number}",
        source_kind="torrent" if size else "magnet", source=b"x", directory="" if node is None
        else "/there", state=state, total_bytes=size, node=node)
    return record.id


def _folder(node: str) -> object:
    return lambda chat: f"/{node}/torrents/{chat}"


async def _claim(store: Store, node: str, slots: int, room: int = 100 * GIB
                 ) -> list[DownloadRecord]:
    return await store.placements.claim(node, slots, room, _folder(node), dead_after=LIMIT)


async def test_a_node_claims_the_oldest_as_many_as_its_free_slots_in_its_folder(
        pg_store: Store) -> None:
    await pg_store.nodes.join("alpha", "a" * 32, "0.1", LIMIT)
    ids = [await _queued(pg_store, n, chat=1 + n % 2) for n in range(5)]
    await _queued(pg_store, 90, node="alpha", state="seeding")  # holds one of its 3 slots
    await _queued(pg_store, 91, node="alpha", state="paused")  # holds none
    claimed = await _claim(pg_store, "alpha", 3)
    assert [r.id for r in claimed] == ids[:2]
    assert {(r.node, r.directory, r.gid) for r in claimed} == {
        ("alpha", "/alpha/torrents/2", None), ("alpha", "/alpha/torrents/1", None)}
    assert [r.directory for r in claimed] == ["/alpha/torrents/1", "/alpha/torrents/2"]
    assert await _claim(pg_store, "alpha", 3) == []  # its claims hold its slots now
    left = [r for r in await pg_store.downloads.list() if r.node is None]
    assert sorted(r.id for r in left) == ids[2:]


async def test_what_does_not_fit_waits_for_a_node_with_room_and_a_magnet_always_fits(
        pg_store: Store) -> None:
    big = await _queued(pg_store, 1, size=50 * GIB)
    magnet = await _queued(pg_store, 2)
    small = await _queued(pg_store, 3, size=GIB)
    claimed = await _claim(pg_store, "alpha", 5, room=10 * GIB)
    assert [(r.id, r.state) for r in claimed] == [(magnet, "metadata"), (small, "queued")]
    assert [r.id for r in await _claim(pg_store, "beta", 5, room=60 * GIB)] == [big]


async def test_paused_and_finished_downloads_without_a_node_are_not_claimed(
        pg_store: Store) -> None:
    await _queued(pg_store, 1, state="paused")
    await _queued(pg_store, 2, state="cancelled")
    assert await _claim(pg_store, "alpha", 5) == []


async def test_nodes_claiming_at_once_never_take_one_download_twice(postgresql_url: str) -> None:
    """Each node on its own connection, as on their machines: SKIP LOCKED lets each pass
    over the rows another is taking, and every download goes to exactly one node."""
    stores = [Store(postgresql_url) for _ in range(3)]
    for store in stores:
        await store.open()
    try:
        ids = [await _queued(stores[0], n) for n in range(60)]
        shares = await asyncio.gather(*(_claim(store, f"node{i}", 100)
                                        for i, store in enumerate(stores)))
        claimed = [record.id for found in shares for record in found]
        assert sorted(claimed) == ids  # each once, none left
        for found in shares:  # each node's share is in the queue's order
            assert [r.id for r in found] == sorted(r.id for r in found)
    finally:
        for store in stores:
            await store.close()


async def test_a_change_of_a_waiting_download_loses_to_a_claim_that_came_first(
        pg_store: Store) -> None:
    first = await _queued(pg_store, 1)
    second = await _queued(pg_store, 2)
    paused = await pg_store.placements.change(second, ("queued", "metadata"),
                                              {"state": "paused"})
    assert paused is not None and (paused.state, paused.node) == ("paused", None)
    (claimed,) = await _claim(pg_store, "alpha", 5)  # the paused one waits
    assert claimed.id == first
    assert await pg_store.placements.change(first, ("queued", "metadata"),
                                            {"state": "cancelled"}) is None
    record = await pg_store.downloads.get(first)
    # claimed, a magnet whose files are unknown fetches its metadata first
    assert record is not None and (record.state, record.node) == ("metadata", "alpha")
    resumed = await pg_store.placements.change(second, ("paused",), {"state": "queued"})
    assert resumed is not None and resumed.state == "queued"
    assert [r.id for r in await _claim(pg_store, "beta", 5)] == [second]


async def test_a_replaced_node_claims_nothing(pg_store: Store) -> None:
    epoch = await pg_store.nodes.join("alpha", "a" * 32, "0.1", LIMIT)
    waiting = await _queued(pg_store, 1)
    pg_store.database.hold("alpha", epoch)
    await pg_store.nodes.join("alpha", "a" * 32, "0.1", LIMIT)  # a newer start of it
    with pytest.raises(NodeReplaced):
        await _claim(pg_store, "alpha", 5)
    record = await pg_store.downloads.get(waiting)
    assert record is not None and record.node is None


async def test_only_the_first_node_takes_the_rows_without_a_node(pg_store: Store) -> None:
    """Rows from before nodes are the first node's; later, a row without a node waits in
    the queue, and a node that joins does not take it."""
    epoch = await pg_store.nodes.join("alpha", "a" * 32, "0.1", LIMIT)
    await pg_store.nodes.leave("alpha", epoch)
    waiting = await _queued(pg_store, 1)
    await pg_store.nodes.join("beta", "b" * 32, "0.1", LIMIT)
    record = await pg_store.downloads.get(waiting)
    assert record is not None and record.node is None


async def test_work_goes_to_the_live_node_with_the_most_free_slots(pg_store: Store) -> None:
    """alpha has 3 slots, beta 4 (its heartbeat says), gamma 9 but it stopped: one at a
    time, each claim goes where most slots are free, and the two end up even."""
    for name, slots in (("alpha", 3), ("beta", 4), ("gamma", 9)):
        epoch = await pg_store.nodes.join(name, name[0] * 32, "0.1", LIMIT)
        await pg_store.nodes.beat(name, epoch, NodeFigures(slots_total=slots))
    await pg_store.nodes.leave("gamma", epoch)
    ids = [await _queued(pg_store, n) for n in range(5)]
    assert await _claim(pg_store, "alpha", 3) == []  # beta has more free
    assert [r.id for r in await _claim(pg_store, "beta", 4)] == ids[:1]  # 4 - 3: one
    assert [r.id for r in await _claim(pg_store, "alpha", 3)] == ids[1:2]  # a tie: one
    assert await _claim(pg_store, "alpha", 3) == []
    assert [r.id for r in await _claim(pg_store, "beta", 4)] == ids[2:3]
    assert [r.id for r in await _claim(pg_store, "alpha", 3)] == ids[3:4]
    assert [r.id for r in await _claim(pg_store, "beta", 4)] == ids[4:]


async def test_a_waiting_download_is_shown_waiting_until_it_is_cancelled(
        pg_store: Store) -> None:
    """Where a download is, for the lists: waiting while no node claimed it; a cancelled
    one waits for nothing; actions on it are this node's to do (no refusal)."""
    here = Ownership(pg_store, NodeConfig("alpha", "a" * 32, "0.1", slots=3, dead_after=LIMIT))
    waiting = await pg_store.downloads.get(await _queued(pg_store, 1))
    cancelled = await pg_store.downloads.get(await _queued(pg_store, 2, state="cancelled"))
    assert waiting is not None and cancelled is not None
    shown = await here.place([snapshot(waiting), snapshot(cancelled)])
    assert [t.elsewhere for t in shown] == [
        "waiting for a node with a free slot and room for it", None]
    assert here.unplaced(waiting) and not here.owns(waiting)
    await here.check(waiting)  # nothing of it anywhere: reading it finds nothing


async def test_a_node_that_just_joined_counts_its_slots_before_its_first_heartbeat(
        pg_store: Store) -> None:
    """beta joined a moment ago with 4 slots, and has not beaten yet: alpha (3) leaves the
    new download to it. Red before: a join wrote 0 slots, and alpha took it."""
    await pg_store.nodes.join("alpha", "a" * 32, "0.1", LIMIT, slots=3)
    await pg_store.nodes.join("beta", "b" * 32, "0.1", LIMIT, slots=4)
    waiting = await _queued(pg_store, 1)
    assert await _claim(pg_store, "alpha", 3) == []
    assert [r.id for r in await _claim(pg_store, "beta", 4)] == [waiting]


async def test_a_freer_node_without_room_does_not_hold_back_the_others(
        pg_store: Store) -> None:
    """beta has more free slots but, by its heartbeat, 1 GiB free: a 10 GiB .torrent goes
    to alpha, which has the room; a magnet (size unknown) still goes to beta."""
    await pg_store.nodes.join("alpha", "a" * 32, "0.1", LIMIT, slots=3)
    epoch = await pg_store.nodes.join("beta", "b" * 32, "0.1", LIMIT, slots=4)
    await pg_store.nodes.beat("beta", epoch, NodeFigures(slots_total=4, free_disk=GIB))
    big = await _queued(pg_store, 1, size=10 * GIB)
    assert [r.id for r in await _claim(pg_store, "alpha", 3)] == [big]
    magnet = await _queued(pg_store, 2)
    assert await _claim(pg_store, "alpha", 3) == []
    assert [r.id for r in await _claim(pg_store, "beta", 4)] == [magnet]
