"""Paces every node shares (Telegram's limits are the bot's): turns taken by several stores
on one real PostgreSQL database add up, as a burst then the sustained spacing; on SQLite
(one node) a turn is always now and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager import Pace, Store

SLACK = 0.25
"""Seconds the database's clock may move between the turns of one test (a busy machine)."""


@pytest.mark.postgresql
async def test_turns_of_several_stores_share_one_burst_then_one_spacing(
    pg_store: Store, postgresql_url: str,
) -> None:
    other = Store(postgresql_url)
    await other.open()
    try:
        chat = Pace("chat:7", spacing=1.0, burst=3)
        waits = [await (pg_store if i % 2 else other).paces.take([chat]) for i in range(6)]
    finally:
        await other.close()
    # Three back to back (the burst), then one a second, whichever store asked.
    for wait, expected in zip(waits, [0, 0, 0, 1, 2, 3], strict=True):
        assert expected - SLACK <= wait <= expected, waits


@pytest.mark.postgresql
async def test_a_turn_waits_for_the_slowest_of_its_paces_and_keeps_each(pg_store: Store) -> None:
    everything = Pace("all", spacing=0.5)
    assert await pg_store.paces.take([Pace("chat:1", 1.0, 2), everything]) <= SLACK
    # Another chat is free, but the bot's own pace (no burst) is not.
    wait = await pg_store.paces.take([Pace("chat:2", 1.0, 2), everything])
    assert 0.5 - SLACK <= wait <= 0.5
    # Chat 1 still has its burst's second turn; the bot's next is 0.5 s later again.
    wait = await pg_store.paces.take([Pace("chat:1", 1.0, 2), everything])
    assert 1.0 - SLACK <= wait <= 1.0


async def test_on_sqlite_a_turn_is_always_now_and_nothing_is_stored(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ariabot.db'}")
    await store.open()
    try:
        waits = [await store.paces.take([Pace("chat:1", 10.0)]) for _ in range(3)]
        rows = await store.database.run(lambda: store.database.tables.pace.select().count())
    finally:
        await store.close()
    assert waits == [0.0, 0.0, 0.0]
    assert rows == 0
