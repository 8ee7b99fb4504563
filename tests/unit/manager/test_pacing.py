"""Long passes made in steps: the loop runs other tasks between them, and the result is the
same as the pass made at once."""

from __future__ import annotations

import asyncio

from manager.tracking.pacing import paced_missing, release


async def _ticks_during(work: asyncio.Future[object] | asyncio.Task[object]) -> int:
    """How many times another task ran while ``work`` ran."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await work
    finally:
        ticker.cancel()
    return ticks


async def test_paced_missing_finds_every_missing_id_sorted_and_lets_others_run() -> None:
    ids = list(range(100_000, 0, -1))
    seen = set(ids) - {7, 50_001, 99_999}
    task = asyncio.create_task(paced_missing(ids, seen))
    ticks = await _ticks_during(task)
    assert task.result() == [7, 50_001, 99_999]
    assert ticks >= 10  # 50 chunks of 2,000: the loop ran between them


async def test_paced_missing_of_nothing_is_nothing() -> None:
    assert await paced_missing([], set()) == []
    assert await paced_missing([1, 2], {1, 2}) == []


async def test_release_empties_the_list_in_steps() -> None:
    items = [{"gid": f"{i:016x}"} for i in range(100_000)]
    task = asyncio.create_task(release(items))
    ticks = await _ticks_during(task)
    assert items == []
    assert ticks >= 10
