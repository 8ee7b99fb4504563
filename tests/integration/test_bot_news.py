"""News reaches every chat: one chat's failures hold up no other, and a notice stored by any
write path (a reconcile too) is sent without waiting for an unrelated event.

The real bot (python-telegram-bot) against the fake Bot API server, on the real manager,
store, aria2c and local swarm (the ``stack`` fixture of test_bot.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.app import EmbeddedBot, build_application
from manager import TorrentCompleted, TorrentState
from supervisor.config import Settings
from supervisor.root import bot_config
from tests.dbfaults import hold_writes, wait_for_locks
from tests.integration import test_bot
from tests.integration.test_bot import (
    LONG,
    MIB,
    OTHER,
    USER,
    Stack,
    _download_id,
    _result_id,
    running_stack,
)
from tests.swarm import Swarm
from tests.wsgate import WebSocketGate

stack = test_bot.stack  # the fixture: fake Telegram + real bot + real manager and aria2c

BOUND = 5.0
"""Seconds a chat's news may take after the change that causes it, whatever other chats do."""


async def _no_pending(stack: Stack) -> bool:
    return await stack.manager.pending_notices() == []


async def _until(check: Callable[[], Awaitable[bool]], what: str,
                 timeout: float = BOUND) -> None:
    """Wait for an async condition (read from the store), with a deadline."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.05)


def _completed_at(stack: Stack, download_id: int) -> float | None:
    return next((at for at, event in stack.events if isinstance(event, TorrentCompleted)
                 and event.torrent.id == download_id), None)


async def test_a_chat_whose_sends_keep_failing_holds_up_no_other_chats_news(
    stack: Stack, swarm: Swarm,
) -> None:
    server, store = stack.server, stack.manager.store
    # OTHER's chat: Telegram answers every message to it 502, and 250 failures are waiting
    # to be told there (more than one read of the outbox used to hold, oldest first).
    server.fail_next("sendMessage", times=10**6, status=502,
                     when=lambda params: params.get("chat_id") == OTHER)
    folder = str(stack.settings.download_dir / "torrents" / str(OTHER))
    for number in range(250):
        record = await store.downloads.create(
            info_hash=f"{number:040x}", chat_id=OTHER, user_id=OTHER,
            name=f"lost-{number}", source_kind="magnet",
            source=b"magnet:?xt=urn:btih:" + f"{number:040x}".encode(),
            directory=folder, state="queued")
        await store.downloads.update(record.id, state="error", error="no peers")

    seeded = swarm.add("news-other-chat.bin", MIB, seed=901)
    reply = await stack.say(USER, f"/torrent {seeded.magnet}")
    download_id = _download_id(reply.params["text"])
    completed = await server.wait_until(lambda: _completed_at(stack, download_id),
                                        timeout=LONG, what="the completion")
    news = await server.wait_for(
        "sendMessage", lambda r: r.status == 200 and r.params.get("chat_id") == USER
        and f"is downloaded (#{download_id})" in str(r.params.get("text")),
        timeout=BOUND + LONG / 4)
    assert news.time - completed < BOUND
    assert server.count("sendMessage", status=200) == 2  # the reply and the news; none to OTHER
    assert server.count("sendMessage", status=502) >= 1  # OTHER's news was tried meanwhile


@pytest.fixture
async def gated_stack(engine_settings: Callable[..., Settings],
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Stack,
                                                                               WebSocketGate]]:
    """The stack with aria2's WebSocket behind a gate and no progress poll: only the
    listener's reconnect (a reconcile) can find what happened while the gate was closed."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    gate = WebSocketGate()
    await gate.start()
    try:
        async with running_stack(engine_settings, {"via": gate.route,
                                                   "progress_interval": 3600}) as built:
            yield built, gate
    finally:
        await gate.stop()


async def test_a_failure_found_by_reconcile_is_told_without_any_other_event(
    gated_stack: tuple[Stack, WebSocketGate], swarm: Swarm,
) -> None:
    stack, gate = gated_stack
    server, manager = stack.server, stack.manager
    seeded = swarm.add("news-reconcile.bin", 4 * MIB, seed=902)
    with swarm.throttled(128 * 1024):
        mark = server.mark()
        server.push_document(USER, USER, seeded.torrent_bytes, "reconcile.torrent")
        reply = await stack.answer(USER, mark)
        download_id = _download_id(reply.params["text"])
        torrent = await manager.get(download_id)
        assert torrent.state is not TorrentState.COMPLETE
        # aria2 loses the download unheard, and its stored source is one aria2 refuses.
        gate.close()
        await server.wait_until(lambda: gate.websockets == 0, what="the WebSocket to be cut")
        gid = (await manager.store.downloads.get(download_id)).gid
        await manager.rpc.call("aria2.forceRemove", gid)

        async def removed() -> bool:
            status = await manager.rpc.call("aria2.tellStatus", gid, ["status"])
            return status["status"] == "removed"

        await _until(removed, "aria2 to remove the download", LONG)
        await manager.rpc.call("aria2.removeDownloadResult", gid)
        await manager.store.database.run(lambda: manager.store.database.db.execute_sql(
            'UPDATE "downloads" SET "source" = ? WHERE "id" = ?',
            (b"not a torrent", download_id)))
        mark = server.mark()
        gate.open()  # the listener reconnects: reconcile re-adds, aria2 refuses, it failed

        async def stored_failed() -> bool:
            record = await manager.store.downloads.get(download_id)
            return record.state == TorrentState.ERROR.value

        await _until(stored_failed, "reconcile to store the failure", LONG)
        news = await stack.answer(USER, mark, f"failed (#{download_id})", timeout=BOUND)
    assert "did not take it back" in news.params["text"]
    # The progress message's final edit is a stored notice too: done without another event.
    await stack.shown(USER, _result_id(reply), lambda text: "❌" in text, timeout=BOUND)
    await _until(lambda: _no_pending(stack), "the final edit to be marked")


GROUP = -4555
"""A basic group (a supergroup's id starts with -100), allowed with USER's private chat."""


@pytest.fixture
async def group_stack(engine_settings: Callable[..., Settings],
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings, ARIABOT_ALLOWED_USERS=f"{USER},{OTHER}",
                             ARIABOT_ALLOWED_CHATS=f"{GROUP},{USER}") as built:
        built.server.set_member(GROUP, USER, "administrator")
        yield built


def _to_chat(stack: Stack, chat: int, status: int, since: int = 0) -> int:
    return sum(1 for r in stack.server.requests[since:]
               if r.params.get("chat_id") == chat and r.status == status)


async def test_a_group_upgraded_to_a_supergroup_gets_its_news_there(
    group_stack: Stack, swarm: Swarm,
) -> None:
    stack, server, manager = group_stack, group_stack.server, group_stack.manager
    seeded = swarm.add("news-migrated.bin", 2 * MIB, seed=903)
    with swarm.throttled(128 * 1024):
        reply = await stack.say(GROUP, f"/torrent {seeded.magnet}", user=USER)
        progress_id, download_id = _result_id(reply), _download_id(reply.params["text"])
        await server.wait_for("editMessageText", lambda r: r.status == 200
                              and r.params.get("message_id") == progress_id, timeout=LONG)
        mark = server.mark()
        # No service message reaches the bot (say it was stopped when they came): the
        # first request to the old group meets Telegram's refusal, with the new id.
        supergroup = server.migrate(GROUP)
    completed = await server.wait_until(lambda: _completed_at(stack, download_id),
                                        timeout=LONG, what="the completion")
    news = await server.wait_for(
        "sendMessage", lambda r: r.status == 200 and r.params.get("chat_id") == supergroup
        and f"is downloaded (#{download_id})" in str(r.params.get("text")),
        since=mark, timeout=BOUND + LONG / 4)
    assert news.time - completed < BOUND
    assert (await manager.get(download_id)).chat_id == supergroup
    # The final edit of the progress message left in the old group is given up, not retried
    # for ever: nothing stays pending, and the old group got a request or two, no more.
    await _until(lambda: _no_pending(stack), "the final edit to be given up")
    assert 1 <= _to_chat(stack, GROUP, 400, mark) <= 3


@pytest.mark.parametrize(("close", "chat", "status"), [
    ("block", USER, 403),  # the user blocked the bot
    ("kick_bot", GROUP, 403),  # the bot was removed from the group
    ("delete_chat", GROUP, 400),  # the group is gone: chat not found
])
async def test_news_for_a_chat_closed_to_the_bot_is_given_up_at_once(
    group_stack: Stack, swarm: Swarm, close: str, chat: int, status: int,
) -> None:
    stack, server = group_stack, group_stack.server
    seeded = swarm.add(f"news-{close}.bin", 2 * MIB, seed=904)
    with swarm.throttled(128 * 1024):
        reply = await stack.say(chat, f"/torrent {seeded.magnet}", user=USER)
        progress_id, download_id = _result_id(reply), _download_id(reply.params["text"])
        await server.wait_for("editMessageText", lambda r: r.status == 200
                              and r.params.get("message_id") == progress_id, timeout=LONG)
        mark = server.mark()
        getattr(server, close)(chat)
    await server.wait_until(lambda: _completed_at(stack, download_id), timeout=LONG,
                            what="the completion")
    await _until(lambda: _no_pending(stack), "the news to be given up")
    # Tried once (the news; a progress edit or two may have met the refusal first), dropped.
    refused = _to_chat(stack, chat, status, mark)
    assert server.count("sendMessage", status=status) == 1
    assert 1 <= refused <= 3
    assert _to_chat(stack, chat, 200, mark) == 0
    assert stack.bot.board.stats.dropped >= 1


async def test_telegrams_service_message_moves_the_chat_before_any_request_fails(
    group_stack: Stack, swarm: Swarm,
) -> None:
    stack, server, manager = group_stack, group_stack.server, group_stack.manager
    seeded = swarm.add("news-announced.bin", 2 * MIB, seed=905)
    with swarm.throttled(128 * 1024):
        reply = await stack.say(GROUP, f"/torrent {seeded.magnet}", user=USER)
        progress_id, download_id = _result_id(reply), _download_id(reply.params["text"])
        await manager.pause(download_id)  # nothing to edit while the group is upgraded
        await stack.shown(GROUP, progress_id, lambda text: "Paused" in text)
        mark = server.mark()
        supergroup = server.migrate(GROUP, by=USER)  # the service messages come as updates

        async def moved() -> bool:
            return (await manager.get(download_id)).chat_id == supergroup

        await _until(moved, "the download to follow its chat")
        assert _to_chat(stack, GROUP, 400, mark) == 0


@pytest.mark.parametrize("then", ["wait", "restart the bot"])
async def test_a_notice_gone_while_the_store_cannot_mark_it_is_marked_later_not_sent_twice(
    engine_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, then: str,
) -> None:
    """Found by the promises soak: the store was locked when a notice had just gone (there,
    dropped for want of an admin chat). The mark's StoreError ended the send with a
    traceback, and the notice, still pending, would have gone again. And again by the soak:
    ariabot stopped (SIGTERM) between the store's return and the mark's next turn, and the
    notice went out again after the restart."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings, ARIABOT_ADMIN_CHAT=str(USER)) as stack:
        server, store = stack.server, stack.manager.store
        await wait_for_locks(store, 100)
        server.fail_next("sendMessage", status=429, retry_after=2,
                         when=lambda params: params.get("chat_id") == USER)
        stack.manager.aria2_down("aria2c exited with code -9")
        await server.wait_for("sendMessage", lambda r: r.status == 429)
        with hold_writes(store.url):  # until the notice has gone and its mark failed
            alert = await server.wait_for(
                "sendMessage", lambda r: r.status == 200 and r.params.get("chat_id") == USER,
                timeout=LONG)
            await _until(lambda: _said(caplog, "bot.news", "bot.tasks"), "the failed mark")
        if then == "restart the bot":  # before the mark's next turn
            await stack.bot.stop()
            stack.bot = EmbeddedBot(build_application(bot_config(stack.settings),
                                                      stack.manager), stack.manager)
            await stack.bot.start()
        await _until(lambda: _no_pending(stack), "the notice marked")
        sent = [r for r in server.requests_for("sendMessage")
                if r.status == 200 and r.params.get("chat_id") == USER]
        assert sent == [alert]
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def _said(caplog: pytest.LogCaptureFixture, *loggers: str) -> bool:
    """Whether one of ``loggers`` logged a warning or worse."""
    return any(r.name in loggers and r.levelno >= logging.WARNING for r in caplog.records)
