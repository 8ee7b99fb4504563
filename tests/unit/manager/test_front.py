"""The front lock on a real PostgreSQL server: one holder at a time, taken over when the
holder lets go or its session ends, and its loss noticed by the holder; SQLite's one node is
always the front."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from manager import FrontLock, NoticeKind, Store
from manager.store.front import RETRY_S


@pytest.fixture
async def schema(postgresql_url: str) -> AsyncIterator[str]:
    """A database with ariabot's schema (the nodes table the lock reads), as nodes find it."""
    store = Store(postgresql_url)
    await store.open()
    await store.close()
    yield postgresql_url


async def test_on_sqlite_the_one_node_is_the_front(tmp_path: Path) -> None:
    lock = FrontLock(f"sqlite:///{tmp_path / 'ariabot.db'}", "box-a", 30.0)
    assert await lock.try_acquire()
    await asyncio.wait_for(lock.acquire(), 1)
    await lock.release()


@pytest.mark.postgresql
async def test_one_front_at_a_time_and_the_next_takes_over_when_it_lets_go(
        schema: str) -> None:
    first, second = FrontLock(schema, "n", 30.0), FrontLock(schema, "n", 30.0)
    try:
        assert await first.try_acquire()
        assert not await second.try_acquire()
        waiting = asyncio.create_task(second.acquire())
        await first.release()
        await asyncio.wait_for(waiting, RETRY_S * 3)
        assert not await first.try_acquire()
    finally:
        await first.release()
        await second.release()


@pytest.mark.postgresql
async def test_a_front_whose_session_ends_finds_out_and_another_takes_over(
        schema: str) -> None:
    """The server ends the holder's session (what a restart of PostgreSQL, or the end of a
    vanished host's TCP connection, does): the holder's ``lost`` returns, and the waiting
    node becomes the front."""
    holder, waiting = FrontLock(schema, "n", 30.0), FrontLock(schema, "n", 30.0)
    try:
        assert await holder.try_acquire()
        taking = asyncio.create_task(waiting.acquire())
        losing = asyncio.create_task(holder.lost(lambda: None))
        async with await psycopg.AsyncConnection.connect(schema,
                                                         autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND pid <> pg_backend_pid() AND database = (SELECT oid FROM "
                "pg_database WHERE datname = current_database())")
        await asyncio.wait_for(losing, RETRY_S * 3)
        await asyncio.wait_for(taking, RETRY_S * 3)
    finally:
        await holder.release()
        await waiting.release()


@pytest.mark.postgresql
async def test_the_front_hears_at_once_of_notices_another_node_stored(
        schema: str) -> None:
    """A download finished on another node: its notice wakes the front's bot, which would
    otherwise hear only of its own node's writes."""
    front, elsewhere = FrontLock(schema, "n", 30.0), Store(schema)
    await elsewhere.open()
    heard = asyncio.Event()
    try:
        assert await front.try_acquire()
        listening = asyncio.create_task(front.lost(heard.set))
        await elsewhere.notices.add(NoticeKind.ARIA2_RESTARTED, "aria2c restarted")
        await asyncio.wait_for(heard.wait(), RETRY_S * 3)
        listening.cancel()
    finally:
        await front.release()
        await elsewhere.close()


@pytest.mark.postgresql
async def test_a_front_dead_by_its_heartbeat_loses_its_lock_and_a_live_one_keeps_it(
        schema: str) -> None:
    """A frozen front keeps its session (the kernel answers for it) and so its lock: a node
    ends that session once the front's heartbeat is older than the limit, not before."""
    store = Store(schema)
    await store.open()
    await store.nodes.join("alpha", "a" * 32, "0.1.0", 30.0)
    holder = FrontLock(schema, "alpha", 30.0)
    patient, impatient = FrontLock(schema, "beta", 3600.0), FrontLock(schema, "beta", 0.0)
    try:
        assert await holder.try_acquire()
        assert not await patient.try_acquire()  # alpha was heard from within the hour
        assert await impatient.try_acquire()  # alpha is silent past a limit of 0 s
        losing = asyncio.create_task(holder.lost(lambda: None))
        await asyncio.wait_for(losing, RETRY_S * 3)
    finally:
        for lock in (holder, patient, impatient):
            await lock.release()
        await store.close()
