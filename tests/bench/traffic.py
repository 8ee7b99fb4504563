"""Benchmark 6: Telegram traffic with many concurrent downloads in one chat.

N torrents (full: 20 x 12 MiB; smoke: 3 x 2 MiB) are sent as ``/torrent <magnet>`` in one
private chat, all at once, to the real bot (:mod:`tests.bench.stack`) with its production
defaults (edit interval 10 s, PTB's ``AIORateLimiter``) and N downloads allowed at once; the
seeder's upload is capped so they all run side by side for about 80 s (smoke: a few). Every
request the bot makes about that chat is read back from the fake Bot API server's log.

Figures: requests per download and per chat-minute; the densest 1 s, 10 s and 60 s windows
(Telegram: about 1 message/s per chat, 20/min in groups — design.md §5); the same after the
bot answered the last command (only what the bot sends on its own); and identical edits —
an edit whose text and keyboard equal what the message shows, which Telegram refuses with
"message is not modified" (the fake server checks exactly that).
"""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter
from typing import Any

from tests.bench.common import MIB, BenchContext, BenchResult, Row
from tests.bench.stack import bot_stack
from tests.fakes.telegram_api import NOT_MODIFIED, Request

__all__ = ["NAME", "TITLE", "run"]

NAME = "traffic"
TITLE = "6. Telegram traffic"
USER = 1001
_SENDS = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup",
                    "sendDocument", "deleteMessage"})


def densest(times: list[float], window: float) -> int:
    """The most requests in any ``window`` seconds (sliding, from each request on)."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)),
               default=0)


def _identical_edits(requests: list[Request]) -> tuple[int, int]:
    """``(refused as not modified, same text as the message's previous text)``."""
    refused = sum(1 for r in requests if r.method == "editMessageText" and r.status == 400
                  and NOT_MODIFIED in str((r.response or {}).get("description")))
    shown: dict[int, str] = {}
    same_text = 0
    for request in requests:
        if request.status != 200:
            continue
        if request.method == "sendMessage":
            shown[int(request.response["result"]["message_id"])] = str(request.params["text"])
        elif request.method == "editMessageText":
            message_id = int(request.params["message_id"])
            text = str(request.params["text"])
            same_text += shown.get(message_id) == text
            shown[message_id] = text
    return refused, same_text


def _window_figures(times: list[float]) -> dict[str, Any]:
    return {"requests": len(times), "densest_1s": densest(times, 1.0),
            "densest_10s": densest(times, 10.0), "densest_60s": densest(times, 60.0)}


async def _measure(ctx: BenchContext, result: BenchResult) -> None:
    count = ctx.pick(20, 3)
    size = ctx.pick(12 * MIB, 2 * MIB)
    rate = ctx.pick(3 * MIB, 3 * MIB)
    # Smoke only: a shorter edit interval, so that a few seconds still show edits.
    tuning = {} if not ctx.smoke else {"ARIABOT_EDIT_INTERVAL": "1"}
    torrents = [ctx.swarm.add(f"traffic-{i:02d}.bin", size, seed=600 + i) for i in range(count)]
    async with bot_stack(ctx.path("traffic"), ARIABOT_ALLOWED_USERS=str(USER),
                         ARIABOT_SEED_TIME="0", ARIABOT_MAX_CONCURRENT=str(count),
                         **tuning) as stack:
        server = stack.server
        with ctx.swarm.throttled(rate):
            mark = server.mark()
            started = asyncio.get_running_loop().time()
            for torrent in torrents:
                server.push_text(USER, USER, f"/torrent {torrent.magnet}")

            def all_told() -> bool:
                return sum(1 for r in server.requests[mark:] if r.method == "sendMessage"
                           and "is downloaded" in str(r.params.get("text"))) >= count

            await server.wait_until(all_told, timeout=120 + count * size / rate,
                                    what="every completion message")
            # Let the board finish its last edits (progress messages turning "complete").
            await asyncio.sleep(stack.bot.config.edit_interval + 1)
        requests = [r for r in server.requests[mark:]
                    if r.params.get("chat_id") == USER and r.method in _SENDS]
        board = stack.bot.board.stats
    first, last = min(r.time for r in requests), max(r.time for r in requests)
    minutes = (last - first) / 60
    replies = [r for r in requests if r.method == "sendMessage"
               and "is downloaded" not in str(r.params.get("text"))][:count]
    after_replies = [r.time for r in requests if r.time > replies[-1].time] if replies else []
    refused, same_text = _identical_edits(requests)
    by_method = Counter(f"{r.method}:{r.status}" for r in requests)
    every = _window_figures([r.time for r in requests])
    unsolicited = _window_figures(after_replies)
    result.figures.update(
        downloads=count, size_bytes=size, seeder_cap_bytes_s=rate,
        edit_interval_s=stack.bot.config.edit_interval,
        seconds=last - first, setup_to_last_request_s=last - started,
        by_method=dict(by_method), all_requests=every, after_last_command_reply=unsolicited,
        not_modified=refused, edits_repeating_text=same_text, board_stats=vars(board),
    )
    per_10s = unsolicited["densest_10s"] / 10
    result.rows += [
        Row(NAME, f"requests / download ({count} in one chat)", len(requests) / count),
        Row(NAME, "requests / chat-minute", len(requests) / minutes if minutes else None),
        Row(NAME, "densest 1 s, all requests", every["densest_1s"], unit="msg",
            target="~1 msg/s per chat", met=every["densest_1s"] <= 1,
            note="includes the replies to the N commands sent at once"),
        Row(NAME, "densest 1 s, after the replies", unsolicited["densest_1s"], unit="msg",
            target="~1 msg/s per chat", met=unsolicited["densest_1s"] <= 1),
        Row(NAME, "densest 10 s avg, after the replies", per_10s, unit="msg/s",
            target="≤1 msg/s", met=per_10s <= 1),
        Row(NAME, "densest 60 s, all requests", every["densest_60s"], unit="msg",
            target="≤20/min (groups)", met=every["densest_60s"] <= 20),
        Row(NAME, "identical edits (not modified)", refused + same_text, target="0",
            met=refused + same_text == 0),
    ]


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring)."""
    result = BenchResult()
    asyncio.run(_measure(ctx, result))
    return result
