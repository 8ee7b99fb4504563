"""The real bot: python-telegram-bot against the fake Bot API server, a real TorrentManager on
a real aria2c (rendered and supervised like ``ariabot run`` does), and the local swarm.

Everything is on 127.0.0.1. Nothing sleeps a fixed time: tests wait for requests to arrive
at the fake server (``wait_for``) or for conditions (``until``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.app import EmbeddedBot, build_application
from manager import Event, TorrentCompleted, TorrentManager, TorrentState
from manager.aria2.notifications import NotificationListener
from manager.errors import InvalidSource
from manager.sources.magnets import parse_magnet
from supervisor.config import Settings
from supervisor.root import bot_config
from tests.fakes.telegram_api import DEFAULT_TOKEN, NOT_MODIFIED, FakeTelegramServer, Request
from tests.integration.conftest import start_engine, stop_engine
from tests.runner import AriabotRun
from tests.swarm import Swarm

MIB = 1024 * 1024
USER = 1001  # allowed; a private chat's id is the user's id
OTHER = 1002  # allowed too, in another chat
STRANGER = 666  # not in the allow-list
INTERVAL = 1.0  # edit_interval: the smallest the settings allow, to see several edits
SLACK = 0.25  # request arrival jitter when checking gaps between edits
LONG = 60.0  # generous deadline for a download on a loaded CI machine


@dataclass
class Stack:
    """Everything one test drives: the fake Telegram, the bot, the manager, aria2c."""

    server: FakeTelegramServer
    manager: TorrentManager
    bot: EmbeddedBot
    settings: Settings
    events: list[tuple[float, Event]] = field(default_factory=list)
    aria2_done: dict[str, float] = field(default_factory=dict)
    """info-hash → monotonic time of aria2's onBtDownloadComplete."""
    lookups: set[asyncio.Task[None]] = field(default_factory=set)

    # --- driving the chat ---------------------------------------------------------------------

    async def say(self, chat: int, text: str, user: int | None = None) -> Request:
        """A user sends ``text``; returns the bot's first answer in that chat."""
        mark = self.server.mark()
        self.server.push_text(chat, user or chat, text)
        return await self.answer(chat, mark)

    async def answer(self, chat: int, since: int, what: str = "",
                     timeout: float = 15.0) -> Request:
        """The next ``sendMessage`` in ``chat`` (containing ``what``) from ``since`` on."""
        return await self.server.wait_for(
            "sendMessage",
            lambda r: r.params.get("chat_id") == chat and what in str(r.params.get("text")),
            since=since, timeout=timeout)

    async def press(self, chat: int, message_id: int, data: str,
                    user: int | None = None) -> Request:
        """A user presses a button; returns the bot's ``answerCallbackQuery``."""
        mark = self.server.mark()
        update = self.server.push_callback(chat, user or chat, message_id, data)
        query_id = update["callback_query"]["id"]
        return await self.server.wait_for(
            "answerCallbackQuery", lambda r: r.params.get("callback_query_id") == query_id,
            since=mark)

    async def shown(self, chat: int, message_id: int, predicate: Callable[[str], bool],
                    timeout: float = LONG) -> dict[str, Any]:
        """Wait until the message's current text satisfies ``predicate``; return it."""
        def check() -> dict[str, Any] | None:
            message = self.server.message(chat, message_id)
            return message if predicate(message["text"]) else None
        return await self.server.wait_until(check, timeout=timeout,
                                            what=f"message {message_id} to change")

    def edits(self, chat: int, message_id: int, since: int = 0) -> list[Request]:
        return [r for r in self.server.requests[since:]
                if r.method == "editMessageText" and r.params.get("chat_id") == chat
                and r.params.get("message_id") == message_id]

    def by_method(self, chat: int, since: int, until_index: int | None = None) -> Counter[str]:
        """Requests about one chat (or without a chat: getUpdates excluded), by method."""
        return Counter(r.method for r in self.server.requests[since:until_index]
                       if r.params.get("chat_id") == chat
                       or (r.method == "answerCallbackQuery"))

    # --- manager and aria2 facts --------------------------------------------------------------

    def completed_at(self, download_id: int) -> float:
        return next(at for at, event in self.events
                    if isinstance(event, TorrentCompleted) and event.torrent.id == download_id)

    def aria2_completed_at(self, info_hash: str) -> float:
        """When aria2 announced the real download of ``info_hash`` complete."""
        return self.aria2_done[info_hash]

    def on_aria2(self, method: str, gid: str) -> None:
        """aria2's own notifications: timestamp "complete" at once, learn its info-hash."""
        if method != "aria2.onBtDownloadComplete":
            return
        at = time.monotonic()

        async def learn() -> None:
            status = await self.manager.rpc.call("aria2.tellStatus", gid, ["infoHash"])
            self.aria2_done.setdefault(status["infoHash"], at)

        task = asyncio.get_running_loop().create_task(learn())
        self.lookups.add(task)
        task.add_done_callback(self.lookups.discard)


@contextlib.asynccontextmanager
async def running_stack(engine_settings: Callable[..., Settings],
                        engine_options: dict[str, Any] | None = None,
                        **env: str) -> AsyncIterator[Stack]:
    """The lead's engine (aria2c rendered like ``ariabot run`` + store + manager), the bot
    built from the same settings by the composition root's ``bot_config``, a fake Telegram.

    ``env`` adds or overrides settings (``ARIABOT_*`` names); ``engine_options`` are passed
    to :func:`~tests.integration.conftest.start_engine` (``via``, ``progress_interval``)."""
    server = FakeTelegramServer()
    await server.start()
    settings = engine_settings(**{
        "ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN,
        "ARIABOT_TELEGRAM_API_URL": server.url,
        "ARIABOT_ALLOWED_USERS": f"{USER},{OTHER}",
        "ARIABOT_EDIT_INTERVAL": str(INTERVAL),
        **env,
    })
    engine = await start_engine(settings, **(engine_options or {}))
    manager = engine.manager
    bot = EmbeddedBot(build_application(bot_config(settings), manager), manager)
    built = Stack(server, manager, bot, settings)
    manager.subscribe(lambda event: built.events.append((time.monotonic(), event)))
    listener = NotificationListener(
        engine.rpc.endpoint.ws_url, asyncio.get_running_loop(),
        built.on_aria2, lambda: None)
    listener.start()
    try:
        await bot.start()
        yield built
    finally:
        await built.bot.stop()  # a test may have replaced the bot (a restart of it)
        await asyncio.to_thread(listener.stop)
        await stop_engine(engine)
        await server.stop()


@pytest.fixture
async def stack(engine_settings: Callable[..., Settings],
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """The bot on the real manager and aria2c, users USER and OTHER allowed (see
    :func:`running_stack`)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings) as built:
        yield built


def _result_id(request: Request) -> int:
    assert request.status == 200, request.response
    return int(request.response["result"]["message_id"])


def _download_id(text: str) -> int:
    """The ``#id`` on a progress message's first line."""
    return int(text.splitlines()[0].rsplit("#", 1)[1])


def _check_edit_rule(stack: Stack, edits: list[Request], urgent: int = 0) -> None:
    """At most one edit per interval per message, and never the same text twice in a row."""
    gaps = [b.time - a.time for a, b in itertools.pairwise(edits)]
    short = [g for g in gaps if g < INTERVAL - SLACK]
    assert len(short) <= urgent, f"edits closer than {INTERVAL}s: {gaps}"
    texts = [r.params["text"] for r in edits]
    assert all(a != b for a, b in itertools.pairwise(texts)), texts


# --- the main path -------------------------------------------------------------------------------

async def test_magnet_command_live_progress_completion_and_send_file(
    stack: Stack, swarm: Swarm,
) -> None:
    seeded = swarm.add("bot-single.bin", 12 * MIB, seed=51)
    start = stack.server.mark()
    with swarm.throttled(3 * MIB):
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        progress_id = _result_id(reply)
        download_id = _download_id(reply.params["text"])
        assert reply.params["parse_mode"] == "HTML"
        news = await stack.answer(USER, start, "is downloaded", timeout=LONG)
    final = await stack.shown(USER, progress_id, lambda text: "Complete" in text)
    assert "reply_markup" not in final  # no buttons on a finished download
    done = stack.server.mark()

    # The new message: size, time taken, where (relative), and a Send file button.
    text = news.params["text"]
    assert "Size 12.0 MiB" in text and "took" in text
    assert "<code>bot-single.bin</code>" in text
    assert str(stack.settings.download_dir) not in text
    button = news.params["reply_markup"]["inline_keyboard"][0][0]
    assert button["callback_data"] == f"send:{download_id}"

    # Edits follow the rule; the download's requests are few.
    edits = stack.edits(USER, progress_id)
    assert 1 <= len(edits) <= 100 // 5 + 6
    _check_edit_rule(stack, edits)
    counts = stack.by_method(USER, start, done)
    assert counts["sendMessage"] == 2  # the reply and the completion news
    assert counts["editMessageText"] == len(edits)

    # Send file: the bytes Telegram receives are the seeded file's.
    mark = stack.server.mark()
    answer = await stack.press(USER, _result_id(news), f"send:{download_id}")
    assert answer.params.get("text") == "Sending…"
    upload = await stack.server.wait_for("sendDocument", since=mark, timeout=LONG)
    assert upload.status == 200
    file_id = upload.response["result"]["document"]["file_id"]
    assert stack.server.file(file_id).data == seeded.content_path.read_bytes()
    assert upload.params["document"].filename == "bot-single.bin"

    aria2_done = stack.aria2_completed_at(seeded.info_hash)
    gap = news.time - aria2_done
    assert 0 <= gap < 2.0, f"completion message {gap:.3f}s after aria2's completion"
    print(f"\nFIGURES download #{download_id}: requests {dict(counts)}; "
          f"edits {len(edits)}; aria2 completion -> manager event "
          f"{stack.completed_at(download_id) - aria2_done:.3f}s -> completion message "
          f"{gap:.3f}s")


async def test_plain_text_magnet_and_torrent_document(stack: Stack, swarm: Swarm) -> None:
    by_text = swarm.add("bot-text.bin", 2 * MIB, seed=52)
    by_file = swarm.add("bot-pack", [MIB, 2 * MIB], seed=53)
    start = stack.server.mark()
    reply = await stack.say(USER, f"look: {by_text.magnet}, thanks!")
    assert "bot-text.bin" in reply.params["text"]

    mark = stack.server.mark()
    stack.server.push_document(USER, USER, by_file.torrent_bytes, "pack.torrent")
    reply = await stack.answer(USER, mark)
    assert "bot-pack" in reply.params["text"]
    assert stack.server.count("getFile") == 1
    assert stack.server.count("file") == 1

    await stack.answer(USER, start, "bot-text.bin</b> is downloaded", timeout=LONG)
    pack_news = await stack.answer(USER, start, "bot-pack</b> is downloaded", timeout=LONG)
    assert "reply_markup" not in pack_news.params  # a folder: no Send file button
    assert "<code>bot-pack</code>" in pack_news.params["text"]


async def test_buttons_pause_resume_cancel(stack: Stack, swarm: Swarm) -> None:
    seeded = swarm.add("bot-buttons.bin", 24 * MIB, seed=54)
    with swarm.throttled(256 * 1024):
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        progress_id = _result_id(reply)
        download_id = _download_id(reply.params["text"])

        answer = await stack.press(USER, progress_id, f"pause:{download_id}")
        assert answer.params.get("text") == "Paused"
        paused = await stack.shown(USER, progress_id, lambda t: "\nPaused" in t)
        assert paused["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == (
            f"resume:{download_id}")
        assert (await stack.manager.get(download_id)).state is TorrentState.PAUSED

        answer = await stack.press(USER, progress_id, f"resume:{download_id}")
        assert answer.params.get("text") == "Resumed"
        await stack.shown(USER, progress_id, lambda t: "\nPaused" not in t)

        await stack.press(USER, progress_id, f"cancel:{download_id}")
        asking = await stack.shown(USER, progress_id, lambda t: "Cancel this download?" in t)
        rows = asking["reply_markup"]["inline_keyboard"]
        assert [b["text"] for b in rows[0]] == ["Cancel", "Cancel + delete files"]
        await stack.press(USER, progress_id, f"back:{download_id}")
        await stack.shown(USER, progress_id, lambda t: "Cancel this download?" not in t)

        await stack.press(USER, progress_id, f"cancel:{download_id}")
        await stack.shown(USER, progress_id, lambda t: "Cancel this download?" in t)
        answer = await stack.press(USER, progress_id, f"cancel:{download_id}:delete")
        assert answer.params.get("text") == "Cancelled; its files are deleted."
        final = await stack.shown(USER, progress_id, lambda t: "\nCancelled" in t)
        assert "reply_markup" not in final
    assert (await stack.manager.get(download_id)).state is TorrentState.CANCELLED
    folder = stack.settings.download_dir / "torrents" / str(USER)
    assert not (folder / "bot-buttons.bin").exists()
    _check_edit_rule(stack, stack.edits(USER, progress_id), urgent=8)


async def test_a_press_telegram_no_longer_takes_an_answer_for_is_still_done(
        stack: Stack, swarm: Swarm, caplog: pytest.LogCaptureFixture) -> None:
    """Presses that waited through a restart (or were answered before a crash and come
    again) cannot be answered any more: Telegram says 400 "query is too old". The press is
    done all the same, and no error with a traceback is logged (the soak found one: Send on
    an unfinished download, delivered again after kill -9)."""
    caplog.set_level(logging.INFO, logger="bot")
    seeded = swarm.add("bot-too-old.bin", 24 * MIB, seed=57)
    with swarm.throttled(256 * 1024):
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        progress_id = _result_id(reply)
        download_id = _download_id(reply.params["text"])
        mark = stack.server.mark()
        old = [stack.server.push_callback(USER, USER, progress_id, data, too_old=True)
               ["callback_query"]["id"]
               for data in (f"send:{download_id}", f"pause:{download_id}", "no-such-verb")]
        # One chat's updates are handled in order: this answer comes after the three.
        await stack.press(USER, progress_id, f"refresh:{download_id}")
        tried = {r.params.get("callback_query_id") for r in stack.server.requests[mark:]
                 if r.method == "answerCallbackQuery"}
        assert set(old) <= tried
        assert (await stack.manager.get(download_id)).state is TorrentState.PAUSED
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_files_lists_and_chooses(stack: Stack, swarm: Swarm) -> None:
    seeded = swarm.add("bot-choose", [2 * MIB, 3 * MIB, MIB], seed=57)
    with swarm.throttled(128 * 1024):
        mark = stack.server.mark()
        stack.server.push_document(USER, USER, seeded.torrent_bytes, "choose.torrent")
        reply = await stack.answer(USER, mark)
        download_id = _download_id(reply.params["text"])
        listing = await stack.say(USER, f"/files {download_id}")
        text = listing.params["text"]
        assert "3 files, 3 chosen:" in text
        assert "1. ✅ bot-choose/part01.bin (2.0 MiB" in text
        assert "3. ✅ bot-choose/sub/part03.bin (1.0 MiB" in text
        chosen = await stack.say(USER, f"/files {download_id} 1, 3")
        assert "3 files, 2 chosen:" in chosen.params["text"]
        assert "2. ▫️ bot-choose/part02.bin (3.0 MiB)" in chosen.params["text"]
        assert (await stack.manager.get(download_id)).total_bytes == 3 * MIB
        wrong = await stack.say(USER, f"/files {download_id} 4")
        assert wrong.params["text"] == "File numbers go from 1 to 3."
        await stack.say(USER, f"/cancel {download_id}")


async def test_status_overview_is_replaced_not_piled_up(stack: Stack, swarm: Swarm) -> None:
    for number in range(12):
        await stack.manager.add(swarm.dead_magnet(f"dead-{number:02d}"), USER, USER)
    first = await stack.say(USER, "/status")
    first_id = _result_id(first)
    assert "<b>Downloads</b> (12) · page 1/2" in first.params["text"]
    mark = stack.server.mark()
    second = await stack.say(USER, "/status")
    second_id = _result_id(second)
    deleted = await stack.server.wait_for("deleteMessage", since=mark)
    assert deleted.params["message_id"] == first_id and deleted.status == 200
    overviews = [m for m in stack.server.messages(USER)
                 if m.get("text", "").startswith("Downloads")]
    assert [m["message_id"] for m in overviews] == [second_id]

    mark = stack.server.mark()
    await stack.press(USER, second_id, "status:1")
    page = await stack.shown(USER, second_id, lambda t: "page 2/2" in t)
    assert "dead-00" in page["text"] and "dead-11" not in page["text"]
    await stack.press(USER, second_id, "status:1")  # Refresh: nothing changed
    refused = [r for r in stack.server.requests[mark:] if r.method == "editMessageText"]
    assert [r.status for r in refused] == [200, 400]  # "not modified" is fine: answered


async def test_status_pages_through_every_download_of_the_chat(stack: Stack) -> None:
    # More than the 200 newest the overview once looked at: each page is read from the
    # store, so the oldest download is on the last page and the total counts them all.
    store = stack.manager.store
    for number in range(205):
        state = "cancelled" if number == 204 else "complete"
        await store.downloads.create(
            info_hash=f"{number:040x}", chat_id=USER, user_id=USER,
            name=f"old-{number:03d}", source_kind="magnet", source=b"magnet:?",
            directory="/nowhere", state=state)
    await store.downloads.create(
        info_hash="f" * 40, chat_id=USER + 1, user_id=USER, name="elsewhere",
        source_kind="magnet", source=b"magnet:?", directory="/nowhere",
        state="complete")
    first = await stack.say(USER, "/status")
    assert first.params["text"].startswith("<b>Downloads</b> (204) · page 1/21")
    assert "old-203" in first.params["text"] and "old-194" in first.params["text"]
    overview_id = _result_id(first)
    await stack.press(USER, overview_id, "status:20")
    last = await stack.shown(USER, overview_id, lambda t: "page 21/21" in t)
    assert "old-000" in last["text"] and "old-004" not in last["text"]
    assert "elsewhere" not in last["text"]

    for text, needle in [("/pause", "Usage: /pause"), ("/pause abc", "Usage: /pause"),
                         ("/cancel 1 now", "Usage: /cancel"), ("/files", "Usage: /files"),
                         ("/files 1 x-y", "Usage: /files"), ("/frobnicate", "Unknown command"),
                         ("/torrent", "Usage: /torrent"),
                         ("hello", "a .torrent file or a link to one")]:
        answer = await stack.say(USER, text)
        assert needle in answer.params["text"], (text, answer.params["text"])
        assert "\n" not in answer.params["text"]


# --- who may do what -----------------------------------------------------------------------------

async def test_strangers_get_one_refusal_and_nothing_happens(stack: Stack,
                                                             swarm: Swarm) -> None:
    victim = (await stack.manager.add(swarm.dead_magnet("victim"), USER, USER)).torrent
    mark = stack.server.mark()
    refusal = await stack.say(STRANGER, f"/torrent {swarm.dead_magnet('intruder')}")
    assert refusal.params["text"] == (
        f"Sorry, this is a private bot. Your Telegram user id is {STRANGER}; the owner can "
        "allow it with ARIABOT_ALLOWED_USERS.")
    stack.server.push_text(STRANGER, STRANGER, "/status")
    stack.server.push_document(STRANGER, STRANGER, b"d8:announce0:e", "x.torrent")
    answer = await stack.press(STRANGER, _result_id(refusal), f"cancel:{victim.id}:delete")
    assert not answer.params.get("text")  # already refused a moment ago: no second refusal
    await stack.server.wait_until(lambda: not stack.server.pending_updates)

    seen = [r.method for r in stack.server.requests[mark:] if r.method != "getUpdates"]
    assert seen == ["sendMessage", "answerCallbackQuery"]
    assert stack.server.count("getFile") == 0
    assert (await stack.manager.get(victim.id)).state is TorrentState.METADATA
    assert [t.name for t in await stack.manager.list(STRANGER)] == []


async def test_a_chat_cannot_touch_another_chats_download(stack: Stack, swarm: Swarm) -> None:
    victim = (await stack.manager.add(swarm.dead_magnet("mine"), USER, USER)).torrent
    expected = f"No download #{victim.id} in this chat; /status lists this chat's downloads."
    for command in (f"/pause {victim.id}", f"/cancel {victim.id} delete", f"/files {victim.id}"):
        answer = await stack.say(OTHER, command)
        assert answer.params["text"] == expected
    overview = await stack.say(OTHER, "/status")
    for data in (f"cancel:{victim.id}:delete", f"pause:{victim.id}", f"send:{victim.id}"):
        answer = await stack.press(OTHER, _result_id(overview), data)
        assert answer.params == {"callback_query_id": answer.params["callback_query_id"],
                                 "text": expected, "show_alert": True}
    forged = await stack.press(OTHER, _result_id(overview), "cancel:1;rm -rf")
    assert forged.params.get("text") == "This button does not work any more."
    assert (await stack.manager.get(victim.id)).state is TorrentState.METADATA


async def test_invalid_sources_get_the_managers_reason(stack: Stack) -> None:
    bad = "magnet:?xt=urn:btih:nothex&dn=x"
    with pytest.raises(InvalidSource) as reason:
        parse_magnet(bad)
    answer = await stack.say(USER, f"/torrent {bad}")
    assert answer.params["text"].lower().startswith(str(reason.value).lower()[:30])
    assert "Traceback" not in answer.params["text"]

    mark = stack.server.mark()
    stack.server.push_document(USER, USER, b"not bencode at all", "broken.torrent")
    answer = await stack.answer(USER, mark)
    assert "torrent" in answer.params["text"].lower()

    mark = stack.server.mark()
    too_big = b"x" * (stack.settings.torrent_max_bytes + 1)
    stack.server.push_document(USER, USER, too_big, "huge.torrent")
    answer = await stack.answer(USER, mark)
    assert "too large" in answer.params["text"]
    assert not [r for r in stack.server.requests[mark:] if r.method in ("getFile", "file")]
    assert await stack.manager.list(USER) == []


# --- Telegram misbehaving ------------------------------------------------------------------------

async def test_429_and_not_modified_are_survived(stack: Stack, swarm: Swarm) -> None:
    seeded = swarm.add("bot-flood.bin", 12 * MIB, seed=55)
    stack.server.fail_next("editMessageText", status=429, retry_after=1)
    stack.server.fail_next("editMessageText", status=400, description=NOT_MODIFIED)
    start = stack.server.mark()
    with swarm.throttled(2 * MIB):
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        progress_id = _result_id(reply)
        await stack.answer(USER, start, "is downloaded", timeout=LONG)
    await stack.shown(USER, progress_id, lambda t: "Complete" in t)
    edits = stack.edits(USER, progress_id)
    statuses = [r.status for r in edits]
    assert statuses[:2] == [429, 400] and statuses[-1] == 200
    assert edits[1].time - edits[0].time >= 1.0  # retry_after honoured
    assert edits[0].params["text"] != edits[1].params["text"] or len(edits) > 2
    _check_edit_rule(stack, [r for r in edits if r.status != 429])
    board = stack.bot.board
    assert board.stats.rate_limited == 1 and board.stats.not_modified >= 1
    print(f"\nFIGURES 429 + not modified: edits by status "
          f"{dict(Counter(r.status for r in edits))}; board {board.stats}")



# --- the real command ----------------------------------------------------------------------------

async def test_ariabot_run_drives_the_bot_and_stops_it_cleanly(tmp_path: Path,
                                                               swarm: Swarm) -> None:
    """``ariabot run`` with a token: the composition root starts the bot after the manager
    and stops it first; the token never reaches the log."""
    seeded = swarm.add("bot-run.bin", 3 * MIB, seed=56)
    async with FakeTelegramServer() as server:
        run = AriabotRun(tmp_path / "data", {
            "ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN,
            "ARIABOT_TELEGRAM_API_URL": server.url,
            "ARIABOT_ALLOWED_USERS": str(USER),
            "ARIABOT_EDIT_INTERVAL": "1",
            "ARIABOT_SEED_TIME": "0",
            "ARIABOT_PROGRESS_INTERVAL": "1",
            # A loaded CI machine must not make the health probe restart aria2c mid-test.
            "ARIABOT_HEALTH_TIMEOUT": "5",
            "ARIABOT_HEALTH_FAILURES": "3",
        }).start()
        try:
            await server.wait_until(lambda: server.polls_in_flight, timeout=30,
                                    what="the bot's first long poll")
            assert [c["command"] for c in server.commands()][:2] == ["torrent", "status"]
            server.push_text(USER, USER, f"/torrent {seeded.magnet}")
            await server.wait_for("sendMessage", lambda r: "is downloaded" in r.params["text"],
                                  timeout=LONG)
            run.signal(signal.SIGTERM)
            assert await asyncio.to_thread(run.wait_exit) == 0
        finally:
            await asyncio.to_thread(run.stop)
    output = run.output
    assert "the Telegram bot @ariabot_test_bot is running (long polling)" in output
    assert DEFAULT_TOKEN.split(":")[1] not in output
    folder = tmp_path / "data" / "downloads" / "torrents" / str(USER)
    assert (folder / "bot-run.bin").read_bytes() == seeded.content_path.read_bytes()
