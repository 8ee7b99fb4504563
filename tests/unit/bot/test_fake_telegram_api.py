"""The fake Bot API server, proven against the real python-telegram-bot Application.

The Application is driven the way the supervisor will drive it: ``async with app``, then
``start()`` and ``updater.start_polling()``; never ``run_polling()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from telegram import (
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    RetryAfter,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.pacer import ChatPacer
from tests.fakes.telegram_api import (
    BOT_USERNAME,
    CONFLICT_OTHER_POLL,
    NOT_MODIFIED,
    FakeTelegramServer,
    FloodLimits,
    Request,
    _FloodGate,
)

USER = 4242
CHAT = USER  # a private chat has the user's id
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go:1")]])


@dataclass
class Harness:
    """What the test handlers saw: update ids in arrival order and errors."""

    app: Application
    seen: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self) -> None:
        """Wake :meth:`until` callers."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, check: Callable[[], object], timeout: float = 10.0) -> None:
        """Wait until ``check()`` holds, re-checking whenever a handler ran."""
        async with asyncio.timeout(timeout):
            while not check():
                await self._changed.wait()


async def _ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text("pong")


async def _menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text("Pick one", reply_markup=KEYBOARD)


async def _button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("ok")
    await query.edit_message_text(f"Chosen {query.data}")


async def _document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.document is not None
    telegram_file = await message.document.get_file()
    data = await telegram_file.download_as_bytearray()
    await message.reply_text(f"{len(data)} bytes")


def build_harness(server: FakeTelegramServer, *, retries: int = 0,
                  token: str | None = None) -> Harness:
    """A real Application pointed at ``server`` with trivial handlers."""
    app = (
        ApplicationBuilder()
        .token(token or server.token)
        .base_url(f"{server.url}/bot")
        .base_file_url(f"{server.url}/file/bot")
        .rate_limiter(ChatPacer(retries=retries))
        .build()
    )
    harness = Harness(app)

    async def remember(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        harness.seen.append(update.update_id)
        harness.note()

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        harness.errors.append(context.error)
        harness.note()

    app.add_handler(TypeHandler(Update, remember), group=-1)
    app.add_handler(CommandHandler("ping", _ping))
    app.add_handler(CommandHandler("menu", _menu))
    app.add_handler(CallbackQueryHandler(_button))
    app.add_handler(MessageHandler(filters.Document.ALL, _document))
    app.add_error_handler(on_error)
    return harness


def _ok(request: Request) -> bool:
    return request.response is not None and request.response["ok"] is True


@contextlib.asynccontextmanager
async def polling(harness: Harness) -> AsyncIterator[Harness]:
    """Run the Application like the supervisor does, and stop it in reverse order."""
    app = harness.app
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield harness
        finally:
            await app.updater.stop()
            await app.stop()


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in to PTB's timedelta durations: without it, PTB 22 warns (PTBDeprecationWarning)
    inside ``RetryAfter.__init__``, and with ``filterwarnings = error`` every 429 becomes
    that warning instead of ``RetryAfter``."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as fake:
        yield fake


async def test_command_gets_one_reply_and_bootstrap_is_recorded(
        server: FakeTelegramServer) -> None:
    async with polling(build_harness(server)) as harness:
        update = server.push_text(CHAT, USER, "/ping")
        reply = await server.wait_for("sendMessage")
        server.push_text(CHAT, USER, f"/ping@{BOT_USERNAME}")
        await server.wait_for("sendMessage", since=server.mark())
        server.push_text(CHAT, USER, "/ping@some_other_bot")
        server.push_text(CHAT, USER, "/menu")  # handled after the foreign command
        await server.wait_for("sendMessage", lambda r: r.params["text"] == "Pick one")

    assert [r.method for r in server.requests[:2]] == ["getMe", "deleteWebhook"]
    # PTB sends form fields; the fake decodes them as Telegram does.
    assert reply.status == 200
    assert reply.params["chat_id"] == CHAT and reply.params["text"] == "pong"
    assert reply.response is not None
    assert reply.response["result"]["from"]["username"] == BOT_USERNAME
    assert update["message"]["entities"] == [{"offset": 0, "length": 5, "type": "bot_command"}]
    texts = [m["text"] for m in server.messages(CHAT)]
    assert texts == ["pong", "pong", "Pick one"]  # nothing for /ping@some_other_bot
    ids = [m["message_id"] for m in server.messages(CHAT, include_user=True)]
    assert ids == list(range(1, 8))  # 4 from the user, 3 from the bot, one sequence
    assert harness.errors == []


async def test_identical_edit_is_rejected_as_not_modified() -> None:
    async with FakeTelegramServer(limits=None) as server:  # six edits back to back
        await _identical_edit_is_rejected_as_not_modified(server)


async def _identical_edit_is_rejected_as_not_modified(server: FakeTelegramServer) -> None:
    harness = build_harness(server)
    async with harness.app:
        bot = harness.app.bot
        sent = await bot.send_message(CHAT, "hello", reply_markup=KEYBOARD)

        with pytest.raises(BadRequest, match=r"(?i)message is not modified") as caught:
            await bot.edit_message_text("hello", CHAT, sent.message_id, reply_markup=KEYBOARD)
        # PTB strips "Bad Request: " and .capitalize()s the rest: match case-insensitively.
        assert caught.value.message.lower() == NOT_MODIFIED.removeprefix("Bad Request: ")

        edited = await bot.edit_message_text("hello", CHAT, sent.message_id)
        assert edited.reply_markup is None  # no reply_markup in an edit removes the keyboard
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_reply_markup(CHAT, sent.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("x", CHAT, sent.message_id + 100)

    assert server.message(CHAT, sent.message_id)["text"] == "hello"
    assert "reply_markup" not in server.message(CHAT, sent.message_id)
    assert [r.status for r in server.requests_for("editMessageText")] == [400, 200, 400]


async def test_html_is_parsed_and_bad_markup_is_rejected(server: FakeTelegramServer) -> None:
    harness = build_harness(server)
    async with harness.app:
        bot = harness.app.bot
        sent = await bot.send_message(CHAT, "  <b>ubuntu</b> &lt;24.04&gt; ✓ <i>é</i>\n",
                                      parse_mode=ParseMode.HTML)
        bad_tag = r"(?i)can't parse entities: unsupported start tag \"iso\" at byte offset 5"
        with pytest.raises(BadRequest, match=bad_tag):
            await bot.send_message(CHAT, "name <iso>", parse_mode=ParseMode.HTML)

    shown = server.message(CHAT, sent.message_id)
    assert shown["text"] == sent.text == "ubuntu <24.04> ✓ é"
    assert shown["entities"] == [
        {"offset": 0, "length": 6, "type": "bold"},
        {"offset": 17, "length": 1, "type": "italic"},
    ]
    assert len(server.messages(CHAT)) == 1


async def test_429_is_retried_by_the_rate_limiter_and_delivered_once(
        server: FakeTelegramServer) -> None:
    server.fail_next("sendMessage", status=429, retry_after=1)
    async with polling(build_harness(server, retries=2)) as harness:
        server.push_text(CHAT, USER, "/ping")
        await server.wait_for("sendMessage", lambda r: r.status == 200)

    first, second = server.requests_for("sendMessage")
    assert (first.status, second.status) == (429, 200)
    assert first.response == {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert second.time - first.time >= 1.0  # the pacer holds the chat for retry_after
    assert [m["text"] for m in server.messages(CHAT)] == ["pong"]
    assert harness.errors == []


async def test_429_reaches_the_handler_when_the_pacer_does_not_retry(
        server: FakeTelegramServer) -> None:
    server.fail_next("sendMessage", status=429, retry_after=3)
    async with polling(build_harness(server)) as harness:  # retries=0
        server.push_text(CHAT, USER, "/ping")
        await harness.until(lambda: harness.errors)

    [error] = harness.errors
    assert isinstance(error, RetryAfter) and error.retry_after == dt.timedelta(seconds=3)
    assert server.count("sendMessage") == 1 and server.messages(CHAT) == []


@pytest.mark.parametrize(
    ("status", "malformed"),
    [(500, False), (502, False), (200, True)],
    ids=["internal-error", "bad-gateway", "not-json"],
)
async def test_get_updates_failure_is_survived_without_duplicates(
        server: FakeTelegramServer, status: int, malformed: bool) -> None:
    async with polling(build_harness(server)) as harness:
        first = server.push_text(CHAT, USER, "/ping")["update_id"]
        await harness.until(lambda: first in harness.seen)
        server.fail_next("getUpdates", status=status, malformed=malformed)
        second = server.push_text(CHAT, USER, "/ping")["update_id"]
        failed = await server.wait_for("getUpdates", lambda r: not _ok(r))
        since = server.requests.index(failed) + 1
        retry = await server.wait_for("getUpdates", _ok, since=since)
        third = server.push_text(CHAT, USER, "/ping")["update_id"]
        await harness.until(lambda: third in harness.seen)

    assert failed.status == status and (failed.response is None) == malformed
    assert retry.params.get("offset") == failed.params.get("offset")
    assert retry.time - failed.time >= 0.9  # PTB waits 1 s after a first polling error
    assert harness.seen == [first, second, third]
    assert server.count("sendMessage") == 3
    assert harness.errors == []  # polling errors are logged by the Updater, not dispatched


async def test_document_round_trip_through_get_file_and_upload(
        server: FakeTelegramServer) -> None:
    payload = os.urandom(3000)
    async with polling(build_harness(server)) as harness:
        server.push_document(CHAT, USER, payload, "ubuntu.torrent")
        reply = await server.wait_for("sendMessage")
        sent = await harness.app.bot.send_document(CHAT, payload[:100], filename="out.torrent")
        back = await (await harness.app.bot.get_file(sent.document.file_id)).download_as_bytearray()

    assert reply.params["text"] == "3000 bytes"
    assert server.requests_for("getFile")[0].params["file_id"].startswith("BQAC")
    assert [r.status for r in server.requests_for("file")] == [200, 200]
    upload = server.requests_for("sendDocument")[0].params["document"]
    assert (upload.filename, upload.data) == ("out.torrent", payload[:100])
    assert bytes(back) == payload[:100]
    assert server.messages(CHAT)[-1]["document"]["file_name"] == "out.torrent"
    assert harness.errors == []


async def test_callback_is_answered_and_its_message_edited(server: FakeTelegramServer) -> None:
    async with polling(build_harness(server)) as harness:
        server.push_text(CHAT, USER, "/menu")
        menu = await server.wait_for("sendMessage")
        assert menu.response is not None
        message_id = menu.response["result"]["message_id"]
        update = server.push_callback(CHAT, USER, message_id, "go:1")
        answer = await server.wait_for("answerCallbackQuery")
        await server.wait_for("editMessageText")

    assert answer.params == {"callback_query_id": update["callback_query"]["id"], "text": "ok"}
    assert answer.status == 200
    assert server.callback_answer(update["callback_query"]["id"]) == {"text": "ok"}
    shown = server.message(CHAT, message_id)
    assert shown["text"] == "Chosen go:1" and "reply_markup" not in shown
    assert harness.errors == []


async def test_outage_is_survived_by_polling(server: FakeTelegramServer) -> None:
    async with polling(build_harness(server)) as harness:
        first = server.push_text(CHAT, USER, "/ping")["update_id"]
        await harness.until(lambda: first in harness.seen)
        await server.wait_until(lambda: server.polls_in_flight)  # the outage cuts this poll
        port, mark = server.port, server.mark()
        await server.outage(2)
        assert server.port == port
        second = server.push_text(CHAT, USER, "/ping")["update_id"]
        await harness.until(lambda: second in harness.seen, timeout=15)
        during = [r for r in server.requests[mark:] if r.method == "getUpdates"]

    cut, resumed = during[0], during[1]
    assert (cut.status, resumed.status) == (None, 200)  # nothing got through in between
    assert resumed.time - cut.time >= 2.0
    assert harness.seen == [first, second]
    assert [m["text"] for m in server.messages(CHAT)] == ["pong", "pong"]


async def test_wrong_token_is_unauthorized(server: FakeTelegramServer) -> None:
    harness = build_harness(server, token="654321:" + "B" * 35)
    with pytest.raises(InvalidToken, match="was rejected by the server"):
        async with harness.app:
            pass
    # A failed initialize() leaves the Application "not initialized", so its shutdown() (also
    # called by ``async with``) skips the bot: close the HTTP clients here or leak a socket.
    await harness.app.bot.shutdown()
    assert server.requests_for("getMe")[0].status == 401
    assert server.requests_for("getMe")[0].response == {
        "ok": False, "error_code": 401, "description": "Unauthorized",
    }


async def test_commands_round_trip_and_unknown_method_is_404(
        server: FakeTelegramServer) -> None:
    harness = build_harness(server)
    async with harness.app:
        bot = harness.app.bot
        await bot.set_my_commands([("ping", "Answer pong"), ("menu", "Show a keyboard")])
        commands = await bot.get_my_commands()
        with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
            await bot.set_my_commands([("Ping", "capital letters are refused")])
        with pytest.raises(EndPointNotFound, match="'frobnicate' not found"):
            await bot.do_api_request("frobnicate")  # a 404 after initialize()

    assert [c.command for c in commands] == ["ping", "menu"]
    assert server.commands()[0] == {"command": "ping", "description": "Answer pong"}


async def test_updates_are_redelivered_until_an_offset_confirms_them(
        server: FakeTelegramServer) -> None:
    first = server.push_text(CHAT, USER, "a")["update_id"]
    second = server.push_text(CHAT, USER, "b")["update_id"]
    url = f"{server.url}/bot{server.token}/getUpdates"
    async with aiohttp.ClientSession() as session:

        async def call(**params: int) -> tuple[int, Any]:
            async with session.post(url, json=params) as answer:
                return answer.status, await answer.json()

        async def poll(**params: int) -> list[int]:
            return [u["update_id"] for u in (await call(**params))[1]["result"]]

        assert await poll() == [first, second]
        assert await poll() == [first, second]  # not confirmed yet
        assert await poll(offset=second) == [second]
        assert await poll(offset=second + 1, timeout=0) == []
        assert await poll(offset=first) == []  # confirmed updates are gone for good

        async def form_long_poll() -> list[int]:
            async with session.post(url, data={"timeout": "5"}) as answer:
                return [u["update_id"] for u in (await answer.json())["result"]]

        waiting = asyncio.create_task(form_long_poll())
        await server.wait_until(lambda: server.polls_in_flight)
        third = server.push_text(CHAT, USER, "c")["update_id"]
        assert await asyncio.wait_for(waiting, 2) == [third]  # woken at once, not after 5 s

        older = asyncio.create_task(call(offset=third + 1, timeout=5))
        await server.wait_until(lambda: server.polls_in_flight)
        assert await poll(offset=third + 1) == []
        status, body = await asyncio.wait_for(older, 2)
        assert (status, body["description"]) == (409, CONFLICT_OTHER_POLL)


async def test_answer_next_sends_exactly_that_body_then_answers_normally(
        server: FakeTelegramServer) -> None:
    server.answer_next("getMe", {"ok": True, "result": {"username": "x"}})
    server.answer_next("getMe", "<html>not json</html>")
    url = f"{server.url}/bot{server.token}/getMe"
    async with aiohttp.ClientSession() as session:
        answers = []
        for _ in range(3):
            async with session.post(url) as answer:
                answers.append((answer.status, answer.content_type, await answer.text()))
    assert answers[0] == (200, "application/json", '{"ok": true, "result": {"username": "x"}}')
    assert answers[1] == (200, "text/html", "<html>not json</html>")
    assert answers[2][0] == 200 and f'"username": "{BOT_USERNAME}"' in answers[2][2]


async def test_chat_members_and_administrators_parse_in_ptb(server: FakeTelegramServer) -> None:
    group = -100777
    server.set_member(group, 1, "creator")
    server.set_member(group, 2, "administrator")
    server.set_member(group, 3, "member")
    server.set_member(group, 4, "kicked")
    harness = build_harness(server)
    async with harness.app:
        bot = harness.app.bot
        admins = await bot.get_chat_administrators(group)
        statuses = {m.user.id: m.status for m in admins}
        members = [await bot.get_chat_member(group, user) for user in (2, 3, 4, 5)]
        with pytest.raises(BadRequest, match="no administrators in the private chat"):
            await bot.get_chat_administrators(USER)
        me = await bot.get_chat_member(USER, USER)
    assert statuses == {1: ChatMemberStatus.OWNER, 2: ChatMemberStatus.ADMINISTRATOR}
    assert [type(m) for m in members] == [ChatMemberAdministrator, ChatMemberMember,
                                          ChatMemberBanned, ChatMemberLeft]
    assert me.status == ChatMemberStatus.MEMBER
    with pytest.raises(ValueError, match="status must be one of"):
        server.set_member(group, 6, "king")


# --- flood limits --------------------------------------------------------------------------------

async def _send_many(server: FakeTelegramServer, chats: list[int]) -> list[tuple[int, Any]]:
    """One sendMessage per entry of ``chats``, as fast as one client can, in order."""
    url = f"{server.url}/bot{server.token}/sendMessage"
    answers = []
    async with aiohttp.ClientSession() as session:
        for chat in chats:
            async with session.post(url, json={"chat_id": chat, "text": "x"}) as answer:
                answers.append((answer.status, await answer.json()))
    return answers


async def test_a_chat_gets_its_burst_then_429_with_retry_after(
    server: FakeTelegramServer,
) -> None:
    burst = FloodLimits().chat_burst
    answers = await _send_many(server, [1001] * (burst + 1) + [1002])
    assert [status for status, _ in answers] == [200] * burst + [429, 200]
    assert answers[burst][1] == {"ok": False, "error_code": 429,
                                 "description": "Too Many Requests: retry after 1",
                                 "parameters": {"retry_after": 1}}
    assert server.too_many == 1


def test_a_group_gets_twenty_a_minute() -> None:
    gate = _FloodGate(FloodLimits(chat_rate=1000, chat_burst=1000))
    assert [gate.admit(-100555, i / 10) for i in range(20)] == [0.0] * 20
    assert gate.admit(-100555, 2.0) == pytest.approx(58.0)  # the first leaves the window at 60
    assert gate.admit(1001, 2.0) == 0.0  # a private chat is not a group
    assert gate.admit(-100555, 60.0) == 0.0


def test_thirty_a_second_across_chats() -> None:
    gate = _FloodGate(FloodLimits())
    assert [gate.admit(chat, chat / 100) for chat in range(1, 31)] == [0.0] * 30
    assert gate.admit(31, 0.5) == pytest.approx(0.51)
    assert gate.admit(31, 1.02) == 0.0


async def test_limits_can_be_switched_off() -> None:
    async with FakeTelegramServer(limits=None) as server:
        answers = await _send_many(server, [1001] * 10)
    assert {status for status, _ in answers} == {200} and server.too_many == 0


# --- chats that move or close to the bot: Telegram's exact answers, as PTB reads them ------------

async def test_a_group_upgraded_to_a_supergroup_answers_with_its_new_id(
    server: FakeTelegramServer,
) -> None:
    group = -4321
    async with polling(build_harness(server)) as harness:
        bot = harness.app.bot
        await bot.send_message(group, "first")
        old = await bot.send_message(group, "before")
        new_id = server.migrate(group, by=USER)
        assert new_id == -1004321
        with pytest.raises(ChatMigrated) as sent:
            await bot.send_message(group, "after")
        with pytest.raises(ChatMigrated) as edited:
            await bot.edit_message_text("edited", chat_id=group, message_id=old.message_id)
        assert (sent.value.new_chat_id, edited.value.new_chat_id) == (new_id, new_id)
        refused = server.requests_for("sendMessage")[-1]
        assert refused.response == {
            "ok": False, "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": new_id}}
        # The old message stays in the old group; the supergroup has its own ids.
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("edited", chat_id=new_id, message_id=old.message_id)
        moved = await bot.send_message(new_id, "after")
        assert moved.chat.type == "supergroup"
        assert server.message(group, old.message_id)["text"] == "before"
        # The service messages Telegram sends in both chats.
        await harness.until(lambda: len(harness.seen) == 2)
        to, back = (server.message(group, 3), server.message(new_id, 1))
        assert (to["migrate_to_chat_id"], back["migrate_from_chat_id"]) == (new_id, group)
    with pytest.raises(ValueError, match="not a basic group"):
        server.migrate(group)


@pytest.mark.parametrize(("close", "chat", "error", "text"), [
    ("block", USER, Forbidden, "Forbidden: bot was blocked by the user"),
    ("kick_bot", -77, Forbidden, "Forbidden: bot was kicked from the group chat"),
    ("kick_bot", -10077, Forbidden, "Forbidden: bot was kicked from the supergroup chat"),
    ("delete_chat", -77, BadRequest, "Bad Request: chat not found"),
])
async def test_a_chat_closed_to_the_bot_refuses_every_request(
    server: FakeTelegramServer, close: str, chat: int, error: type[Exception], text: str,
) -> None:
    async with polling(build_harness(server)) as harness:
        bot = harness.app.bot
        sent = await bot.send_message(chat, "before")
        getattr(server, close)(chat)
        with pytest.raises(error):
            await bot.send_message(chat, "after")
        with pytest.raises(error):
            await bot.edit_message_text("edited", chat_id=chat, message_id=sent.message_id)
        statuses = {r.response["description"] for r in server.requests[-2:]}
        assert statuses == {text}


async def test_a_text_over_4096_characters_is_too_long(server: FakeTelegramServer) -> None:
    async with polling(build_harness(server)) as harness:
        bot = harness.app.bot
        sent = await bot.send_message(CHAT, "short")
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(CHAT, "x" * 4097)
        with pytest.raises(BadRequest, match="Message_too_long"):
            await bot.edit_message_text("x" * 4097, chat_id=CHAT, message_id=sent.message_id)
        assert [r.response["description"] for r in server.requests_for("sendMessage")[1:]
                + server.requests_for("editMessageText")] == [
            "Bad Request: message is too long", "Bad Request: MESSAGE_TOO_LONG"]
