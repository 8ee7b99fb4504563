"""Telegram misbehaving while a download runs: 500s, malformed JSON (an nginx error page) on
``getUpdates`` and on edits, then a server outage (connections refused), then recovery.

The real bot (python-telegram-bot) against the fake Bot API server, on the real manager and
aria2c (the ``stack`` fixture of test_bot.py). Checked after recovery: every update is
handled exactly once (one reply per command), the progress message keeps the board's edit
rule (no storm of queued edits), the download completes and is announced once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from tests.integration import test_bot
from tests.integration.test_bot import LONG, MIB, USER, Stack, _check_edit_rule, _result_id
from tests.swarm import Swarm

stack = test_bot.stack  # the fixture: fake Telegram + real bot + real manager and aria2c

pytestmark = pytest.mark.slow

OUTAGE = 3.0
"""Seconds the fake Telegram refuses connections."""


def _replies_to(stack: Stack, number: int) -> int:
    """sendMessage answers naming download #number (the reply to ``/pause number``)."""
    return sum(1 for r in stack.server.requests
               if r.method == "sendMessage" and r.status == 200
               and r.params.get("chat_id") == USER and f"#{number}" in str(r.params["text"]))


async def test_500s_malformed_json_and_an_outage_then_recovery(stack: Stack,
                                                               swarm: Swarm) -> None:
    server = stack.server
    seeded = swarm.add("tg-faults.bin", 16 * MIB, seed=57)
    commands = iter(range(9001, 9100))
    sent: list[int] = []

    def command() -> None:
        number = next(commands)
        sent.append(number)
        server.push_text(USER, USER, f"/pause {number}")

    with swarm.throttled(MIB):
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        progress_id = _result_id(reply)
        await server.wait_for("editMessageText", lambda r: r.status == 200
                              and r.params.get("message_id") == progress_id, timeout=LONG)

        # 1. getUpdates answers 500 twice, then an HTML page instead of JSON; edits get 500s.
        server.fail_next("getUpdates", times=2, status=500)
        server.fail_next("getUpdates", times=1, status=502, malformed=True)
        server.fail_next("editMessageText", times=2, status=500,
                         when=lambda p: p.get("message_id") == progress_id)
        command()  # answered by the poll in flight; the next polls fail
        await server.wait_until(lambda: server.count("getUpdates", status=502), timeout=LONG,
                                what="the malformed getUpdates answer")
        command()  # queued during the errors
        await server.wait_until(lambda: all(_replies_to(stack, n) for n in sent), timeout=LONG,
                                what="replies after the 500s")

        # 2. The server goes away: connections refused for OUTAGE seconds.
        await server.go_offline()
        down = time.monotonic()
        command()  # queued while nobody can fetch it
        await asyncio.sleep(OUTAGE)  # the fault itself
        await server.go_online()
        back = server.mark()
        await server.wait_until(lambda: all(_replies_to(stack, n) for n in sent), timeout=LONG,
                                what="the reply to the command sent during the outage")
        recovered = time.monotonic() - down - OUTAGE
        command()  # and the bot is live again
        await server.wait_until(lambda: all(_replies_to(stack, n) for n in sent), timeout=LONG,
                                what="the reply to a command sent after recovery")
        await stack.answer(USER, 0, "is downloaded", timeout=LONG)

    await stack.shown(USER, progress_id, lambda t: "Complete" in t)
    # Every update handled exactly once.
    assert {n: _replies_to(stack, n) for n in sent} == dict.fromkeys(sent, 1)
    announced = [r for r in server.requests if r.method == "sendMessage" and r.status == 200
                 and "is downloaded" in str(r.params.get("text"))]
    assert len(announced) == 1
    # No edit storm: after recovery, at most one edit per interval (the completion may jump).
    edits = [r for r in stack.edits(USER, progress_id, since=back) if r.status == 200]
    _check_edit_rule(stack, edits, urgent=1)
    all_ok = [r for r in stack.edits(USER, progress_id) if r.status == 200]
    _check_edit_rule(stack, all_ok, urgent=2)
    statuses = Counter(r.status for r in server.requests if r.method == "getUpdates")
    print(f"\nFIGURES telegram faults: getUpdates by status {dict(statuses)}; "
          f"recovered {recovered:.1f}s after a {OUTAGE:.0f}s outage; "
          f"progress edits by status "
          f"{dict(Counter(r.status for r in stack.edits(USER, progress_id)))}; "
          f"replies per update "
          f"{[_replies_to(stack, n) for n in sent]}")
