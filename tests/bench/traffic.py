"""Benchmark 6: Telegram traffic with many concurrent downloads, against Telegram's limits.

The fake Bot API server enforces Telegram's published flood limits (1 message/s per chat after
a short burst, 20/min per group, 30/s in all: tests/fakes/telegram_api.py) and counts the 429s
it gives. The real bot (:mod:`tests.bench.stack`, production defaults: edit interval 10 s,
the per-chat paced queues of bot/pacer.py) gets two bursts, one after the other:

1. "one chat": N torrents (full: 20 x 12 MiB; smoke: 3 x 2 MiB) as ``/torrent <magnet>`` all
   at once in one private chat;
2. "5 chats": 5 chats with 10 torrents each (full: 4 MiB each; smoke: 2 chats x 1 MiB, no
   quiet chat);

and in each, a *quiet* chat adds a few small downloads one by one while the burst runs (its
news must not wait for the burst). The seeder's upload is capped so that everything runs side
by side. Every request the bot makes about those chats is read back from the server's log.

Figures per burst: 429s (goal 0); messages per chat in the densest 1 s and 60 s (Telegram:
about 1/s, 20/min in groups); completion → message latency (manager event → accepted
sendMessage) p50/p95 in the quiet chat (goal p95 < 1 s) and in the bursting chats (goal p95
< 3 s: news go first, but one chat still gets one message a second, so N completions in the
same second in one chat take N seconds); requests per download; identical edits (an edit
whose text and keyboard equal what is shown, which Telegram refuses as "not modified").
"""

from __future__ import annotations

import asyncio
import bisect
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from manager import TorrentCompleted
from tests.bench.common import MIB, BenchContext, BenchResult, Row, percentile
from tests.bench.stack import BotStack, bot_stack
from tests.fakes.telegram_api import NOT_MODIFIED, Request

__all__ = ["NAME", "TITLE", "run"]

NAME = "traffic"
TITLE = "6. Telegram traffic"
USER = 1001
QUIET = 3001
_NEWS_ID = re.compile(r"is downloaded \(#(\d+)\)")
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


@dataclass(frozen=True)
class _Burst:
    """One scenario: ``per_chat`` torrents at once in each of ``chats``, plus a quiet chat."""

    label: str
    chats: tuple[int, ...]
    per_chat: int
    size: int
    quiet_chat: int
    quiet: int
    quiet_size: int


def _latencies(stack: BotStack, chats: set[int], since: int) -> list[float]:
    """Seconds from each TorrentCompleted (of ``chats``) to its accepted completion message."""
    done = {event.torrent.id: at for at, event in stack.events
            if isinstance(event, TorrentCompleted) and event.torrent.chat_id in chats}
    told: dict[int, float] = {}
    for request in stack.server.requests[since:]:
        match = _NEWS_ID.search(str(request.params.get("text", "")))
        if request.method == "sendMessage" and request.status == 200 and match:
            told.setdefault(int(match.group(1)), request.time)
    return [told[i] - at for i, at in done.items() if i in told]


async def _burst(ctx: BenchContext, stack: BotStack, burst: _Burst, seed: int) -> dict[str, Any]:
    server = stack.server
    count = len(burst.chats) * burst.per_chat
    made = ctx.swarm.add_many(
        [(f"traffic-{burst.label}-{i:02d}.bin", burst.size, seed + i) for i in range(count)]
        + [(f"traffic-{burst.label}-quiet-{i}.bin", burst.quiet_size, seed + 100 + i)
           for i in range(burst.quiet)])
    torrents, quiet = made[:count], made[count:]
    rate = 3 * MIB
    too_many_before = server.too_many
    with ctx.swarm.throttled(rate):
        mark = server.mark()
        started = asyncio.get_running_loop().time()
        for index, torrent in enumerate(torrents):
            chat = burst.chats[index % len(burst.chats)]
            server.push_text(chat, chat, f"/torrent {torrent.magnet}")
        for torrent in quiet:  # one by one, each after the bot's answer to the previous
            at = server.mark()
            server.push_text(burst.quiet_chat, burst.quiet_chat, f"/torrent {torrent.magnet}")
            await server.wait_for("sendMessage", lambda r: r.status == 200
                                  and r.params.get("chat_id") == burst.quiet_chat,
                                  since=at, timeout=60)

        def all_told() -> bool:
            return sum(1 for r in server.requests[mark:] if r.method == "sendMessage"
                       and r.status == 200 and _NEWS_ID.search(str(r.params.get("text"))))\
                >= count + len(quiet)

        await server.wait_until(all_told, timeout=180 + count * burst.size / rate,
                                what="every completion message")
        # Let the board finish its last edits (progress messages turning "complete").
        await asyncio.sleep(ctx.pick(stack.bot.config.edit_interval + 1, 0.5))
    chats = set(burst.chats)
    requests = [r for r in server.requests[mark:]
                if r.params.get("chat_id") in chats and r.method in _SENDS]
    per_chat = {chat: [r.time for r in requests if r.params.get("chat_id") == chat]
                for chat in chats}
    busy = _latencies(stack, chats, mark)
    calm = _latencies(stack, {burst.quiet_chat}, mark)
    refused, same_text = _identical_edits(requests)
    last = max(r.time for r in requests)
    return {
        "downloads": count, "chats": len(chats), "size_bytes": burst.size,
        "seeder_cap_bytes_s": rate, "seconds": last - min(r.time for r in requests),
        "setup_to_last_request_s": last - started,
        "too_many_requests": server.too_many - too_many_before,
        "densest_1s_per_chat": max(densest(t, 1.0) for t in per_chat.values()),
        "densest_60s_per_chat": max(densest(t, 60.0) for t in per_chat.values()),
        "requests_per_download": len(requests) / count,
        "by_method": dict(Counter(f"{r.method}:{r.status}" for r in requests)),
        "latency_quiet_s": {"p50": percentile(calm, 50), "p95": percentile(calm, 95),
                            "n": len(calm)},
        "latency_burst_s": {"p50": percentile(busy, 50), "p95": percentile(busy, 95),
                            "n": len(busy)},
        "not_modified": refused, "edits_repeating_text": same_text,
    }


def _rows(label: str, figures: dict[str, Any]) -> list[Row]:
    quiet, busy = figures["latency_quiet_s"], figures["latency_burst_s"]
    return [
        Row(NAME, f"{label}: 429s received", figures["too_many_requests"], target="0",
            met=figures["too_many_requests"] == 0),
        Row(NAME, f"{label}: densest 1 s per chat", figures["densest_1s_per_chat"], unit="msg",
            target="~1 msg/s after a burst of 4", met=figures["densest_1s_per_chat"] <= 4),
        Row(NAME, f"{label}: densest 60 s per chat", figures["densest_60s_per_chat"],
            unit="msg", note="private chats: ~1/s; 20/min is the group limit"),
        Row(NAME, f"{label}: completion → message p50, quiet chat", quiet["p50"], unit="s"),
        Row(NAME, f"{label}: completion → message p95, quiet chat", quiet["p95"], unit="s",
            target="<1 s", met=quiet["p95"] < 1.0 if quiet["n"] else None),
        Row(NAME, f"{label}: completion → message p50, behind the burst", busy["p50"],
            unit="s"),
        Row(NAME, f"{label}: completion → message p95, behind the burst", busy["p95"],
            unit="s", target="<3 s", met=busy["p95"] < 3.0),
        Row(NAME, f"{label}: requests / download", figures["requests_per_download"]),
        Row(NAME, f"{label}: identical edits (not modified)",
            figures["not_modified"] + figures["edits_repeating_text"], target="0",
            met=figures["not_modified"] + figures["edits_repeating_text"] == 0),
    ]


async def _measure(ctx: BenchContext, result: BenchResult) -> None:
    bursts = [
        _Burst("one chat", (USER,), ctx.pick(20, 3), ctx.pick(12 * MIB, 2 * MIB),
               QUIET, ctx.pick(3, 1), ctx.pick(2 * MIB, MIB)),
        _Burst("5 chats", ctx.pick(tuple(range(2001, 2006)), (2001, 2002)), ctx.pick(10, 1),
               ctx.pick(4 * MIB, MIB), QUIET + 1, ctx.pick(3, 0), 2 * MIB),
    ]
    users = {USER, QUIET, QUIET + 1, *(c for b in bursts for c in b.chats)}
    # At most 50 at once (the setting's limit): in the 5-chat burst the quiet chat's last
    # downloads may queue behind the burst's; its latency is counted from its completion.
    most = min(50, max(len(b.chats) * b.per_chat + b.quiet for b in bursts))
    # Smoke only: a shorter edit interval, so that a few seconds still show edits.
    tuning = {} if not ctx.smoke else {"ARIABOT_EDIT_INTERVAL": "1"}
    async with bot_stack(ctx.path("traffic"), ARIABOT_ALLOWED_USERS=",".join(map(str, users)),
                         ARIABOT_SEED_TIME="0", ARIABOT_MAX_CONCURRENT=str(most),
                         **tuning) as stack:
        for number, burst in enumerate(bursts):
            figures = await _burst(ctx, stack, burst, 600 + 200 * number)
            result.figures[burst.label] = figures
            result.rows += _rows(burst.label, figures)
        result.figures["edit_interval_s"] = stack.bot.config.edit_interval
        result.figures["board_stats"] = vars(stack.bot.board.stats)


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring)."""
    result = BenchResult()
    asyncio.run(_measure(ctx, result))
    return result
