"""The outbox: news is never lost and arrives once, across a Telegram outage and restarts.

The real bot (python-telegram-bot) against the fake Bot API server, on the real manager,
aria2c and swarm (the ``stack`` fixture of test_bot.py). A "restart of the bot" stops the
Application and builds a new one on the same manager and store; nothing the old one held in
memory survives, so the news can only come from what the store kept. The crash is real:
``ariabot run`` killed with SIGKILL after the completion was stored, before its message got
through, then started again.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.app import EmbeddedBot, build_application
from manager import Store, TorrentCompleted, TorrentState
from supervisor.layout import StateLayout
from supervisor.root import bot_config
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer, Request
from tests.integration import test_bot
from tests.integration.test_bot import LONG, MIB, USER, Stack, _download_id, _result_id
from tests.runner import AriabotRun
from tests.swarm import Swarm

stack = test_bot.stack  # the fixture: fake Telegram + real bot + real manager and aria2c

pytestmark = pytest.mark.slow

OUTAGE = 60.0
"""Seconds the fake Telegram answers every call 502 (longer than any retry budget)."""
HOLD = 128 * 1024
"""Seeder cap (bytes/s) that keeps a 2 MiB download unfinished until it is lifted."""


def _announced_in(server: FakeTelegramServer, download_id: int) -> list[int]:
    """Message ids of the accepted completion messages of ``download_id``."""
    return [_result_id(r) for r in server.requests
            if r.method == "sendMessage" and r.status == 200
            and f"is downloaded (#{download_id})" in str(r.params.get("text"))]


def _announced(stack: Stack, download_id: int) -> list[int]:
    return _announced_in(stack.server, download_id)


def _completed_at(stack: Stack, download_id: int) -> float | None:
    return next((at for at, event in stack.events if isinstance(event, TorrentCompleted)
                 and event.torrent.id == download_id), None)


async def _start_download(stack: Stack, swarm: Swarm, name: str, seed: int) -> tuple[int, int]:
    """Add a 2 MiB torrent (the caller holds the swarm throttled); its id and progress
    message id, once its progress message has been edited at least once."""
    seeded = swarm.add(name, 2 * MIB, seed=seed)
    reply = await stack.say(USER, f"/torrent {seeded.magnet}")
    progress_id = _result_id(reply)
    await stack.server.wait_for("editMessageText", lambda r: r.status == 200
                                and r.params.get("message_id") == progress_id, timeout=LONG)
    return _download_id(reply.params["text"]), progress_id


async def _new_bot(stack: Stack) -> None:
    """A new Application on the same manager and store, started."""
    stack.bot = EmbeddedBot(build_application(bot_config(stack.settings), stack.manager),
                            stack.manager)
    await stack.bot.start()


async def test_a_completion_during_a_long_outage_is_announced_once_after_it(
    stack: Stack, swarm: Swarm,
) -> None:
    server = stack.server
    with swarm.throttled(HOLD):
        download_id, _ = await _start_download(stack, swarm, "outbox-outage.bin", 801)
        server.bad_gateway(OUTAGE)
        back = time.monotonic() + OUTAGE
    await server.wait_until(lambda: _completed_at(stack, download_id), timeout=LONG,
                            what="the completion")
    assert _completed_at(stack, download_id) < back  # type: ignore[operator]
    await server.wait_until(lambda: _announced(stack, download_id), timeout=OUTAGE + LONG,
                            what="the completion message after the outage")
    assert time.monotonic() >= back
    # Marked as sent: nothing can send it again (a duplicate would come from a notice left
    # pending, retried a delay later), and nothing sent it twice meanwhile.
    await _settled(stack.manager.store)
    assert len(_announced(stack, download_id)) == 1


async def test_news_while_the_bot_was_down_arrives_once_and_edits_go_on_in_the_same_message(
    stack: Stack, swarm: Swarm,
) -> None:
    server, manager = stack.server, stack.manager
    with swarm.throttled(HOLD):
        finishing, finishing_message = await _start_download(stack, swarm, "outbox-a.bin", 811)
        going_on, going_on_message = await _start_download(stack, swarm, "outbox-b.bin", 812)
        await manager.pause(going_on)  # it cannot finish while the bot is down
        await stack.bot.stop()  # the bot is down; the manager and aria2c go on
    completed = asyncio.Event()  # no request wakes the server's wait_until meanwhile
    unsubscribe = manager.subscribe(
        lambda event: completed.set() if _completed_at(stack, finishing) else None)
    if _completed_at(stack, finishing) is None:
        await asyncio.wait_for(completed.wait(), LONG)
    unsubscribe()
    assert _announced(stack, finishing) == []
    assert (await manager.get(going_on)).state is TorrentState.PAUSED
    mark = server.mark()
    await _new_bot(stack)
    # The news kept in the store: one message, a reply to the progress message, and the
    # progress message's final edit.
    await server.wait_until(lambda: _announced(stack, finishing), timeout=LONG,
                            what="the completion message after the restart")
    await stack.shown(USER, finishing_message, lambda text: "Complete" in text
                      or "Seeding" in text)
    # The other download's progress message is found again: its progress is edited into the
    # same message (while it still downloads, not only its final state).
    with swarm.throttled(HOLD):
        await manager.resume(going_on)
        await server.wait_for("editMessageText", lambda r: r.status == 200
                              and r.params.get("message_id") == going_on_message
                              and "Downloading" in str(r.params.get("text")),
                              since=mark, timeout=LONG)
    await server.wait_until(lambda: _announced(stack, going_on), timeout=LONG,
                            what="the second completion message")
    await stack.shown(USER, going_on_message, lambda text: "Complete" in text
                      or "Seeding" in text)
    await _settled(manager.store)
    assert (len(_announced(stack, finishing)), len(_announced(stack, going_on))) == (1, 1)


@pytest.mark.usefixtures("database_url")  # ariabot run itself, on both engines
async def test_kill_9_between_the_completion_and_its_message_tells_it_once_after_restart(
    tmp_path: Path, swarm: Swarm, run_database: dict[str, str],
) -> None:
    seeded = swarm.add("outbox-kill.bin", 2 * MIB, seed=821)
    data = tmp_path / "data"
    async with FakeTelegramServer() as server:
        env = {"ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN, "ARIABOT_TELEGRAM_API_URL": server.url,
               "ARIABOT_ALLOWED_USERS": str(USER), "ARIABOT_SEED_TIME": "0", **run_database}
        first = AriabotRun(data, env).start()
        try:
            await asyncio.to_thread(first.wait_ready, 60)
            with swarm.throttled(HOLD):
                mark = server.mark()
                server.push_text(USER, USER, f"/torrent {seeded.magnet}")
                reply = await stack_answer(server, mark, "#")
            download_id = _download_id(reply.params["text"])
            # Its first attempt fails; the next one (retry_delay later) never comes: kill -9.
            server.fail_next("sendMessage", status=502,
                             when=lambda p: "is downloaded" in str(p.get("text")))
            await server.wait_for("sendMessage", lambda r: r.status == 502, since=mark,
                                  timeout=LONG)
            first.signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait_exit)
        finally:
            await asyncio.to_thread(first.stop)
        assert _announced_in(server, download_id) == []
        second = AriabotRun(data, env).start()
        try:
            await server.wait_until(lambda: _announced_in(server, download_id), timeout=LONG,
                                    what="the completion message after the restart")
            store = Store(run_database.get("ARIABOT_DATABASE_URL")  # the running one's
                          or f"sqlite:///{StateLayout(data).database}")
            await store.open()
            try:
                # the store ariabot runs on
                assert await store.downloads.get(download_id) is not None
                await _settled(store)
            finally:
                await store.close()
            assert len(_announced_in(server, download_id)) == 1
        finally:
            await asyncio.to_thread(second.stop)
    assert "Traceback" not in first.output + second.output
    passwords = [urlsplit(url).password or "" for url in run_database.values()]
    assert not [p for p in passwords if p in first.output + second.output]  # PostgreSQL's


async def _settled(store: Store) -> None:
    """Wait until every stored notice is marked (sent or given up): from then on none can be
    sent again, so a count of the messages is final."""
    deadline = time.monotonic() + LONG
    while await store.notices.pending():
        assert time.monotonic() < deadline, "notices still pending"
        await asyncio.sleep(0.05)


async def stack_answer(server: FakeTelegramServer, since: int, what: str) -> Request:
    """The bot's next message to USER containing ``what``."""
    return await server.wait_for("sendMessage", lambda r: r.status == 200
                                 and r.params.get("chat_id") == USER
                                 and what in str(r.params.get("text")), since=since,
                                 timeout=LONG)
