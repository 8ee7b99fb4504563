"""The nodes table on both engines: joining, heartbeats, fencing a replaced start, leaving;
and which downloads are a node's own.

A node is "silent past the limit" here by a ``dead_after`` of 0 (every heartbeat already
written is older than that), never by sleeping.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from manager import NodeConfig, NodeConflict, NodeFigures, NodeReplaced, OnAnotherNode, utcnow
from manager.downloads.live import snapshot
from manager.nodes import Ownership
from manager.store import Store

HOME_A = "a" * 32
HOME_B = "b" * 32
LIMIT = 30.0


async def test_a_node_joins_beats_and_leaves(store: Store) -> None:
    epoch = await store.nodes.join("box-a", HOME_A, "0.1.0", LIMIT)
    figures = NodeFigures(slots_used=1, slots_total=3, free_disk=5 * 2**30, downloads=7)
    assert await store.nodes.beat("box-a", epoch, figures)
    (node,) = await store.nodes.all()
    assert (node.name, node.version, node.figures, node.left_at) == (
        "box-a", "0.1.0", figures, None)
    assert 0 <= node.silent_for < LIMIT  # the database's own clock, read twice
    await store.nodes.leave("box-a", epoch)
    (node,) = await store.nodes.all()
    assert node.left_at is not None


async def test_the_same_name_from_another_data_dir_is_refused_while_its_holder_lives(
        store: Store) -> None:
    epoch = await store.nodes.join("box-a", HOME_A, "0.1.0", LIMIT)
    with pytest.raises(NodeConflict, match="ARIABOT_NODE_NAME"):
        await store.nodes.join("box-a", HOME_B, "0.1.0", LIMIT)
    assert await store.nodes.beat("box-a", epoch, NodeFigures())  # still the holder's


async def test_the_same_data_dir_takes_its_name_back_at_once_and_fences_the_old_start(
        store: Store) -> None:
    """A crash and a restart: no wait for the limit, and the start before cannot beat."""
    first = await store.nodes.join("box-a", HOME_A, "0.1.0", LIMIT)
    second = await store.nodes.join("box-a", HOME_A, "0.1.1", LIMIT)
    assert second == first + 1
    assert not await store.nodes.beat("box-a", first, NodeFigures())
    assert await store.nodes.beat("box-a", second, NodeFigures())
    await store.nodes.leave("box-a", first)  # the old start's word changes nothing
    (node,) = await store.nodes.all()
    assert (node.version, node.left_at) == ("0.1.1", None)


async def test_another_data_dir_takes_a_name_silent_past_the_limit(store: Store) -> None:
    first = await store.nodes.join("box-a", HOME_A, "0.1.0", LIMIT)
    await store.nodes.join("box-a", HOME_B, "0.1.0", 0.0)
    assert not await store.nodes.beat("box-a", first, NodeFigures())


async def test_a_sqlite_database_serves_one_node_until_the_other_leaves_or_dies(
        tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'one.db'}")
    await store.open()
    try:
        epoch = await store.nodes.join("box-a", HOME_A, "0.1.0", LIMIT)
        with pytest.raises(NodeConflict, match="a SQLite database serves one node"):
            await store.nodes.join("box-b", HOME_B, "0.1.0", LIMIT)
        assert [node.name for node in await store.nodes.all()] == ["box-a"]  # nothing written
        await store.nodes.join("box-b", HOME_B, "0.1.0", 0.0)  # box-a silent past the limit
        await store.nodes.leave("box-b", 1)
        await store.nodes.leave("box-a", epoch)
        await store.nodes.join("box-c", HOME_A, "0.1.0", LIMIT)  # both left
        assert [node.name for node in await store.nodes.all()] == ["box-a", "box-b", "box-c"]
    finally:
        await store.close()


@pytest.mark.postgresql
async def test_several_nodes_share_a_postgresql_database(postgresql_url: str) -> None:
    store = Store(postgresql_url)
    await store.open()
    try:
        for name, home in (("box-a", HOME_A), ("box-b", HOME_B), ("box-c", "c" * 32)):
            await store.nodes.join(name, home, "0.1.0", LIMIT)
        assert [node.name for node in await store.nodes.all()] == ["box-a", "box-b", "box-c"]
    finally:
        await store.close()


async def test_two_data_dirs_joining_at_once_under_one_name_never_both_get_it(
        database_url: str) -> None:
    """Two connections (two machines) race to join under one name: joins are serialised,
    so one of each pair is refused, every round."""
    stores = [Store(database_url), Store(database_url)]
    for opened in stores:
        await opened.open()
    try:
        for round_ in range(10):
            name = f"box{round_}"
            results = await asyncio.gather(
                *(opened.nodes.join(name, home, "0.1.0", LIMIT)
                  for opened, home in zip(stores, (HOME_A, HOME_B), strict=True)),
                return_exceptions=True)
            refused = [r for r in results if isinstance(r, NodeConflict)]
            joined = [r for r in results if isinstance(r, int)]
            assert (len(refused), len(joined)) == (1, 1), results
            await stores[0].nodes.leave(name, joined[0])
    finally:
        for opened in stores:
            await opened.close()


async def _download(store: Store, info_hash: str, node: str | None) -> int:
    record = await store.downloads.create(
        info_hash=info_hash, chat_id=1, user_id=1, name=info_hash[:6], source_kind="magnet",
        source=b"magnet:?", directory="/downloads/torrents/1", state="queued", node=node)
    return record.id


async def test_the_first_node_takes_the_downloads_stored_before_nodes_and_no_other(
        store: Store) -> None:
    """Rows from before migration 11 (no node) are in the aria2c and on the disk of the
    ariabot that was running: the first node to join. A later node takes none of them."""
    older = await _download(store, "a" * 40, None)
    epoch = await store.nodes.join("box-a", HOME_A, "0.1.0", LIMIT)
    await store.nodes.leave("box-a", epoch)
    await store.nodes.join("box-b", HOME_B, "0.1.0", LIMIT)
    record = await store.downloads.get(older)
    assert record is not None and record.node == "box-a"
    assert [r.id for r in await store.downloads.list(node="box-b")] == []
    assert await store.downloads.state_counts(node="box-a") == {"queued": 1}


async def test_another_nodes_download_is_refused_with_where_it_is(store: Store) -> None:
    epoch = await store.nodes.join("box-a", HOME_A, "0.1.0", LIMIT)
    await store.nodes.leave("box-a", epoch)
    await store.nodes.join("box-b", HOME_B, "0.1.0", LIMIT)
    ours = await store.downloads.get(await _download(store, "b" * 40, "box-b"))
    theirs = await store.downloads.get(await _download(store, "c" * 40, "box-a"))
    unknown = await store.downloads.get(await _download(store, "d" * 40, "box-x"))
    assert ours is not None and theirs is not None and unknown is not None
    here = Ownership(store, NodeConfig("box-b", HOME_B, "0.1.0", slots=3, dead_after=LIMIT))
    assert here.owns(ours) and not here.owns(theirs)
    await here.check(ours)
    with pytest.raises(OnAnotherNode, match=rf"^#{theirs.id} is on node box-a, stopped \d+ s "
                                            "ago; only that node has it$"):
        await here.check(theirs)
    with pytest.raises(OnAnotherNode, match="box-x, which never joined this database"):
        await here.check(unknown)
    silent = Ownership(store, NodeConfig("box-a", HOME_A, "0.1.0", slots=3, dead_after=0.0))
    with pytest.raises(OnAnotherNode, match="box-b, offline, last heard from"):
        await silent.check(ours)
    live = Ownership(store, NodeConfig("box-a", HOME_A, "0.1.0", slots=3, dead_after=LIMIT))
    with pytest.raises(OnAnotherNode, match=rf"^#{ours.id} is on node box-b; only that node "
                                            "has it$"):
        await live.check(ours)
    assert Ownership(store, None).owns(theirs)  # a manager without a node: every row
    moving = {"download_speed": 5000, "upload_speed": 700, "peers": 3, "seeders": 1}
    theirs = await store.downloads.update(theirs.id, **moving)
    ours = await store.downloads.update(ours.id, **moving)
    assert theirs is not None and ours is not None
    shown = await here.place([snapshot(ours), snapshot(theirs)])
    assert shown[0].elsewhere is None
    assert shown[1].elsewhere is not None
    assert re.fullmatch(r"on node box-a, stopped \d+ s ago", shown[1].elsewhere)
    # A stopped node's download moves no more, whatever it stored last; a live one's does.
    assert (shown[1].download_speed, shown[1].upload_speed, shown[1].peers) == (0, 0, 0)
    assert (shown[0].unreachable, shown[1].unreachable) == (False, True)
    (seen_live,) = await live.place([snapshot(ours)])
    assert (seen_live.elsewhere, seen_live.download_speed) == ("on node box-b", 5000)
    assert not seen_live.unreachable  # actions on it are asked of box-b


async def _in_state(store: Store, info_hash: str, node: str, state: str, *,
                    done: bool = False) -> int:
    download_id = await _download(store, info_hash, node)
    await store.downloads.update(download_id, state=state, gid=info_hash[:16],
                                 completed_bytes=7, peers=3,
                                 completed_at=utcnow() if done else None)
    return download_id


async def test_a_dead_nodes_unfinished_downloads_are_taken_and_its_finished_ones_stay(
        store: Store) -> None:
    """alpha dies (a limit of 0 s); beta joins and takes what alpha had not finished:
    restarted from nothing (back in the queue on PostgreSQL, in beta's chat folder on
    SQLite), without a GID, the file choice and the message kept; each move remembers where
    it was, for alpha's return."""
    alpha = await store.nodes.join("alpha", HOME_A, "0.1.0", 0.0)
    taken = {state: await _in_state(store, f"{n:x}" * 40, "alpha", state)
             for n, state in enumerate(("queued", "metadata", "downloading", "paused"), 1)}
    seeding = await _in_state(store, "5" * 40, "alpha", "seeding", done=True)
    paused_done = await _in_state(store, "6" * 40, "alpha", "paused", done=True)
    failed = await _in_state(store, "7" * 40, "alpha", "error")
    await store.downloads.update(taken["paused"], selected_files="2,3", message_id=99)

    beta = await store.nodes.join("beta", HOME_B, "0.1.0", 0.0)
    moves = await store.nodes.take_over("beta", beta, 0.0, lambda chat: f"/b/torrents/{chat}")

    assert sorted(m.download_id for m in moves) == sorted(taken.values())
    assert {(m.from_node, m.from_home, m.to_node, m.directory) for m in moves} == {
        ("alpha", HOME_A, "beta", "/downloads/torrents/1")}
    assert {m.download_id: m.gid for m in moves} == {
        i: f"{n:x}" * 16 for n, i in enumerate(taken.values(), 1)}
    for state, download_id in taken.items():
        record = await store.downloads.get(download_id)
        assert record is not None
        # PostgreSQL: back in the queue for the node with a free slot, paused if it was;
        # SQLite (one node): this node's, in its folder.
        assert (record.node, record.gid, record.directory, record.state) == (
            (None, None, "", state if state == "paused" else "queued") if store.shared
            else ("beta", None, "/b/torrents/1", state))
        assert (record.completed_bytes, record.peers) == (0, 0)
    paused = await store.downloads.get(taken["paused"])
    assert paused is not None and (paused.selected_files, paused.message_id) == ("2,3", 99)
    for download_id in (seeding, paused_done, failed):
        record = await store.downloads.get(download_id)
        assert record is not None and record.node == "alpha"
    assert [m.id for m in await store.nodes.moves_from("alpha", HOME_A)] == [
        m.id for m in moves]
    assert await store.nodes.moves_from("alpha", "c" * 32) == []  # the name's, not its data
    assert await store.nodes.moves_from("beta", HOME_B) == []
    # alpha's epoch is raised: its next heartbeat says it was replaced.
    assert not await store.nodes.beat("alpha", alpha, NodeFigures())
    await store.nodes.forget_moves([moves[0].id])
    assert len(await store.nodes.moves_from("alpha", HOME_A)) == len(moves) - 1


async def test_a_live_or_stopped_node_keeps_its_downloads(store: Store) -> None:
    alpha = await store.nodes.join("alpha", HOME_A, "0.1.0", LIMIT)
    queued = await _in_state(store, "1" * 40, "alpha", "queued")
    await store.nodes.leave("alpha", alpha)  # stopped cleanly: its downloads wait for it
    beta = await store.nodes.join("beta", HOME_B, "0.1.0", LIMIT)
    assert await store.nodes.take_over("beta", beta, LIMIT, str) == []
    record = await store.downloads.get(queued)
    assert record is not None and (record.node, record.gid) == ("alpha", "1" * 16)


async def test_a_node_whose_downloads_were_taken_writes_none_of_them_any_more(
        store: Store) -> None:
    """The fence: after beta took alpha's downloads, a write of the woken alpha (its
    download's completion, with the notice that announces it) is refused whole."""
    alpha = await store.nodes.join("alpha", HOME_A, "0.1.0", 0.0)
    store.database.hold("alpha", alpha)
    download_id = await _in_state(store, "1" * 40, "alpha", "downloading")
    beta = await store.nodes.join("beta", HOME_B, "0.1.0", 0.0)
    assert await store.nodes.take_over("beta", beta, 0.0, str)
    pending = len(await store.notices.pending())

    with pytest.raises(NodeReplaced):
        await store.downloads.update(download_id, state="seeding", completed_at=utcnow())
    with pytest.raises(NodeReplaced):
        await store.downloads.create(
            info_hash="2" * 40, chat_id=1, user_id=1, name="new", source_kind="magnet",
            source=b"magnet:?", directory="/downloads/torrents/1", state="queued",
            node="alpha")
    with pytest.raises(NodeReplaced):
        await store.downloads.delete([download_id])
    record = await store.downloads.get(download_id)
    assert record is not None and (record.node, record.state, record.completed_at) == (
        (None, "queued", None) if store.shared else ("beta", "downloading", None))
    assert len(await store.notices.pending()) == pending
    assert [r.info_hash for r in await store.downloads.list()] == ["1" * 40]
    if store.shared:  # nothing is beta's to take back: it waits in the queue
        assert await store.nodes.take_over("alpha", alpha, 0.0, str) == []
    else:
        with pytest.raises(NodeReplaced):
            await store.nodes.take_over("alpha", alpha, 0.0, str)  # nor takes anything back
