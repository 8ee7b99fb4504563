"""What one progress poll costs on a real aria2c: which lists it reads and what it writes.

Counts, never timings (those are the monitor benchmark's, ``python -m tests.bench --only
monitor``): an idle poll asks aria2 only for what runs and what finished (both bounded
whatever the number of downloads), never for the waiting list that grows with them, and
writes nothing; a poll with k changed rows writes those k rows in one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from manager import TorrentState
from manager.aria2.observation import WAITING_KEYS
from manager.tracking.sweep import SWEEP_EVERY
from supervisor.config import Settings
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.swarm import Swarm

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
    assert polls.requests == [["aria2.tellActive", "aria2.tellStopped"]] * 2
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
    assert methods == ["aria2.tellActive", "aria2.tellWaiting", "aria2.tellStopped"]
    assert waiting[-1] == list(WAITING_KEYS)
    # Paused behind the manager's back (aria2 says nothing of a waiting one): the next
    # sweep sees its status change and reads that one download in full, in a second request.
    await idle_engine.rpc.call("aria2.forcePause", live.record.gid)
    polls.calls.clear()
    await idle_engine.manager.poll_once(sweep=True)
    assert [[m for m, _ in calls] for calls in polls.calls] == [
        ["aria2.tellActive", "aria2.tellWaiting", "aria2.tellStopped"], ["aria2.tellStatus"]]
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
