"""What one progress poll costs on a real aria2c: which lists it reads and what it writes.

Counts, never timings (those are the monitor benchmark's, ``python -m tests.bench --only
monitor``): an idle poll asks aria2 only for what runs and what finished (both bounded
whatever the number of downloads), never for the waiting list that grows with them, and
writes nothing; a poll with k changed rows writes those k rows in one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from manager import TorrentState
from manager.aria2 import Aria2Ops
from manager.aria2 import ops as ops_module
from manager.aria2.observation import WAITING_KEYS
from manager.tracking.sweep import SWEEP_EVERY
from supervisor.config import Settings
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.swarm import Swarm
from tests.wsgate import WebSocketGate

RUNNING = 2
QUEUED = 4


@pytest.fixture
async def idle_engine(engine_settings: Callable[..., Settings],
                      swarm: Swarm) -> AsyncIterator[Engine]:
    """aria2c with RUNNING dead magnets fetching metadata and QUEUED more waiting; the
    test runs every poll itself."""
    engine = await start_engine(
        engine_settings(ARIABOT_MAX_CONCURRENT=str(RUNNING)), progress_interval=3600)
    try:
        for index in range(RUNNING + QUEUED):
            await engine.manager.add(swarm.dead_magnet(f"idle{index}"), chat_id=1, user_id=1)
        await engine.manager.poll_once()  # learns the queue once
        await _settle(engine)
        yield engine
    finally:
        await stop_engine(engine)


async def _settle(engine: Engine, quiet: float = 0.5) -> None:
    """Wait until the refreshes after the adds are done: no statement for ``quiet`` s."""
    deadline = asyncio.get_running_loop().time() + 30
    last = engine.store.statements
    while True:
        await asyncio.sleep(quiet)
        if engine.store.statements == last:
            return
        assert asyncio.get_running_loop().time() < deadline, "the manager never went quiet"
        last = engine.store.statements


def _reads(polls: _PollRequests, gid: str | None) -> int:
    """How many times ``gid`` was read with ``tellStatus`` (a refresh, a sweep's full read)."""
    return sum(1 for calls in polls.calls for method, params in calls
               if method == "aria2.tellStatus" and params[:1] == [gid])


class _PollRequests:
    """Records the methods of every multicall that reads aria2's lists (the polls), and
    every multicall at all (``calls``)."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.requests: list[list[str]] = []
        self.calls: list[list[tuple[str, list[Any]]]] = []
        original = engine.rpc.multicall

        async def multicall(calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
            methods = [method for method, _ in calls]
            if "aria2.tellActive" in methods:
                self.requests.append(methods)
            self.calls.append([(method, list(params)) for method, params in calls])
            return await original(calls)

        monkeypatch.setattr(engine.rpc, "multicall", multicall)


@pytest.mark.usefixtures("database_url")  # the statement counts, on both engines
async def test_an_idle_poll_reads_only_what_runs_and_writes_nothing(
    idle_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = _PollRequests(idle_engine, monkeypatch)
    before = idle_engine.store.statements
    await idle_engine.manager.poll_once()
    await idle_engine.manager.poll_once()
    assert polls.requests == [["aria2.tellActive", "aria2.tellStopped", "aria2.getGlobalStat"]] * 2
    assert idle_engine.store.statements == before


async def test_the_waiting_list_is_read_again_after_an_action_and_at_least_every_so_often(
    idle_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = _PollRequests(idle_engine, monkeypatch)
    queued = sorted(t.id for t in await idle_engine.manager.list(1)
                    if t.state is TorrentState.QUEUED)
    assert len(queued) == QUEUED
    gid = idle_engine.manager.live.get(queued[0]).record.gid  # type: ignore[union-attr]
    await idle_engine.manager.pause(queued[0], chat_id=1)
    # aria2 sends no notification when a waiting download is paused (nothing to wait for:
    # the pause itself tells the sweep that the queue moved); checked at the end.
    await idle_engine.manager.poll_once()
    assert "aria2.tellWaiting" in polls.requests[-1]
    listed = {t.id: t for t in await idle_engine.manager.list(1)}
    # The paused one left the queue: those behind it moved up.
    assert [listed[i].queue_position for i in queued[1:]] == [1, 2, 3]
    for _ in range(SWEEP_EVERY):
        await idle_engine.manager.poll_once()
    sweeps = ["aria2.tellWaiting" in methods for methods in polls.requests[1:]]
    assert sweeps == [False] * (SWEEP_EVERY - 1) + [True]
    assert _reads(polls, gid) == 1  # the first sweep's full read; no refresh came between


async def test_a_sweep_reads_in_full_only_the_waiting_downloads_whose_status_changed(
    idle_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = [t for t in await idle_engine.manager.list(1) if t.state is TorrentState.QUEUED]
    live = idle_engine.manager.live.get(queued[0].id)
    assert live is not None and live.record.gid is not None
    polls = _PollRequests(idle_engine, monkeypatch)
    await idle_engine.manager.poll_once(sweep=True)
    [(methods, waiting)] = [([m for m, _ in calls], dict(calls)["aria2.tellWaiting"])
                            for calls in polls.calls]
    assert methods == ["aria2.tellActive", "aria2.tellWaiting", "aria2.tellStopped",
                       "aria2.getGlobalStat"]
    assert waiting[-1] == list(WAITING_KEYS)
    # Paused behind the manager's back (aria2 says nothing of a waiting one): the next
    # sweep sees its status change and reads that one download in full, in a second request.
    await idle_engine.rpc.call("aria2.forcePause", live.record.gid)
    polls.calls.clear()
    await idle_engine.manager.poll_once(sweep=True)
    assert [[m for m, _ in calls] for calls in polls.calls] == [
        ["aria2.tellActive", "aria2.tellWaiting", "aria2.tellStopped", "aria2.getGlobalStat"],
        ["aria2.tellStatus"]]
    assert polls.calls[1][0][1][0] == live.record.gid
    assert (await idle_engine.manager.get(queued[0].id)).state is TorrentState.PAUSED


@pytest.mark.usefixtures("database_url")  # the statement counts, on both engines
async def test_a_poll_with_k_changed_rows_writes_them_in_one_transaction(
    idle_engine: Engine
) -> None:
    running = [live for live in idle_engine.manager.live
               if live.record.state == TorrentState.METADATA.value]
    assert len(running) == RUNNING
    for live in running:  # as if their peers had changed in aria2
        live.record = dataclasses.replace(live.record, peers=-1)
    before = idle_engine.store.statements
    await idle_engine.manager.poll_once()
    assert idle_engine.store.statements - before == RUNNING + 2  # BEGIN, k UPDATEs, COMMIT


def _waiting_reads(polls: _PollRequests) -> list[list[Any]]:
    """The ``tellWaiting`` parameters of every request, in order."""
    return [params for calls in polls.calls for method, params in calls
            if method == "aria2.tellWaiting"]


async def test_a_long_waiting_list_is_read_in_pages_with_the_right_positions(
    idle_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each answer is parsed in a thread that holds the GIL (the loop waits): a page at a
    time, the queue read whole all the same."""
    monkeypatch.setattr(ops_module, "WAITING_PAGE", 3)
    polls = _PollRequests(idle_engine, monkeypatch)
    await idle_engine.manager.poll_once(sweep=True)
    assert [params[:2] for params in _waiting_reads(polls)] == [[0, 3], [3, 3]]
    queued = sorted((t for t in await idle_engine.manager.list(1)
                     if t.state is TorrentState.QUEUED), key=lambda t: t.id)
    assert [t.queue_position for t in queued] == [1, 2, 3, 4]


async def test_a_waiting_list_that_moves_between_its_pages_is_read_again(
    idle_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download that leaves the queue between two pages shifts those behind it: the
    second page would miss one. aria2's counts, read with each page, say so."""
    monkeypatch.setattr(ops_module, "WAITING_PAGE", 2)
    rpc = idle_engine.rpc
    first = (await rpc.call("aria2.tellWaiting", 0, 1, ["gid"]))[0]["gid"]
    original = rpc.multicall
    moved: list[str] = []

    async def multicall(calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        answers = await original(calls)
        if not moved and any(method == "aria2.tellWaiting" for method, _ in calls):
            moved.append(first)  # after the first page was read: the queue moves on
            await ops.remove(first)
        return answers

    ops = Aria2Ops(rpc, time.monotonic)
    monkeypatch.setattr(rpc, "multicall", multicall)
    _active, waiting, _stopped = await ops.list_everything(waiting_keys=("gid", "status"))
    monkeypatch.setattr(rpc, "multicall", original)
    assert moved == [first]
    whole = await rpc.call("aria2.tellWaiting", 0, 100, ["gid", "status"])
    assert len(whole) == QUEUED - 1
    assert [entry["gid"] for entry in waiting] == [entry["gid"] for entry in whole]


async def test_a_download_lost_without_a_word_is_found_by_the_next_idle_poll(
    engine_settings: Callable[..., Settings], swarm: Swarm, caplog: pytest.LogCaptureFixture
) -> None:
    """No notification (the WebSocket is down) and no action of the manager's: aria2's
    counts, read by every poll, show its waiting list shorter than the last sweep found."""
    gate = WebSocketGate()
    await gate.start()
    engine = await start_engine(engine_settings(ARIABOT_MAX_CONCURRENT=str(RUNNING)),
                                progress_interval=3600, via=gate.route)
    try:
        for index in range(RUNNING + QUEUED):
            await engine.manager.add(swarm.dead_magnet(f"lost{index}"), chat_id=1, user_id=1)
        await engine.manager.poll_once()
        await _settle(engine)
        await engine.manager.poll_once()  # idle, whatever the refreshes left to sweep
        gate.close()
        last = (await engine.rpc.call("aria2.tellWaiting", 0, 100, ["gid"]))[-1]["gid"]
        [lost] = [t.id for t in await engine.manager.list(1)
                  if engine.manager.live.get(t.id).record.gid == last]  # type: ignore[union-attr]
        await Aria2Ops(engine.rpc, time.monotonic).remove(last)  # result and all
        caplog.clear()
        await engine.manager.poll_once()
        assert "aria2 lost 1 download(s); re-adding them" in caplog.messages
        assert lost in engine.manager.live.ids()
    finally:
        await stop_engine(engine)
        await gate.stop()


async def test_a_poll_before_the_new_aria2c_is_matched_tells_of_nothing_lost(
    engine_settings: Callable[..., Settings], swarm: Swarm, caplog: pytest.LogCaptureFixture
) -> None:
    """Just after aria2c's restart it may not have restored its session yet: a poll then
    finds downloads missing that are not lost, and a second reconcile followed the first
    (``test_a_seeding_download_stays_seeding_in_the_log_across_a_restart`` failed one run
    in eight so). The reconcile that matches the new session is the one that re-adds."""
    caplog.set_level("INFO", logger="manager.tracking.sync")
    gate = WebSocketGate()
    await gate.start()
    engine = await start_engine(engine_settings(), progress_interval=3600, via=gate.route)
    try:
        added = await engine.manager.add(swarm.dead_magnet("not-yet"), chat_id=1, user_id=1)
        await engine.manager.poll_once()
        await _settle(engine)
        gate.close()  # no notification of the removal: as across a restart
        live = engine.manager.live.get(added.torrent.id)
        assert live is not None and live.record.gid is not None
        await Aria2Ops(engine.rpc, time.monotonic).remove(live.record.gid)
        engine.manager.aria2_up("a new session")  # the supervisor: aria2c answers again
        caplog.clear()
        await engine.manager.poll_once(sweep=True)  # before the reconcile that was scheduled
        assert not [m for m in caplog.messages if "lost" in m]
        assert engine.manager.live.get(added.torrent.id) is live  # nothing re-added yet
        await engine.manager.reconcile()  # as the listener does when it hears aria2c again
        assert [m for m in caplog.messages if m.startswith("reconciled")] == [
            "reconciled 1 unfinished download(s) with aria2"]
        again = engine.manager.live.get(added.torrent.id)
        assert again is not None and again.record.gid is not None
        status = await engine.rpc.call("aria2.tellStatus", again.record.gid, ["status"])
        assert status["status"] in ("active", "waiting")  # aria2 holds it again
    finally:
        await stop_engine(engine)
        await gate.stop()
