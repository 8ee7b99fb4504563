"""Getting finished files out through Telegram: the real bot (python-telegram-bot against the
fake Bot API server with a small upload limit), a real manager on a real aria2c, the local
swarm. A file bigger than one upload arrives in numbered parts that rejoin to the original;
Send all sends every file of a torrent; a refused part is retried and never duplicated;
Stop stops; what Telegram confirmed is never sent again, across a restart of the bot; a lost
answer is sent again (at least once: news and files alike); a local Bot API server gets the
file by path; bad presses change nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from bot.app import EmbeddedBot, build_application
from manager import TorrentManager
from supervisor.config import Settings
from supervisor.root import bot_config
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer, Request
from tests.integration import test_bot
from tests.integration.conftest import start_engine, stop_engine
from tests.integration.test_bot import LONG, MIB, USER, Stack, _download_id, _result_id
from tests.integration.test_faults import until_async
from tests.swarm import Swarm

stack = test_bot.stack  # the fixture: fake Telegram + real bot + real manager and aria2c

LIMIT = MIB  # ARIABOT_UPLOAD_LIMIT_MB=1, and the fake server's upload limit


@contextlib.asynccontextmanager
async def delivery_stack(engine_settings: Callable[..., Settings], *,
                         local_mode: bool = False) -> AsyncIterator[Stack]:
    """The bot on the real manager and aria2c, uploads limited to 1 MiB, quick retries."""
    server = FakeTelegramServer(upload_limit=LIMIT, local_mode=local_mode)
    await server.start()
    settings = engine_settings(**{
        "ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN, "ARIABOT_TELEGRAM_API_URL": server.url,
        "ARIABOT_ALLOWED_USERS": str(USER), "ARIABOT_EDIT_INTERVAL": "1",
        "ARIABOT_UPLOAD_LIMIT_MB": "1",
        "ARIABOT_TELEGRAM_LOCAL_MODE": "true" if local_mode else "false",
    })
    engine = await start_engine(settings)
    built = Stack(server, engine.manager, _bot(settings, engine.manager), settings)
    try:
        await built.bot.start()
        yield built
    finally:
        await built.bot.stop()  # a test may have replaced the bot (a restart of it)
        await stop_engine(engine)
        await server.stop()


def _bot(settings: Settings, manager: TorrentManager) -> EmbeddedBot:
    config = dataclasses.replace(bot_config(settings), send_retry_delay=0.05)
    return EmbeddedBot(build_application(config, manager), manager)


async def _download(stack: Stack, magnet: str) -> tuple[int, Request]:
    """Add a magnet and wait for its completion message: ``(download id, that message)``."""
    start = stack.server.mark()
    reply = await stack.say(USER, f"/torrent {magnet}")
    news = await stack.answer(USER, start, "is downloaded", timeout=LONG)
    return _download_id(reply.params["text"]), news


def _uploads(stack: Stack, since: int) -> list[Request]:
    return [r for r in stack.server.requests[since:]
            if r.method == "sendDocument" and r.status == 200]


async def _job_ended(stack: Stack, since: int, what: str) -> str:
    """The send's status message once it says ``what`` (how the job ended)."""
    def ended() -> str | None:
        for request in stack.server.requests[since:]:
            if request.method in ("sendMessage", "editMessageText") and request.status == 200:
                text = str(request.response["result"].get("text", ""))
                if what in text:
                    return text
        return None
    return await stack.server.wait_until(ended, timeout=LONG, what=f"a status saying {what}")


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


async def test_big_file_in_parts_send_all_retry_stop_and_bad_presses(
        engine_settings: Callable[..., Settings], swarm: Swarm,
        monkeypatch: Any) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    single = swarm.add("deliver-big.bin", 2 * MIB + 300 * 1024, seed=81)
    pack = swarm.add("deliver-pack", [MIB // 2, MIB + 5, 3000], seed=82)
    async with delivery_stack(engine_settings) as stack:
        big_id, news = await _download(stack, single.magnet)
        pack_id, _ = await _download(stack, pack.magnet)

        # A single file bigger than one upload: Send file, in 3 parts that rejoin to it.
        button = news.params["reply_markup"]["inline_keyboard"][0][0]
        assert button["callback_data"] == f"send:{big_id}"
        mark = stack.server.mark()
        stack.server.fail_next("sendDocument", status=502, when=lambda p: getattr(
            p.get("document"), "filename", "") == "deliver-big.bin.002")
        answer = await stack.press(USER, _result_id(news), f"send:{big_id}")
        assert answer.params.get("text") == "Sending…"
        again = await stack.press(USER, _result_id(news), f"send:{big_id}")  # a double press
        assert "already being sent" in again.params.get("text", "")
        done = await _job_ended(stack, mark, "✅ Sent")
        assert "3 uploads" in done
        uploads = [r.params["document"] for r in _uploads(stack, mark)]
        assert [u.filename for u in uploads] == [f"deliver-big.bin.00{n}" for n in (1, 2, 3)]
        assert all(u.size <= LIMIT for u in uploads)
        original = single.content_path.read_bytes()
        assert _sha1(b"".join(u.data for u in uploads)) == _sha1(original)
        refused = [r for r in stack.server.requests_for("sendDocument") if r.status == 502]
        assert len(refused) == 1  # refused once, retried, arrived once
        first = _uploads(stack, mark)[0]
        assert "cat deliver-big.bin.0* &gt; deliver-big.bin" in first.params["caption"]
        assert str(stack.settings.download_dir) not in str(
            [r.params for r in stack.server.requests[mark:]])

        # /files of the finished pack: a Send button per file and Send all.
        listing = await stack.say(USER, f"/files {pack_id}")
        rows = listing.params["reply_markup"]["inline_keyboard"]
        datas = [b["callback_data"] for row in rows for b in row]
        assert datas == [f"sendfile:{pack_id}:{n}" for n in (1, 2, 3)] + [f"send:{pack_id}"]
        listing_id = _result_id(listing)

        # Bad presses: a file number out of range, a download that is not finished.
        before = stack.server.count("sendDocument")
        wrong = await stack.press(USER, listing_id, f"sendfile:{pack_id}:9")
        assert wrong.params.get("text") == (f"#{pack_id} has no file 9: its files go from 1 "
                                            "to 3.")
        missing = await stack.press(USER, listing_id, f"sendfile:{pack_id + 5}:1")
        assert missing.params.get("text", "").startswith(f"No download #{pack_id + 5} ")
        reply = await stack.say(USER, f"/torrent magnet:?xt=urn:btih:{'ab' * 20}"
                                      f"&tr={swarm.tracker.url}")
        unfinished = _download_id(reply.params["text"])
        early = await stack.press(USER, listing_id, f"send:{unfinished}")
        assert early.params.get("text") == f"#{unfinished} is not finished."
        assert stack.server.count("sendDocument") == before

        # One file by its button, stopped while its second part waits to be retried.
        mark = stack.server.mark()
        refusing = [True]
        stack.server.fail_next("sendDocument", status=500, times=50, when=lambda p: refusing[0]
                               and getattr(p.get("document"), "filename", "") == "part02.bin.002")
        await stack.press(USER, listing_id, f"sendfile:{pack_id}:2")
        await stack.server.wait_for("sendDocument", lambda r: r.status == 500, since=mark,
                                    timeout=LONG)
        stop = await stack.press(USER, listing_id, f"unsend:{pack_id}")
        assert stop.params.get("text") == "Stopping…"
        stopped = await _job_ended(stack, mark, "⏹ Stopped")
        assert "part 2/2" in stopped
        first_half = _uploads(stack, mark)
        assert [r.params["document"].filename for r in first_half] == ["part02.bin.001"]
        assert not stack.bot.application.bot_data["deliveries"].busy(USER, pack_id)
        refusing[0] = False

        # Send all: every file, the stopped one from its missing part, each equal to the
        # original once rejoined.
        mark = stack.server.mark()
        await stack.press(USER, listing_id, f"send:{pack_id}")
        await _job_ended(stack, mark, "✅ Sent")
        got = [r.params["document"] for r in _uploads(stack, mark)]
        assert [u.filename for u in got] == ["part01.bin", "part02.bin.002", "part03.bin"]
        files = sorted(p for p in pack.content_path.rglob("*") if p.is_file())
        assert _sha1(got[0].data) == _sha1(files[0].read_bytes())
        assert _sha1(first_half[0].params["document"].data + got[1].data) == _sha1(
            files[1].read_bytes())
        assert _sha1(got[2].data) == _sha1(files[2].read_bytes())

        # A file deleted from disk is not sent, and says so.
        (stack.settings.download_dir / "torrents" / str(USER) / "deliver-pack" / "sub"
         / "part03.bin").unlink()
        before = stack.server.count("sendDocument")
        gone = await stack.press(USER, listing_id, f"sendfile:{pack_id}:3")
        assert gone.params.get("text") == (f"File 3 of #{pack_id} is not on disk (not "
                                           "chosen, deleted or changed).")
        assert stack.server.count("sendDocument") == before


async def test_local_mode_gives_the_server_the_path(
        engine_settings: Callable[..., Settings], swarm: Swarm) -> None:
    seeded = swarm.add("deliver-local.bin", MIB - 10, seed=83)
    async with delivery_stack(engine_settings, local_mode=True) as stack:
        download_id, news = await _download(stack, seeded.magnet)
        mark = stack.server.mark()
        await stack.press(USER, _result_id(news), f"send:{download_id}")
        await _job_ended(stack, mark, "✅ Sent")
        sent = _uploads(stack, mark)
        assert len(sent) == 1
        uri = sent[0].params["document"]
        assert isinstance(uri, str) and uri.startswith("file://")
        assert Path(uri.removeprefix("file://")).name == "deliver-local.bin"
        stored = stack.server.file(sent[0].response["result"]["document"]["file_id"])
        assert stored.digest == _sha1(seeded.content_path.read_bytes())
        assert str(stack.settings.download_dir) not in str(
            [m.get("text", "") for m in stack.server.messages(USER)])


async def test_what_telegram_confirmed_is_never_sent_again_across_a_restart(
        engine_settings: Callable[..., Settings], swarm: Swarm,
        monkeypatch: Any) -> None:
    """A file that arrived and a part that arrived are not sent again by Send all, neither
    after a stop nor after the bot restarts (nothing of the old one's memory survives)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    pack = swarm.add("deliver-again", [MIB // 2, MIB + 5], seed=84)
    async with delivery_stack(engine_settings) as stack:
        pack_id, _ = await _download(stack, pack.magnet)
        listing_id = _result_id(await stack.say(USER, f"/files {pack_id}"))

        # File 1 arrives whole; file 2 stops after its first part.
        mark = stack.server.mark()
        await stack.press(USER, listing_id, f"sendfile:{pack_id}:1")
        await _job_ended(stack, mark, "✅ Sent")
        refusing = [True]
        stack.server.fail_next("sendDocument", status=500, times=50, when=lambda p: refusing[0]
                               and getattr(p.get("document"), "filename", "") == "part02.bin.002")
        await stack.press(USER, listing_id, f"sendfile:{pack_id}:2")
        await stack.server.wait_for("sendDocument", lambda r: r.status == 500, since=mark,
                                    timeout=LONG)
        await stack.press(USER, listing_id, f"unsend:{pack_id}")
        await _job_ended(stack, mark, "⏹ Stopped")
        before = _uploads(stack, mark)
        assert [r.params["document"].filename for r in before] == ["part01.bin",
                                                                   "part02.bin.001"]
        refusing[0] = False

        # The bot restarts: a new Application on the same manager and store.
        await stack.bot.stop()
        stack.bot = _bot(stack.settings, stack.manager)
        await stack.bot.start()

        mark = stack.server.mark()
        await stack.press(USER, listing_id, f"send:{pack_id}")
        await _job_ended(stack, mark, "✅ Sent")
        after = _uploads(stack, mark)
        assert [r.params["document"].filename for r in after] == ["part02.bin.002"]
        files = sorted(p for p in pack.content_path.rglob("*") if p.is_file())
        assert _sha1(before[1].params["document"].data + after[0].params["document"].data) == (
            _sha1(files[1].read_bytes()))

        # Everything arrived: another press sends nothing and says so.
        mark = stack.server.mark()
        await stack.press(USER, listing_id, f"send:{pack_id}")
        text = await _job_ended(stack, mark, "already sent here")
        assert "nothing is sent again" in text
        assert _uploads(stack, mark) == []


async def test_a_send_cut_short_by_a_stop_of_the_bot_says_so_in_its_status(
        engine_settings: Callable[..., Settings], swarm: Swarm,
        monkeypatch: Any) -> None:
    """ariabot (its bot, or a node's send desk) stops while a file goes out in parts: the
    send's status message says it stopped, and why, instead of "Sending" for ever with a
    Stop button that does nothing. Red before: the last status said "Sending"."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    cut = swarm.add("deliver-cut.bin", 2 * MIB + 5, seed=86)  # three parts of 1 MiB
    async with delivery_stack(engine_settings) as stack:
        number, news = await _download(stack, cut.magnet)
        stack.server.fail_next("sendDocument", status=500, times=50, when=lambda p: getattr(
            p.get("document"), "filename", "") == "deliver-cut.bin.002")
        mark = stack.server.mark()
        await stack.press(USER, _result_id(news), f"send:{number}")
        await stack.server.wait_for("sendDocument", lambda r: r.status == 500, since=mark,
                                    timeout=LONG)
        await stack.bot.stop()
        text = await _job_ended(stack, mark, "⏹ Stopped")
        assert "(the bot stopped)" in text and "part 2/3" in text, text
        assert [r.params["document"].filename for r in _uploads(stack, mark)] == [
            "deliver-cut.bin.001"]
        stack.bot = _bot(stack.settings, stack.manager)  # the stack stops a bot of its own


async def test_a_completion_whose_answer_was_lost_is_announced_again(
        stack: Stack, swarm: Swarm, caplog: Any) -> None:
    """At least once, as for a file's part: Telegram posted the completion message and its
    answer was lost; the notice is sent again (a duplicate, logged as such), then marked."""
    caplog.set_level(logging.INFO, logger="bot.news")
    stack.server.lose_answer_next("sendMessage", when=lambda p: "is downloaded" in str(
        p.get("text", "")))
    seeded = swarm.add("lost-answer.bin", MIB, seed=85)
    reply = await stack.say(USER, f"/torrent {seeded.magnet}")
    download_id = _download_id(reply.params["text"])

    def announced() -> list[Request]:
        return [r for r in stack.server.requests_for("sendMessage") if r.status == 200
                and f"is downloaded (#{download_id})" in str(r.params.get("text"))]

    await stack.server.wait_until(lambda: len(announced()) == 2 or None, timeout=LONG,
                                  what="the completion sent again")
    assert announced()[0] is stack.server.lost_answers[0]
    assert any("may be duplicated" in r.getMessage() for r in caplog.records)

    async def marked() -> bool:
        return not [n for n in await stack.manager.pending_notices()
                    if n.download_id == download_id]

    await until_async(marked, LONG, "the completion notice marked sent")
    assert len(announced()) == 2  # sent again once, not for ever
