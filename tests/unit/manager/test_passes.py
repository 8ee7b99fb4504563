"""One pass at a time, and never a wake-up lost (the claims' and the commands' looks)."""

from __future__ import annotations

import asyncio

from manager.nodes.passes import Passes


async def test_calls_during_a_pass_make_exactly_one_more_and_never_two_at_once() -> None:
    started: list[int] = []
    release, entered = asyncio.Event(), asyncio.Event()
    running = 0
    most = 0

    async def work() -> bool:
        nonlocal running, most
        running += 1
        most = max(most, running)
        started.append(len(started))
        entered.set()
        await release.wait()
        running -= 1
        return False

    passes = Passes(work)
    first = asyncio.ensure_future(passes.run())
    await entered.wait()
    await asyncio.gather(passes.run(), passes.run(), passes.run())  # return at once
    assert len(started) == 1
    release.set()
    await first
    assert (len(started), most) == (2, 1)  # one more pass for the three calls
    await passes.run()
    assert len(started) == 3  # an idle runner runs at once


async def test_a_pass_that_did_something_runs_once_more() -> None:
    results = [True, True, False]
    seen: list[bool] = []

    async def work() -> bool:
        seen.append(results[len(seen)])
        return seen[-1]

    await Passes(work).run()
    assert seen == [True, True, False]
