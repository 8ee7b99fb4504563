"""What a chat is told when aria2 fails: a plain reason; aria2's own words go to the log.

aria2's error messages name absolute paths on the server (``Failed to open the file
/srv/…/torrents/7/x/a.bin, cause: Not a directory``). The chat gets ariabot's sentence
for the error; the log gets aria2's message with the GID, for the owner.

The real bot against the fake Bot API server, on the real manager, aria2c and local swarm.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil

import pytest

from manager import TorrentState
from tests.integration import test_bot
from tests.integration.test_bot import LONG, MIB, USER, Stack, _download_id, _result_id
from tests.integration.test_manager import wait_state
from tests.swarm import Swarm

stack = test_bot.stack  # the fixture: fake Telegram + real bot + real manager and aria2c

SERVER_PATH = re.compile(r"(?<![\w<])/[^\s/<>]+/")
"""An absolute path (``/tmp/…``): a slash-word-slash not inside an HTML tag (``</b>``)."""


def _chat_texts(stack: Stack, since: int) -> list[str]:
    """Every text the bot sent or edited into USER's chat since ``since``."""
    return [str(r.params.get("text", "")) for r in stack.server.requests[since:]
            if r.method in ("sendMessage", "editMessageText", "answerCallbackQuery")
            and r.params.get("chat_id", USER) == USER]


async def test_an_aria2_error_reaches_the_chat_as_a_plain_reason(
    stack: Stack, swarm: Swarm, caplog: pytest.LogCaptureFixture,
) -> None:
    """A stray file in the chat folder where a torrent needs its folder: aria2 fails it
    (error 15, "Failed to open the file <absolute path>, cause: Not a directory").

    ariabot refuses a name taken by files no download claims; a download cancelled without
    its files still claims them, so the user's file put in their place reaches aria2."""
    caplog.set_level(logging.WARNING)
    torrent = swarm.add("clash-dir", [1 * MIB, 1 * MIB], seed=61)
    folder_of_chat = stack.settings.download_dir / "torrents" / str(USER)
    first = await stack.manager.add(torrent.torrent_bytes, chat_id=USER, user_id=USER)
    await wait_state(stack, first.torrent.id, TorrentState.COMPLETE)  # type: ignore[arg-type]
    await stack.manager.cancel(first.torrent.id, chat_id=USER)
    shutil.rmtree(folder_of_chat / "clash-dir")
    (folder_of_chat / "clash-dir").write_text("a file of the user's, not a folder")
    server = stack.server
    start = server.mark()
    server.push_document(USER, USER, torrent.torrent_bytes, "clash.torrent")
    reply = await stack.answer(USER, start)
    progress_id = _result_id(reply)
    download_id = _download_id(reply.params["text"])
    news = await stack.answer(USER, start, "failed", timeout=LONG)
    shown = await stack.shown(USER, progress_id, lambda t: "\nError" in t)
    status = await stack.say(USER, "/status")

    failed = await stack.manager.get(download_id)
    assert failed.state is TorrentState.ERROR
    record = await stack.manager.store.downloads.get(download_id)
    assert record is not None and record.gid
    reason = "the downloader could not open the files"
    assert failed.error == reason
    assert reason in news.params["text"] and reason in shown["text"]
    assert "clash-dir" in status.params["text"]
    assert (folder_of_chat / "clash-dir").read_text() == "a file of the user's, not a folder"

    texts = _chat_texts(stack, start)
    folder = str(stack.settings.download_dir)
    for text in texts:
        assert folder not in text and not SERVER_PATH.search(text), text
        assert "Not a directory" not in text and "aria2" not in text.lower(), text
    # The owner still finds aria2's words, the GID and the path in the log.
    details = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
               and "Not a directory" in r.getMessage()]
    assert details, [r.getMessage() for r in caplog.records]
    assert record.gid in details[0]
    assert f"{folder}/torrents/{USER}/clash-dir/" in details[0]


async def _error_records(caplog: pytest.LogCaptureFixture, since: int,
                         timeout: float = 30.0) -> list[logging.LogRecord]:
    """The error handler's records after ``since``, once there is one (or fail)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (found := [r for r in caplog.records[since:] if r.name == "bot.errors"]):
        if loop.time() > deadline:
            raise AssertionError(f"nothing logged by bot.errors in {timeout}s")
        await asyncio.sleep(0.05)
    return found


async def test_a_reply_telegram_does_not_take_is_one_warning_line_without_a_traceback(
    stack: Stack, caplog: pytest.LogCaptureFixture,
) -> None:
    """Telegram unreachable (a 502, a 500, an answer lost after the message was posted, a
    429 the pacer gave up on) is expected: one warning line saying what, for which chat
    and why. A real bug (Telegram refusing our text: 400) keeps its traceback."""
    caplog.set_level(logging.INFO)
    server = stack.server

    def to_user(params: dict[str, object]) -> bool:
        return params.get("chat_id") == USER

    faults = {
        "Bad Gateway": lambda: server.fail_next("sendMessage", status=502, when=to_user),
        "Internal Server Error": lambda: server.fail_next("sendMessage", status=500,
                                                          when=to_user),
        "": lambda: server.lose_answer_next("sendMessage", when=to_user),
        "Retry in": lambda: server.fail_next("sendMessage", status=429, retry_after=1,
                                             times=4, when=to_user),
    }
    for reason, fault in faults.items():
        since = len(caplog.records)
        fault()
        server.push_text(USER, USER, "/help")
        [record] = await _error_records(caplog, since)
        assert record.levelno == logging.WARNING and record.exc_info is None, (
            reason, record.getMessage(), record.exc_text)
        text = record.getMessage()
        assert "\n" not in text and "/help" in text and f"chat {USER}" in text, text
        assert reason in text, text
        assert [r for r in caplog.records[since:] if r.exc_info] == []

    since = len(caplog.records)
    server.fail_next("sendMessage", status=400, when=to_user,
                     description="Bad Request: can't parse entities: unsupported start tag")
    server.push_text(USER, USER, "/help")
    [record] = await _error_records(caplog, since)
    assert record.levelno == logging.ERROR and record.exc_info is not None
