"""Pacing: the bot keeps to Telegram's flood limits, news first, one chat's flood stays its own.

The real bot against the fake Bot API server, which enforces Telegram's published limits
(tests/fakes/telegram_api.py, ``FloodLimits``: 1 message/s per chat after a burst of 4, 20/min
in a group, 30/s in all) and counts the 429s it gave; the real manager, aria2c and swarm.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest

from manager import TorrentCompleted
from supervisor.config import Settings
from tests.fakes.telegram_api import FLOOD_LIMITED, Request
from tests.integration import test_bot
from tests.integration.test_bot import LONG, MIB, OTHER, USER, Stack, _download_id, running_stack
from tests.swarm import Swarm

stack = test_bot.stack  # the fixture: fake Telegram + real bot + real manager and aria2c

pytestmark = pytest.mark.slow

MANY = 20
SIZE = 256 * 1024
"""Each of the MANY downloads: small, so that all finish within a moment of the cap's end."""
SLOW = 8 * 1024
"""Seeder cap (bytes/s) while the MANY commands are answered (~20 s): under one SIZE in all."""
HOLD = 64 * 1024
"""Seeder cap (bytes/s, all torrents together) that keeps MANY downloads unfinished."""
FLOOD = 12
"""Commands one chat sends at once (each answered: a queue of ~8 s at 1 message/s)."""
RETRY_AFTER = 2
NEWS_BOUND = 2.5
"""Seconds from a completion event to its message in a chat that is not flooding: at most one
token of its own bucket (1 s: its progress edits may have spent the burst) plus 1.5 s for the
HTTP round trip and the file check on a loaded 2-core CI machine. The flooding chat's queue
(seconds long) does not count: it is another chat's."""


@pytest.fixture
async def wide_stack(engine_settings: Callable[..., Settings],
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """The bot with MANY downloads allowed at once."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings, ARIABOT_MAX_CONCURRENT=str(MANY)) as built:
        yield built


_NEWS_ID = re.compile(r"is downloaded \(#(\d+)\)")


def _news(stack: Stack, chat: int, since: int = 0) -> list[int]:
    """Download ids of the completion messages Telegram accepted in ``chat``, in order."""
    return [int(match.group(1)) for r in stack.server.requests[since:]
            if r.method == "sendMessage" and r.status == 200 and r.params.get("chat_id") == chat
            and (match := _NEWS_ID.search(str(r.params.get("text"))))]


def _sends(stack: Stack, chat: int, since: int = 0) -> list[Request]:
    """The messages (sends, edits, uploads) the bot put into ``chat``."""
    return [r for r in stack.server.requests[since:]
            if r.params.get("chat_id") == chat and r.method in FLOOD_LIMITED]


def _completions(stack: Stack, chat: int) -> dict[int, float]:
    return {event.torrent.id: at for at, event in stack.events
            if isinstance(event, TorrentCompleted) and event.torrent.chat_id == chat}


async def test_twenty_commands_at_once_and_twenty_completions_together_get_no_429(
    wide_stack: Stack, swarm: Swarm,
) -> None:
    stack, server = wide_stack, wide_stack.server
    seeded = [swarm.add(f"pace-{i:02d}.bin", SIZE, seed=700 + i) for i in range(MANY)]
    mark = server.mark()
    with swarm.throttled(SLOW):
        for torrent in seeded:
            server.push_text(USER, USER, f"/torrent {torrent.magnet}")

        def replied() -> bool:
            return sum(1 for r in server.requests[mark:] if r.method == "sendMessage"
                       and r.status == 200 and "#" in str(r.params.get("text"))
                       and not _NEWS_ID.search(str(r.params.get("text")))) >= MANY
        await server.wait_until(replied, timeout=LONG, what="a reply to every command")
        downloads = await stack.manager.list(USER)
        assert len(downloads) == MANY and not _completions(stack, USER)
    # The cap is lifted: every download finishes within a moment of the others.
    await server.wait_until(lambda: len(_news(stack, USER, mark)) >= MANY, timeout=LONG,
                            what="every completion message")
    done = sorted(_completions(stack, USER).values())
    assert len(done) == MANY
    assert done[-1] - done[0] < 5.0, f"completions spread over {done[-1] - done[0]:.1f}s"
    assert Counter(_news(stack, USER, mark)) == Counter({t.id: 1 for t in downloads})
    assert server.too_many == 0
    assert stack.bot.application.bot.rate_limiter.rate_limited == 0  # type: ignore[union-attr]
    sends = [r.time for r in _sends(stack, USER, mark)]
    print(f"\nFIGURES pacing {MANY} in one chat: completions within "
          f"{done[-1] - done[0]:.2f}s, {len(sends)} messages in "
          f"{sends[-1] - sends[0]:.1f}s, 429s {server.too_many}")


async def test_a_flooding_chat_does_not_delay_another_chats_news(stack: Stack,
                                                                 swarm: Swarm) -> None:
    server = stack.server
    seeded = swarm.add("pace-quiet.bin", 2 * MIB, seed=731)
    with swarm.throttled(HOLD):
        reply = await stack.say(OTHER, f"/torrent {seeded.magnet}")
        download_id = _download_id(reply.params["text"])
        mark = server.mark()
        for number in range(FLOOD):
            server.push_text(USER, USER, f"/pause {9000 + number}")  # each gets a reply

        def flooding() -> bool:
            return len(_sends(stack, USER, mark)) >= 4  # the flood has spent USER's burst
        await server.wait_until(flooding, timeout=LONG, what="the flood to start")
    news = await stack.answer(OTHER, mark, "is downloaded", timeout=LONG)
    waiting = FLOOD - len(_sends(stack, USER, mark))
    latency = news.time - _completions(stack, OTHER)[download_id]
    assert waiting > 0, "the flood was over before the news: nothing was measured"
    assert latency < NEWS_BOUND, f"news {latency:.2f}s after the completion"
    await server.wait_until(lambda: len(_sends(stack, USER, mark)) >= FLOOD, timeout=LONG,
                            what="a reply to every flooding command")
    assert len(_sends(stack, USER, mark)) == FLOOD  # each once
    assert server.too_many == 0
    print(f"\nFIGURES pacing flood: news {latency:.2f}s after the completion, "
          f"with {waiting} flood replies still queued in the other chat")


async def test_a_429_pauses_only_its_chat(stack: Stack) -> None:
    server = stack.server
    await stack.say(USER, "hello")  # USER has just written: its 429 is its own
    server.fail_next("sendMessage", status=429, retry_after=RETRY_AFTER,
                     when=lambda p: p.get("chat_id") == USER)
    mark = server.mark()
    server.push_text(USER, USER, "hello again")
    refused = await server.wait_for("sendMessage", lambda r: r.status == 429, since=mark)
    other = await stack.say(OTHER, "hello")  # another chat is not paused
    again = await server.wait_for("sendMessage", lambda r: r.status == 200
                                  and r.params.get("chat_id") == USER, since=mark)
    assert again.time - refused.time >= RETRY_AFTER
    assert other.status == 200 and other.time < refused.time + RETRY_AFTER
    assert [r.status for r in _sends(stack, USER, mark)] == [429, 200]  # resent once
