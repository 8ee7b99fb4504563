"""Send jobs (bot.delivery) through the real python-telegram-bot Bot against the fake Bot API
server: parts streamed from disk, 413, retries without duplicates, stop and resume, local
mode by path, and how refusals are read."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from telegram import Bot, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.delivery import Deliveries, OutFile, Verdict, classify
from bot.partreader import PartReader
from bot.uploads import bot_request
from manager import Store
from tests.fakes.telegram_api import FakeTelegramServer, Request
from tests.partledger import StoreLedger

CHAT = 4242
LIMIT = 1024


def out_file(path: Path, index: int = 1) -> OutFile:
    stat = path.stat()
    return OutFile(index, path.name, path, stat.st_size, stat.st_mtime_ns)


@pytest.fixture(autouse=True)
def _timedelta_durations(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PTB's timedelta ``retry_after`` (what ariabot opts into), without deprecation warnings."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    yield


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[StoreLedger]:
    """The real store (each engine) keeps the confirmed parts."""
    store = Store(database_url)
    await store.open()
    yield StoreLedger(store)
    await store.close()


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(upload_limit=LIMIT, limits=None) as running:
        yield running


async def bot_on(server: FakeTelegramServer, *, local_mode: bool = False) -> Bot:
    bot = Bot(server.token, base_url=f"{server.url}/bot",
              base_file_url=f"{server.url}/file/bot", local_mode=local_mode)
    await bot.initialize()
    return bot


def successes(server: FakeTelegramServer) -> list[Request]:
    return [r for r in server.requests_for("sendDocument") if r.status == 200]


async def finished(server: FakeTelegramServer, deliveries: Deliveries, *,
                   what: str) -> str:
    """Wait until no job runs; the text of the chat's last status message."""
    await server.wait_until(lambda: not deliveries.busy(CHAT, 1) or None, timeout=10,
                            what="the send job to end")
    status = [m for m in server.messages(CHAT) if "document" not in m][-1]
    assert what in status["text"], status["text"]
    return str(status["text"])


async def test_a_big_file_goes_in_parts_that_rejoin_to_the_original(
        server: FakeTelegramServer, tmp_path: Path, ledger: StoreLedger) -> None:
    data = os.urandom(LIMIT * 2 + 500)
    (tmp_path / "film.mkv").write_bytes(data)
    bot = await bot_on(server)
    deliveries = Deliveries(bot, ledger, limit=LIMIT, edit_interval=0.05)
    try:
        assert deliveries.start(CHAT, 1, "film", [out_file(tmp_path / "film.mkv")], None)
        assert not deliveries.start(CHAT, 1, "film", [out_file(tmp_path / "film.mkv")], None)
        text = await finished(server, deliveries, what="Sent")
    finally:
        await deliveries.close()
        await bot.shutdown()
    sent = successes(server)
    uploads = [r.params["document"] for r in sent]
    assert [u.filename for u in uploads] == ["film.mkv.001", "film.mkv.002", "film.mkv.003"]
    assert all(u.size <= LIMIT for u in uploads)
    assert hashlib.sha1(b"".join(u.data for u in uploads)).digest() == hashlib.sha1(data).digest()
    assert "cat film.mkv.0* &gt; film.mkv" in sent[0].params["caption"]
    assert sent[1].params["caption"].startswith("<b>film.mkv · part 2/3")
    assert "in 3 uploads" in text
    assert str(tmp_path) not in str([r.params for r in server.requests])


async def test_a_part_bigger_than_the_server_takes_is_refused_clearly_not_retried(
        server: FakeTelegramServer, tmp_path: Path, ledger: StoreLedger) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(LIMIT * 3))
    bot = await bot_on(server)
    deliveries = Deliveries(bot, ledger, limit=LIMIT * 2, edit_interval=0.05, retry_delay=0.01)
    try:
        deliveries.start(CHAT, 1, "big", [out_file(tmp_path / "big.bin")], None)
        text = await finished(server, deliveries, what="Could not send")
    finally:
        await deliveries.close()
        await bot.shutdown()
    assert "413" in text and "too big" in text and "part 1/2" in text
    assert [r.status for r in server.requests_for("sendDocument")] == [413]


async def test_a_refused_part_is_retried_and_no_part_arrives_twice(
        server: FakeTelegramServer, tmp_path: Path, ledger: StoreLedger) -> None:
    data = os.urandom(LIMIT * 3)
    (tmp_path / "x.bin").write_bytes(data)
    server.fail_next("sendDocument", status=500,
                     when=lambda p: p["document"].filename == "x.bin.002")
    server.fail_next("sendDocument", status=429, retry_after=0,
                     when=lambda p: p["document"].filename == "x.bin.003")
    bot = await bot_on(server)
    deliveries = Deliveries(bot, ledger, limit=LIMIT, edit_interval=0.05, retry_delay=0.01)
    try:
        deliveries.start(CHAT, 1, "x", [out_file(tmp_path / "x.bin")], None)
        await finished(server, deliveries, what="Sent")
    finally:
        await deliveries.close()
        await bot.shutdown()
    names = [r.params["document"].filename for r in server.requests_for("sendDocument")]
    assert names == ["x.bin.001", "x.bin.002", "x.bin.002", "x.bin.003", "x.bin.003"]
    uploads = [r.params["document"] for r in successes(server)]
    assert [u.filename for u in uploads] == ["x.bin.001", "x.bin.002", "x.bin.003"]
    assert b"".join(u.data for u in uploads) == data


async def test_stop_aborts_the_wait_and_a_new_press_goes_on_from_the_first_missing_part(
        server: FakeTelegramServer, tmp_path: Path, ledger: StoreLedger) -> None:
    data = os.urandom(LIMIT * 3)
    (tmp_path / "x.bin").write_bytes(data)
    server.fail_next("sendDocument", status=502, times=1,
                     when=lambda p: p["document"].filename == "x.bin.002")
    bot = await bot_on(server)
    deliveries = Deliveries(bot, ledger, limit=LIMIT, edit_interval=0.05, retry_delay=60)
    try:
        deliveries.start(CHAT, 1, "x", [out_file(tmp_path / "x.bin")], None)
        await server.wait_until(
            lambda: any("trying again" in m.get("text", "") for m in server.messages(CHAT))
            or None, timeout=10, what="the retry note")
        assert deliveries.cancel(CHAT, 1)
        text = await finished(server, deliveries, what="Stopped")
        assert "part 2/3" in text
        assert not deliveries.cancel(CHAT, 1)
        assert [r.params["document"].filename for r in successes(server)] == ["x.bin.001"]

        deliveries.start(CHAT, 1, "x", [out_file(tmp_path / "x.bin")], None)
        await finished(server, deliveries, what="Sent")
    finally:
        await deliveries.close()
        await bot.shutdown()
    uploads = [r.params["document"] for r in successes(server)]
    assert [u.filename for u in uploads] == ["x.bin.001", "x.bin.002", "x.bin.003"]
    assert b"".join(u.data for u in uploads) == data


async def test_local_mode_passes_the_file_by_path_and_parts_only_above_the_limit(
        tmp_path: Path, ledger: StoreLedger) -> None:
    small, big = os.urandom(LIMIT), os.urandom(LIMIT * 2)
    (tmp_path / "small.bin").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)
    async with FakeTelegramServer(upload_limit=LIMIT, local_mode=True, limits=None) as server:
        bot = await bot_on(server, local_mode=True)
        deliveries = Deliveries(bot, ledger, limit=LIMIT, local_mode=True, edit_interval=0.05)
        try:
            deliveries.start(CHAT, 1, "two", [out_file(tmp_path / "small.bin"),
                                             out_file(tmp_path / "big.bin")], None)
            await finished(server, deliveries, what="Sent")
        finally:
            await deliveries.close()
            await bot.shutdown()
        sent = successes(server)
        by_path = sent[0].params["document"]
        assert by_path == (tmp_path / "small.bin").resolve().as_uri()
        stored = server.file(sent[0].response["result"]["document"]["file_id"])
        assert stored.digest == hashlib.sha1(small).hexdigest() and stored.data == b""
        assert [r.params["document"].filename for r in sent[1:]] == ["big.bin.001",
                                                                      "big.bin.002"]


async def test_a_file_changed_since_it_was_listed_is_not_sent(
        server: FakeTelegramServer, tmp_path: Path, ledger: StoreLedger) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"a" * 10)
    listed = out_file(path)
    path.write_bytes(b"b" * 11)
    bot = await bot_on(server)
    deliveries = Deliveries(bot, ledger, limit=LIMIT, edit_interval=0.05)
    try:
        deliveries.start(CHAT, 1, "x", [listed], None)
        text = await finished(server, deliveries, what="Could not send")
    finally:
        await deliveries.close()
        await bot.shutdown()
    assert "changed on disk" in text
    assert server.count("sendDocument") == 0


def _transport_error() -> NetworkError:
    try:
        raise NetworkError("httpx.ReadError: reset") from httpx.ReadError("reset")
    except NetworkError as error:
        return error


@pytest.mark.parametrize(("make", "body_sent", "verdict"), [
    (lambda: RetryAfter(timedelta(seconds=3)), False, Verdict.RETRY),
    (lambda: BadRequest("file is too big"), False, Verdict.FINAL),
    (lambda: Forbidden("bot was blocked by the user"), False, Verdict.FINAL),
    (lambda: NetworkError("Request Entity Too Large (413)"), True, Verdict.FINAL),
    (lambda: NetworkError("Internal Server Error"), True, Verdict.RETRY),
    (TimedOut, False, Verdict.RETRY),
    (TimedOut, True, Verdict.RETRY),  # at least once: may be duplicated
    (_transport_error, False, Verdict.RETRY),
    (_transport_error, True, Verdict.RETRY),
])
def test_refusals_are_read_once(make: Callable[[], NetworkError], body_sent: bool,
                                verdict: Verdict) -> None:
    error = make()
    got, reason, wait = classify(error, body_sent=body_sent)
    assert got is verdict and reason
    assert (wait == 3) == isinstance(error, RetryAfter)


async def test_memory_is_one_chunk_not_one_part(tmp_path: Path) -> None:
    """httpx reads the part in chunks: the reader never hands out more than 64 KiB at once."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024))
    reads: list[int] = []

    class Spy(PartReader):
        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            got = super().readinto(buffer)
            reads.append(got)
            return got

    async with FakeTelegramServer(upload_limit=4 * 1024 * 1024, keep_bytes=0,
                                  limits=None) as server:
        bot = await bot_on(server)
        try:
            reader = Spy(path, 1024 * 1024, 2 * 1024 * 1024)
            await bot.send_document(CHAT, InputFile(reader, filename="p.001",
                                                    read_file_handle=False))
            reader.close()
        finally:
            await bot.shutdown()
        upload = server.requests_for("sendDocument")[0].params["document"]
    data = path.read_bytes()[1024 * 1024:3 * 1024 * 1024]
    assert upload.size == len(data) and upload.sha1 == hashlib.sha1(data).hexdigest()
    assert max(reads) <= 64 * 1024 and sum(reads) == len(data)


async def test_a_part_whose_answer_was_lost_is_sent_again_and_logged_as_maybe_duplicated(
        server: FakeTelegramServer, tmp_path: Path, ledger: StoreLedger,
        caplog: pytest.LogCaptureFixture) -> None:
    """At least once: Telegram posted part 2, its answer was lost after the upload; the part
    goes again (a duplicate with the same name and bytes), the job ends Sent, not unsure."""
    caplog.set_level(logging.INFO, logger="bot.delivery")
    data = os.urandom(LIMIT * 3)
    (tmp_path / "x.bin").write_bytes(data)
    server.lose_answer_next("sendDocument",
                            when=lambda p: p["document"].filename == "x.bin.002")
    bot = await bot_on(server)
    deliveries = Deliveries(bot, ledger, limit=LIMIT, edit_interval=0.05, retry_delay=0.01)
    try:
        deliveries.start(CHAT, 1, "x", [out_file(tmp_path / "x.bin")], None)
        await finished(server, deliveries, what="Sent")
    finally:
        await deliveries.close()
        await bot.shutdown()
    assert [r.params["document"].filename for r in server.lost_answers] == ["x.bin.002"]
    posted = [r.params["document"].filename for r in successes(server)]
    assert posted == ["x.bin.001", "x.bin.002", "x.bin.002", "x.bin.003"]
    assert any("may be duplicated" in r.getMessage() for r in caplog.records)


async def test_a_file_deleted_between_parts_ends_the_job_and_says_why(
        server: FakeTelegramServer, tmp_path: Path, ledger: StoreLedger) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(os.urandom(LIMIT * 3))

    def delete_after_the_first_part(params: dict[str, object]) -> bool:
        if getattr(params["document"], "filename", "") == "x.bin.001":
            path.unlink()
        return False  # nothing is refused: the part arrives

    server.fail_next("sendDocument", when=delete_after_the_first_part)
    bot = await bot_on(server)
    deliveries = Deliveries(bot, ledger, limit=LIMIT, edit_interval=0.05, retry_delay=0.01)
    try:
        deliveries.start(CHAT, 1, "x", [out_file(path)], None)
        text = await finished(server, deliveries, what="Could not send")
    finally:
        await deliveries.close()
        await bot.shutdown()
    assert "part 2/3" in text and "no longer on disk" in text
    assert [r.params["document"].filename for r in successes(server)] == ["x.bin.001"]


async def test_the_bots_uploads_read_the_file_off_the_event_loop(
        server: FakeTelegramServer, tmp_path: Path, ledger: StoreLedger) -> None:
    """The Bot as the application builds it (bot_request): httpx's multipart encoder reads
    each part in a worker thread, never on the loop the bot and the link server share."""
    path = tmp_path / "x.bin"
    data = os.urandom(LIMIT * 2 + 100)
    path.write_bytes(data)
    loop_thread = threading.current_thread()
    readers: list[threading.Thread] = []

    class Spy(PartReader):
        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            readers.append(threading.current_thread())
            return super().readinto(buffer)

    bot = Bot(server.token, base_url=f"{server.url}/bot",
              base_file_url=f"{server.url}/file/bot", request=bot_request())
    await bot.initialize()
    try:
        for offset in (0, LIMIT, 2 * LIMIT):  # the parts of x.bin, as a send job cuts them
            length = min(LIMIT, len(data) - offset)
            reader = Spy(path, offset, length)
            await bot.send_document(CHAT, InputFile(reader, filename="x.part",
                                                    read_file_handle=False))
            reader.close()
    finally:
        await bot.shutdown()
    uploads = [r.params["document"] for r in successes(server)]
    assert b"".join(u.data for u in uploads) == data
    assert readers and loop_thread not in readers
