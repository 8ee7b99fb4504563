"""ProgressBoard rules with an injected clock and a fake sender, on the real manager's
outbox and store (a temporary SQLite): the news comes from the stored notices, written with
the change that causes them, as in production. No real sleeps: the clock is injected, and
the store's thread is waited on by condition (:func:`quiet`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from telegram import InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)

from bot.progress import ProgressBoard
from bot.views import progress_keyboard, progress_text
from manager import (
    Aria2Endpoint,
    Aria2Rpc,
    ManagerConfig,
    Mirror,
    MirrorChanged,
    MirrorDone,
    MirrorFailed,
    MirrorState,
    SourceKind,
    Torrent,
    TorrentAdded,
    TorrentCancelled,
    TorrentCompleted,
    TorrentEvent,
    TorrentFailed,
    TorrentPaused,
    TorrentProgress,
    TorrentState,
    TorrentStateChanged,
)
from manager.config import MirrorConfig
from manager.core import TorrentManager
from manager.notices import Notice, NoticeKind
from manager.store import Store
from tests.integration.test_store_faults import locked

MIB = 1024 * 1024
CHAT = 42
MESSAGE = 100
INTERVAL = 10.0


@pytest.fixture(autouse=True)
def _timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # What build_application sets: without it PTB warns inside RetryAfter.__init__.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


class FakeClock:
    """Monotonic time that moves only when the test says so; ``sleep`` waits on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in order."""
        target = self.now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, deadline)
            if not future.done():
                future.set_result(None)
            await settle()
        self.now = target
        await settle()


async def settle() -> None:
    """Let every ready task run until nothing moves (a few loop turns)."""
    for _ in range(30):
        await asyncio.sleep(0)


@dataclasses.dataclass
class Call:
    kind: str
    at: float
    chat_id: int
    text: str
    markup: InlineKeyboardMarkup | None
    message_id: int | None = None
    reply_to: int | None = None


class FakeSender:
    """Records calls; ``fail_edit``/``fail_send`` queue exceptions for the next calls."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[Call] = []
        self.edit_failures: list[Exception] = []
        self.send_failures: list[Exception] = []
        self.next_id = 500

    async def send(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
                   reply_to: int | None = None) -> int:
        self.calls.append(Call("send", self.clock.now, chat_id, text, markup, None, reply_to))
        if self.send_failures:
            raise self.send_failures.pop(0)
        self.next_id += 1
        return self.next_id

    async def edit(self, chat_id: int, message_id: int, text: str,
                   markup: InlineKeyboardMarkup | None) -> None:
        self.calls.append(Call("edit", self.clock.now, chat_id, text, markup, message_id))
        if self.edit_failures:
            raise self.edit_failures.pop(0)

    @property
    def edits(self) -> list[Call]:
        return [c for c in self.calls if c.kind == "edit"]

    @property
    def sends(self) -> list[Call]:
        return [c for c in self.calls if c.kind == "send"]


class Downloads:
    """The real manager's outbox and rows, on a temporary SQLite (the manager is never
    started: no aria2c is asked). A change is written the way the manager writes it (the
    columns, and the notices they call for, in one transaction), then the event is told
    with the snapshot read back, so the news comes from what is stored, as in production.
    """

    def __init__(self, manager: TorrentManager, root: Path) -> None:
        self.manager = manager
        self.store = manager.store
        self.root = root

    def folder(self, chat_id: int) -> Path:
        return self.root / "torrents" / str(chat_id)

    async def add(self, torrent: Torrent) -> Torrent:
        """Store a row for ``torrent`` in its state (ids are given in order: 1, 2, …); its
        snapshot."""
        record = await self.store.downloads.create(
            info_hash=f"{torrent.id:040x}", chat_id=torrent.chat_id, user_id=torrent.user_id,
            name=torrent.name, source_kind="torrent", source=b"d4:infoe",
            directory=str(self.folder(torrent.chat_id)), state=torrent.state.value)
        assert record.id == torrent.id, "add the downloads in the order of their ids"
        return await self.write(torrent.id, message_id=torrent.message_id,
                                total_bytes=torrent.total_bytes,
                                completed_bytes=torrent.completed_bytes)

    async def write(self, download_id: int, **columns: Any) -> Torrent:
        """Write columns as the manager does; the snapshot read back."""
        await self.store.downloads.update(download_id, **columns)
        return await self.manager.get(download_id)

    async def tell(self, board: ProgressBoard, event: type[TorrentEvent], download_id: int,
                   **columns: Any) -> Torrent:
        """Write a change, then tell the board its event (the manager's order)."""
        torrent = await self.write(download_id, **columns)
        board(event(torrent))
        return torrent

    async def took(self, download_id: int, seconds: float) -> datetime:
        """A ``completed_at`` that many seconds after the row's creation."""
        record = await self.store.downloads.get(download_id)
        assert record is not None
        return record.created_at + timedelta(seconds=seconds)

    async def pending(self) -> list[Notice]:
        return await self.store.notices.pending()

    async def marked(self) -> list[tuple[NoticeKind, str | None]]:
        """The notices marked sent (None) or given up (why), oldest first."""
        def query() -> list[tuple[NoticeKind, str | None]]:
            notice = self.store.database.tables.notice
            rows = (notice.select(notice.kind, notice.dropped)
                    .where(notice.sent_at.is_null(False)).order_by(notice.id).tuples())
            return [(NoticeKind(kind), dropped) for kind, dropped in rows]

        return await self.store.database.run(query)


async def quiet(board: ProgressBoard, downloads: Downloads, sender: FakeSender) -> None:
    """Wait until the board and its news have done all they can without the clock moving:
    the store's thread and the worker threads (the "Send file" check) are waited on, and
    nothing (requests, notices, sleepers) changes over three rounds in a row. Then "nothing
    else was sent" means something."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    seen: tuple[Any, ...] | None = None
    steady = 0
    while steady < 3:
        assert loop.time() < deadline, "the board never went quiet"
        await settle()
        await downloads.store.database.run(lambda: None)  # what was queued on the store is done
        await asyncio.to_thread(lambda: None)
        await settle()
        state = (len(sender.calls), len(await downloads.pending()),
                 len(await downloads.marked()), len(board._news._sending),
                 len(board._news._due))
        steady = steady + 1 if state == seen else 0
        seen = state


def snapshot(done_percent: float = 0, **changes: Any) -> Torrent:
    total = 100 * MIB
    base = Torrent(
        id=1, info_hash="cd" * 20, name="file.bin", chat_id=CHAT, user_id=CHAT,
        state=TorrentState.DOWNLOADING, source_kind=SourceKind.TORRENT, total_bytes=total,
        completed_bytes=int(total * done_percent / 100), download_speed=MIB, seeders=1,
        peers=1, message_id=MESSAGE, created_at=datetime(2024, 1, 1, 0, 0, 0),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sender(clock: FakeClock) -> FakeSender:
    return FakeSender(clock)


class NoUploads:
    """Mirroring is configured (so snapshots carry their stored mirror), but the manager is
    never started: nothing is ever uploaded."""

    async def copy(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("no upload in these tests")

    verify = link = copy


@pytest.fixture
async def downloads(tmp_path: Path) -> AsyncIterator[Downloads]:
    store = Store(f"sqlite:///{tmp_path / 'ariabot.db'}")
    await store.open()
    rpc = Aria2Rpc(Aria2Endpoint(1, "never-called"))
    manager = TorrentManager(rpc, store, ManagerConfig(
        download_dir=tmp_path, mirror=MirrorConfig(remote="gdrive:ariabot")),
        uploader=NoUploads())
    yield Downloads(manager, tmp_path)
    await manager.close()
    await rpc.close()
    await store.close()


def new_board(sender: FakeSender, downloads: Downloads, clock: FakeClock,
              **options: Any) -> ProgressBoard:
    """A board on the real outbox, started as the bot starts it."""
    created = ProgressBoard(sender, downloads.manager, clock=clock, sleep=clock.sleep,
                            **options)
    created.start()
    return created


@pytest.fixture
async def board(clock: FakeClock, sender: FakeSender,
                downloads: Downloads) -> AsyncIterator[ProgressBoard]:
    created = new_board(sender, downloads, clock, edit_interval=INTERVAL, admin_chat=-999,
                        retry_delay=3.0)
    yield created
    await created.close(flush_timeout=0)


async def assert_done_with(board: ProgressBoard, sender: FakeSender, clock: FakeClock,
                           downloads: Downloads) -> None:
    """The board let go: it holds no message, no worker waits on the clock, no notice is left
    to send, and much later nothing is sent."""
    await quiet(board, downloads, sender)
    calls = len(sender.calls)
    assert board._slots == {}
    assert clock._sleepers == []
    assert await downloads.pending() == []
    await clock.advance(INTERVAL * 10)
    await quiet(board, downloads, sender)
    assert len(sender.calls) == calls and clock._sleepers == []


def attach(board: ProgressBoard, torrent: Torrent) -> None:
    """What the add handler does after its reply was sent."""
    board.attach(torrent, MESSAGE, text=progress_text(torrent),
                 markup=progress_keyboard(torrent))


# --- the 5-point rule and the interval -----------------------------------------------------------

async def test_small_progress_is_not_edited(board: ProgressBoard, sender: FakeSender,
                                            clock: FakeClock) -> None:
    attach(board, snapshot(0))
    for step in range(1, 5):
        board(TorrentProgress(snapshot(step)))
        await clock.advance(INTERVAL)
    assert sender.edits == []


async def test_five_points_is_edited_after_the_interval(board: ProgressBoard,
                                                        sender: FakeSender,
                                                        clock: FakeClock) -> None:
    attach(board, snapshot(0))
    start = clock.now
    board(TorrentProgress(snapshot(5)))
    await clock.advance(INTERVAL - 1)
    assert sender.edits == []
    await clock.advance(1)
    assert len(sender.edits) == 1
    assert sender.edits[0].at == start + INTERVAL
    assert "5%" in sender.edits[0].text


async def test_edits_at_most_once_per_interval_with_the_newest_text(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    attach(board, snapshot(0))
    await clock.advance(INTERVAL)  # the reply is old enough: the next change edits at once
    for value in (10, 20, 30, 40):
        board(TorrentProgress(snapshot(value)))
        await clock.advance(1)
    assert [("10%" in c.text) for c in sender.edits] == [True]
    await clock.advance(INTERVAL)
    assert len(sender.edits) == 2
    assert "40%" in sender.edits[1].text  # 20 and 30 were never shown: coalesced
    assert sender.edits[1].at - sender.edits[0].at >= INTERVAL


async def test_state_change_edits_at_once_when_the_interval_allows(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    attach(board, snapshot(50))
    await clock.advance(INTERVAL + 5)
    board(TorrentPaused(snapshot(51, state=TorrentState.PAUSED, download_speed=0)))
    await settle()
    assert len(sender.edits) == 1
    assert "Paused" in sender.edits[0].text
    assert sender.edits[0].markup is not None
    assert sender.edits[0].markup.inline_keyboard[0][0].callback_data == "resume:1"


async def test_state_change_waits_for_the_interval(board: ProgressBoard, sender: FakeSender,
                                                   clock: FakeClock) -> None:
    attach(board, snapshot(50))
    await clock.advance(2)
    board(TorrentStateChanged(snapshot(50, stuck_reason="no peers for 2 min")))
    await clock.advance(1)
    assert sender.edits == []
    await clock.advance(INTERVAL)
    assert len(sender.edits) == 1
    assert "no peers" in sender.edits[0].text


async def test_identical_text_is_never_sent(board: ProgressBoard, sender: FakeSender,
                                            clock: FakeClock) -> None:
    attach(board, snapshot(20))
    await clock.advance(INTERVAL)
    board.show_now(snapshot(20), MESSAGE)  # Refresh with nothing new
    await settle()
    assert sender.edits == []
    board(TorrentProgress(snapshot(30)))
    await settle()
    board(TorrentProgress(snapshot(30)))
    await clock.advance(INTERVAL * 3)
    assert len(sender.edits) == 1


# --- Telegram's answers --------------------------------------------------------------------------

async def test_not_modified_counts_as_success(board: ProgressBoard, sender: FakeSender,
                                              clock: FakeClock) -> None:
    sender.edit_failures.append(BadRequest(
        "Message is not modified: specified new message content and reply markup are exactly"
        " the same as a content and reply markup of the current content and reply markup of"
        " the message"))
    attach(board, snapshot(0))
    await clock.advance(INTERVAL)
    board(TorrentProgress(snapshot(10)))
    await clock.advance(INTERVAL * 3)
    assert len(sender.edits) == 1  # not retried
    assert board.stats.not_modified == 1
    board(TorrentProgress(snapshot(12)))
    await clock.advance(INTERVAL * 3)
    assert len(sender.edits) == 1  # 10% counts as shown: 12% is not 5 points further


async def test_retry_after_waits_then_sends_only_the_newest(board: ProgressBoard,
                                                            sender: FakeSender,
                                                            clock: FakeClock) -> None:
    sender.edit_failures.append(RetryAfter(30))
    attach(board, snapshot(0))
    await clock.advance(INTERVAL)
    board(TorrentProgress(snapshot(10)))
    await settle()
    assert len(sender.edits) == 1
    failed_at = clock.now
    board(TorrentProgress(snapshot(20)))
    board(TorrentProgress(snapshot(30)))
    await clock.advance(29)
    assert len(sender.edits) == 1  # Telegram said 30 s
    await clock.advance(1)
    assert len(sender.edits) == 2
    assert sender.edits[1].at == failed_at + 30
    assert "30%" in sender.edits[1].text
    assert board.stats.rate_limited == 1


async def test_network_errors_are_retried_with_the_newest_state(board: ProgressBoard,
                                                                sender: FakeSender,
                                                                clock: FakeClock) -> None:
    sender.edit_failures += [NetworkError("Bad Gateway"), TimedOut()]
    attach(board, snapshot(0))
    await clock.advance(INTERVAL)
    board(TorrentProgress(snapshot(10)))
    await settle()
    board(TorrentProgress(snapshot(60)))
    await clock.advance(3)
    await clock.advance(3)
    texts = [c.text for c in sender.edits]
    assert len(texts) == 3
    assert "10%" in texts[0] and "60%" in texts[1] and "60%" in texts[2]
    assert board.stats.edits == 1 and board.stats.network_errors == 2


async def test_a_deleted_message_is_given_up(board: ProgressBoard, sender: FakeSender,
                                             clock: FakeClock) -> None:
    sender.edit_failures.append(BadRequest("Message to edit not found"))
    attach(board, snapshot(0))
    await clock.advance(INTERVAL)
    board(TorrentProgress(snapshot(10)))
    await settle()
    for value in (40, 80):
        board(TorrentProgress(snapshot(value)))
        await clock.advance(INTERVAL)
    assert len(sender.edits) == 1


async def test_a_blocked_bot_stops_editing(board: ProgressBoard, sender: FakeSender,
                                           clock: FakeClock) -> None:
    sender.edit_failures.append(Forbidden("Forbidden: bot was blocked by the user"))
    attach(board, snapshot(0))
    await clock.advance(INTERVAL)
    board(TorrentProgress(snapshot(10)))
    board(TorrentProgress(snapshot(50)))
    await clock.advance(INTERVAL * 3)
    assert len(sender.edits) == 1


# --- buttons -------------------------------------------------------------------------------------

async def test_button_press_edits_at_once_and_restarts_the_interval(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    attach(board, snapshot(0))
    await clock.advance(1)
    board(TorrentProgress(snapshot(7)))  # waits for the interval
    await clock.advance(1)
    board.show_now(snapshot(8, state=TorrentState.PAUSED, download_speed=0), MESSAGE)
    await settle()
    assert len(sender.edits) == 1 and "Paused" in sender.edits[0].text
    pressed_at = clock.now
    board(TorrentProgress(snapshot(20, state=TorrentState.PAUSED, download_speed=0)))
    await clock.advance(INTERVAL - 1)
    assert len(sender.edits) == 1
    await clock.advance(1)
    assert len(sender.edits) == 2
    assert sender.edits[1].at == pressed_at + INTERVAL


async def test_cancel_confirmation_and_back(board: ProgressBoard, sender: FakeSender,
                                            clock: FakeClock) -> None:
    attach(board, snapshot(30))
    board.show_now(snapshot(30), MESSAGE, confirm=True)
    await settle()
    assert "Cancel this download?" in sender.edits[-1].text
    keyboard = sender.edits[-1].markup
    assert keyboard is not None and keyboard.inline_keyboard[1][0].callback_data == "back:1"
    # Progress while the question is shown keeps the question.
    board(TorrentProgress(snapshot(60)))
    await clock.advance(INTERVAL)
    assert "60%" in sender.edits[-1].text and "Cancel this download?" in sender.edits[-1].text
    board.show_now(snapshot(60), MESSAGE, confirm=False)
    await settle()
    assert "Cancel this download?" not in sender.edits[-1].text
    assert len(sender.edits) == 3


# --- news ----------------------------------------------------------------------------------------

async def test_completion_edits_and_sends_a_new_message(board: ProgressBoard,
                                                        sender: FakeSender, clock: FakeClock,
                                                        downloads: Downloads) -> None:
    folder = downloads.folder(CHAT)
    folder.mkdir(parents=True)
    (folder / "file.bin").write_bytes(b"x" * 1000)
    attach(board, await downloads.add(snapshot(40)))
    await clock.advance(2)
    await downloads.tell(board, TorrentCompleted, 1, state="complete", download_speed=0,
                         completed_bytes=100 * MIB, completed_at=await downloads.took(1, 187))
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 1
    news = sender.sends[0]
    assert news.chat_id == CHAT and news.reply_to == MESSAGE
    assert "is downloaded" in news.text and "took 3m 07s" in news.text
    assert "<code>file.bin</code>" in news.text and str(downloads.root) not in news.text
    assert news.markup is not None
    assert news.markup.inline_keyboard[0][0].callback_data == "send:1"
    assert sender.edits == []  # the final edit still respects the interval
    await clock.advance(INTERVAL)
    await quiet(board, downloads, sender)
    assert len(sender.edits) == 1 and "Complete" in sender.edits[0].text
    assert sender.edits[0].markup is None
    assert await downloads.marked() == [(NoticeKind.COMPLETED, None), (NoticeKind.FINAL, None)]
    await assert_done_with(board, sender, clock, downloads)


async def test_send_button_for_any_size_but_not_for_missing_files(
    board: ProgressBoard, sender: FakeSender, downloads: Downloads, tmp_path: Path,
) -> None:
    folder = downloads.folder(CHAT)
    folder.mkdir(parents=True)
    with (folder / "big.bin").open("wb") as big_file:
        big_file.truncate(60 * MIB)  # sparse: above Telegram's 50 MB, it goes in parts
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    (folder / "link.bin").symlink_to(outside)
    (folder / "pack").mkdir()
    for number, name in enumerate(["big.bin", "none.bin", "link.bin", "pack"], 1):
        await downloads.add(snapshot(100, id=number, name=name, message_id=None))
        await downloads.tell(board, TorrentCompleted, number, state="complete",
                             completed_at=await downloads.took(number, 1))
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 4
    by_id = {int(call.text.split("(#")[1].split(")")[0]): call for call in sender.sends}
    big = by_id[1].markup  # bigger than one upload: it goes in parts
    assert big is not None and big.inline_keyboard[0][0].callback_data == "send:1"
    assert all(by_id[n].markup is None for n in (2, 3, 4))


async def test_failure_gets_a_new_message_with_the_reason(board: ProgressBoard,
                                                          sender: FakeSender,
                                                          clock: FakeClock,
                                                          downloads: Downloads) -> None:
    attach(board, await downloads.add(snapshot(10)))
    await clock.advance(INTERVAL)
    await downloads.tell(board, TorrentFailed, 1, state="error",
                         error="no <peers> for 15 min")
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 1
    assert "no &lt;peers&gt; for 15 min" in sender.sends[0].text
    assert len(sender.edits) == 1 and "❌" in sender.edits[0].text


async def test_notification_survives_429_and_network_errors(board: ProgressBoard,
                                                            sender: FakeSender,
                                                            clock: FakeClock,
                                                            downloads: Downloads) -> None:
    sender.send_failures += [RetryAfter(7), NetworkError("Internal Server Error")]
    await downloads.add(snapshot(10, message_id=None))
    await downloads.tell(board, TorrentFailed, 1, state="error", error="boom")
    await quiet(board, downloads, sender)
    await clock.advance(7)  # Telegram's retry_after
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 2
    await clock.advance(3)  # retry_delay, doubled per failed attempt
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 3
    assert board.stats.notifications == 1
    assert await downloads.marked() == [(NoticeKind.FAILED, None)]


async def test_events_before_the_reply_are_kept_for_it(board: ProgressBoard,
                                                       sender: FakeSender, clock: FakeClock,
                                                       downloads: Downloads) -> None:
    # add() emits TorrentAdded before the reply exists; a fast download may even finish.
    added = await downloads.add(snapshot(0, message_id=None))
    board(TorrentAdded(added))
    await downloads.tell(board, TorrentCompleted, 1, state="complete",
                         completed_bytes=100 * MIB, completed_at=await downloads.took(1, 9))
    await quiet(board, downloads, sender)
    assert sender.edits == []
    attach(board, added)  # the reply showed 0 %
    await clock.advance(INTERVAL)
    assert len(sender.edits) == 1 and "Complete" in sender.edits[0].text


async def test_cancel_edits_to_the_final_state_without_buttons(board: ProgressBoard,
                                                               sender: FakeSender,
                                                               clock: FakeClock,
                                                               downloads: Downloads) -> None:
    attach(board, await downloads.add(snapshot(10)))
    cancelled = await downloads.tell(board, TorrentCancelled, 1, state="cancelled",
                                     download_speed=0)
    board.show_now(cancelled, MESSAGE, confirm=False)
    await quiet(board, downloads, sender)
    assert len(sender.edits) == 1
    assert sender.edits[0].markup is None and "Cancelled" in sender.edits[0].text
    assert sender.sends == []
    assert await downloads.marked() == [(NoticeKind.FINAL, None)]  # shown: no second edit
    await assert_done_with(board, sender, clock, downloads)


async def test_engine_events_go_to_the_admin_chat(board: ProgressBoard, sender: FakeSender,
                                                  downloads: Downloads) -> None:
    manager = downloads.manager
    manager.subscribe(board)
    manager.aria2_down("hung")
    manager.aria2_fatal("crashed 6 times")
    await quiet(board, downloads, sender)
    assert sorted((c.chat_id, c.text) for c in sender.sends) == [
        (-999, "<b>⚠️ aria2c stopped; the supervisor is restarting it</b>\nhung"),
        (-999, "<b>🛑 aria2c cannot be kept running; ariabot is exiting</b>\ncrashed 6 times")]


async def test_local_downloads_and_closed_board_are_ignored(board: ProgressBoard,
                                                            sender: FakeSender,
                                                            clock: FakeClock,
                                                            downloads: Downloads) -> None:
    await downloads.add(snapshot(10, chat_id=0, message_id=7))
    await downloads.tell(board, TorrentCompleted, 1, state="complete",
                         completed_at=await downloads.took(1, 1))
    await quiet(board, downloads, sender)
    assert sender.calls == [] and await downloads.pending() == []
    await assert_done_with(board, sender, clock, downloads)
    await downloads.add(snapshot(1, id=2))
    await board.close(flush_timeout=0)
    await downloads.tell(board, TorrentFailed, 2, state="error", error="x")
    await quiet(board, downloads, sender)
    assert sender.calls == []
    assert [n.kind for n in await downloads.pending()] == [NoticeKind.FAILED, NoticeKind.FINAL]


async def test_close_flushes_pending_notifications(clock: FakeClock, sender: FakeSender,
                                                   downloads: Downloads) -> None:
    board = new_board(sender, downloads, clock, admin_chat=1)
    await quiet(board, downloads, sender)
    await downloads.store.notices.add(NoticeKind.ARIA2_FATAL, "gave up")  # stored, not sent
    attach(board, snapshot(0))
    board(TorrentProgress(snapshot(50)))  # waiting for the interval: cancelled by close
    await board.close(flush_timeout=1)
    assert len(sender.sends) == 1 and sender.edits == []
    assert await downloads.marked() == [(NoticeKind.ARIA2_FATAL, None)]


# --- one chat, many downloads: about one edit per second per chat ------------------------------

async def test_many_downloads_in_one_chat_share_one_edit_per_second(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    downloads = range(1, 21)
    for download_id in downloads:
        board.attach(snapshot(0, id=download_id, message_id=MESSAGE + download_id),
                     MESSAGE + download_id, text="added", markup=None)
    await clock.advance(INTERVAL)
    for download_id in downloads:
        board(TorrentProgress(snapshot(50, id=download_id, message_id=MESSAGE + download_id)))
    for _ in range(40):
        await clock.advance(0.5)
    edits = sender.edits
    assert {call.message_id for call in edits} == {MESSAGE + i for i in downloads}
    times = sorted(call.at for call in edits)
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(times))


async def test_other_chats_are_not_held_up_by_a_busy_chat(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    for download_id, chat in ((1, CHAT), (2, CHAT), (3, CHAT + 1)):
        board.attach(snapshot(0, id=download_id, chat_id=chat), MESSAGE + download_id,
                     text="added", markup=None)
    await clock.advance(INTERVAL)
    start = clock.now
    for download_id, chat in ((1, CHAT), (2, CHAT), (3, CHAT + 1)):
        board(TorrentProgress(snapshot(50, id=download_id, chat_id=chat)))
    await clock.advance(0)
    assert sorted(c.chat_id for c in sender.edits if c.at == start) == [CHAT, CHAT + 1]
    await clock.advance(1)
    assert len(sender.edits) == 3


# --- a mirror's upload on the same message -------------------------------------------------------

def mirrored(state: MirrorState, uploaded: float = 0, **changes: Any) -> Torrent:
    """A complete download whose upload is ``uploaded`` percent along."""
    total = 100 * MIB
    values: dict[str, Any] = {"speed": MIB, "eta_seconds": 60, "attempt": 1, "attempts": 4,
                              **changes}
    mirror = Mirror(state=state, destination="gdrive:ariabot/file.bin",
                    bytes=int(total * uploaded / 100), total_bytes=total, **values)
    return snapshot(100, state=TorrentState.COMPLETE, mirror=mirror)


async def start_mirror(downloads: Downloads, download_id: int = 1) -> None:
    await downloads.store.mirrors.start(download_id, chat_id=CHAT, user_id=CHAT,
                                        remote="gdrive:ariabot", move=False, state="uploading")


async def test_upload_progress_edits_by_five_points_and_the_outcome_is_news(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock, downloads: Downloads,
) -> None:
    await downloads.add(snapshot(100))
    await downloads.tell(board, TorrentCompleted, 1, state="complete",
                         completed_at=await downloads.took(1, 60))
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 1
    await clock.advance(INTERVAL)
    await start_mirror(downloads)
    board(MirrorChanged(mirrored(MirrorState.UPLOADING, 0)))
    await clock.advance(INTERVAL)
    first = len(sender.edits)
    assert first >= 1 and "Uploading to <code>gdrive:ariabot/file.bin</code>" in (
        sender.edits[-1].text)
    board(MirrorChanged(mirrored(MirrorState.UPLOADING, 3)))  # under 5 points: no edit
    await clock.advance(INTERVAL)
    assert len(sender.edits) == first
    board(MirrorChanged(mirrored(MirrorState.UPLOADING, 40)))
    await clock.advance(INTERVAL)
    assert len(sender.edits) == first + 1
    assert "40.0 MiB of 100.0 MiB" in sender.edits[-1].text
    assert "↑ 1.0 MiB/s · ETA 1m 00s" in sender.edits[-1].text
    markup = sender.edits[-1].markup
    assert markup is not None
    assert markup.inline_keyboard[0][0].callback_data == "mirror:1:stop"
    await downloads.store.mirrors.update(1, state="done", link="https://example.org/s/abc",
                                         bytes=100 * MIB, total_bytes=100 * MIB)
    board(MirrorDone(mirrored(MirrorState.DONE, 100, link="https://example.org/s/abc")))
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 2
    news = sender.sends[-1]
    assert news.reply_to == MESSAGE and "is uploaded (#1) to" in news.text
    assert "Link: https://example.org/s/abc" in news.text
    await clock.advance(INTERVAL)
    await quiet(board, downloads, sender)
    assert "☁️ Uploaded to" in sender.edits[-1].text and sender.edits[-1].markup is None
    await assert_done_with(board, sender, clock, downloads)


async def test_a_retry_edits_at_once_and_a_failure_is_one_message(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock, downloads: Downloads,
) -> None:
    await downloads.add(snapshot(100, state=TorrentState.COMPLETE))
    await start_mirror(downloads)
    board(MirrorChanged(mirrored(MirrorState.UPLOADING, 10)))
    await clock.advance(INTERVAL)
    board(MirrorChanged(mirrored(MirrorState.RETRYING, 10, attempt=2, retry_in=4.0,
                                 error="the remote refused the connection (is it up?)")))
    await clock.advance(INTERVAL)
    assert "Trying again in 4s: the remote refused the connection" in sender.edits[-1].text
    assert "attempt 2 of 4" in sender.edits[-1].text
    await downloads.store.mirrors.update(1, state="failed", attempt=4, error="gone")
    board(MirrorFailed(mirrored(MirrorState.FAILED, 10, attempt=4, error="gone")))
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 1
    assert sender.sends[0].text.endswith(
        "after 4 attempts: gone\nThe files on this server are kept. Try again with /mirror 1.")
    await clock.advance(INTERVAL)
    await assert_done_with(board, sender, clock, downloads)


# --- the outbox: notices are marked only once Telegram has them ----------------------------------

async def test_a_notice_stays_pending_through_errors_and_is_marked_once_sent(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock, downloads: Downloads,
) -> None:
    sender.send_failures += [NetworkError("Bad Gateway"), TimedOut(), NetworkError("Bad Gateway")]
    await downloads.add(snapshot(10, message_id=None))
    await downloads.tell(board, TorrentFailed, 1, state="error", error="x")
    await quiet(board, downloads, sender)
    [pending] = await downloads.pending()
    assert len(sender.sends) == 1 and pending.tries == 1
    for step in (3, 6):  # retry_delay, then doubling: 3, 6, 12
        await clock.advance(step)
        await quiet(board, downloads, sender)
    assert len(sender.sends) == 3 and await downloads.pending()
    await clock.advance(11.9)
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 3
    await clock.advance(0.1)
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 4
    assert await downloads.pending() == []
    assert await downloads.marked() == [(NoticeKind.FAILED, None)]
    await clock.advance(INTERVAL * 10)
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 4


async def test_notices_nobody_can_receive_are_dropped_with_the_reason(
    board: ProgressBoard, sender: FakeSender, downloads: Downloads,
) -> None:
    sender.send_failures += [Forbidden("Forbidden: bot was blocked by the user"),
                             BadRequest("Chat not found"), BadRequest("Message is too long")]
    # A notice whose download was deleted (purged) after the notice was read.
    await downloads.store.database.run(lambda: downloads.store.database.db.execute_sql(
        'INSERT INTO "notices" ("kind", "download_id", "chat_id", "detail", "created_at", '
        '"tries") VALUES (?, 77, ?, \'\', ?, 0)', ("completed", CHAT, datetime(2024, 1, 1))))
    for number in (1, 2, 3):
        await downloads.add(snapshot(10, id=number, message_id=None))
    for number in (1, 2, 3):
        await downloads.tell(board, TorrentFailed, number, state="error", error="x")
    await quiet(board, downloads, sender)
    reasons = sorted(str(dropped) for _, dropped in await downloads.marked())
    assert await downloads.pending() == []
    assert reasons == [
        "Telegram refused it: Chat not found", "Telegram refused it: Message is too long",
        "cannot write to chat 42: Forbidden: bot was blocked by the user",
        "the download was deleted"]
    assert board.stats.dropped == 4 and len(sender.sends) == 3


async def test_a_final_edit_left_from_before_a_restart_is_done_once(
    clock: FakeClock, sender: FakeSender, downloads: Downloads,
) -> None:
    await downloads.add(snapshot(40))
    await downloads.write(1, state="cancelled")  # stored with its final edit; nobody told
    board = new_board(sender, downloads, clock, edit_interval=INTERVAL)  # a new process
    await quiet(board, downloads, sender)
    assert len(sender.edits) == 1 and "Cancelled" in sender.edits[0].text
    assert sender.edits[0].message_id == MESSAGE
    assert await downloads.marked() == [(NoticeKind.FINAL, None)]
    # The same final state written again (no event at all): on screen already, no request.
    await downloads.write(1, state="cancelled")
    await quiet(board, downloads, sender)
    assert len(sender.edits) == 1 and await downloads.pending() == []
    assert await downloads.marked() == [(NoticeKind.FINAL, None)] * 2
    await board.close(flush_timeout=0)


async def test_a_notice_stored_without_any_event_is_sent_at_once(
    board: ProgressBoard, sender: FakeSender, downloads: Downloads,
) -> None:
    await downloads.add(snapshot(10, message_id=None))
    await quiet(board, downloads, sender)
    await downloads.write(1, state="error", error="not taken back")  # as reconcile does
    await quiet(board, downloads, sender)
    assert [call.text.split(": ", 1)[1] for call in sender.sends] == ["not taken back"]
    assert await downloads.marked() == [(NoticeKind.FAILED, None)]


async def test_a_final_edit_of_a_deleted_message_is_dropped(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock, downloads: Downloads,
) -> None:
    sender.edit_failures.append(BadRequest("Message to edit not found"))
    await downloads.add(snapshot(40))
    await downloads.tell(board, TorrentCancelled, 1, state="cancelled")
    await quiet(board, downloads, sender)
    await clock.advance(INTERVAL)
    await quiet(board, downloads, sender)
    assert await downloads.marked() == [(NoticeKind.FINAL, "the progress message is gone")]
    assert len(sender.edits) == 1


async def test_close_leaves_unsent_notices_stored(clock: FakeClock, sender: FakeSender,
                                                  downloads: Downloads) -> None:
    board = new_board(sender, downloads, clock, admin_chat=1)
    downloads.manager.subscribe(board)
    sender.send_failures.append(NetworkError("Bad Gateway"))
    downloads.manager.aria2_down("hung")
    await quiet(board, downloads, sender)
    await board.close(flush_timeout=0)
    assert [n.kind for n in await downloads.pending()] == [NoticeKind.ARIA2_DOWN]
    assert await downloads.marked() == []
    assert len(sender.sends) == 1


async def test_a_notice_deleted_while_it_waits_to_be_retried_is_forgotten(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock, downloads: Downloads,
) -> None:
    reads: list[int] = []
    read = downloads.manager.pending_notices

    async def counted(per_chat: int = 50) -> list[Notice]:
        reads.append(per_chat)
        return await read(per_chat)

    downloads.manager.pending_notices = counted  # type: ignore[method-assign]
    sender.send_failures.append(NetworkError("Bad Gateway"))
    await downloads.add(snapshot(10, message_id=None))
    await downloads.tell(board, TorrentFailed, 1, state="error", error="x")
    await quiet(board, downloads, sender)
    await downloads.store.downloads.delete([1])  # the download was purged with its notices
    await clock.advance(3)  # its retry time passes: one more read finds nothing
    await quiet(board, downloads, sender)
    before = len(reads)
    await clock.advance(INTERVAL)
    await quiet(board, downloads, sender)
    assert len(reads) == before and len(sender.sends) == 1  # no loop, no resend


# --- chats that move: a group upgraded to a supergroup -------------------------------------------

async def test_news_follows_a_group_upgraded_to_a_supergroup(
    board: ProgressBoard, sender: FakeSender, downloads: Downloads,
) -> None:
    sender.send_failures.append(ChatMigrated(-1005))
    await downloads.add(snapshot(10, chat_id=-5, message_id=None))
    await downloads.tell(board, TorrentFailed, 1, state="error", error="x")
    await quiet(board, downloads, sender)
    assert [(c.chat_id, c.reply_to) for c in sender.sends] == [(-5, None), (-1005, None)]
    assert (await downloads.manager.get(1)).chat_id == -1005
    assert await downloads.marked() == [(NoticeKind.FAILED, None)]


async def test_a_progress_message_left_in_the_old_group_is_given_up_and_the_chat_followed(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock, downloads: Downloads,
) -> None:
    sender.edit_failures.append(ChatMigrated(-1005))
    attach(board, await downloads.add(snapshot(10, chat_id=-5)))
    await clock.advance(INTERVAL)
    board(TorrentProgress(snapshot(50, chat_id=-5)))
    await quiet(board, downloads, sender)
    assert len(sender.edits) == 1
    assert (await downloads.manager.get(1)).chat_id == -1005
    await downloads.tell(board, TorrentCancelled, 1, state="cancelled")
    await clock.advance(INTERVAL)
    await quiet(board, downloads, sender)
    assert len(sender.edits) == 1 and sender.sends == []  # the old message: not again
    assert await downloads.pending() == []  # no final edit hangs


async def test_a_refused_send_whose_try_the_busy_store_cannot_count_is_sent_later(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock, downloads: Downloads,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by the promises machine's soak: Telegram refused a notice (502) and the store,
    locked by another process past its busy timeout, could not count the try; the error
    escaped the news task with a traceback. A busy store is no bug: one warning, and the
    notice is sent at its next try once the store answers."""
    busy = contextlib.ExitStack()
    send = sender.send

    async def refused_then_store_busy(*args: Any, **kwargs: Any) -> int:
        try:
            return await send(*args, **kwargs)
        except NetworkError:
            busy.enter_context(locked(tmp_path / "ariabot.db"))
            raise

    sender.send = refused_then_store_busy  # type: ignore[method-assign]
    sender.send_failures.append(NetworkError("Bad Gateway"))
    await downloads.add(snapshot(10, message_id=None))
    with busy:
        await downloads.tell(board, TorrentFailed, 1, state="error", error="x")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not [r for r in caplog.records if r.levelno >= logging.WARNING]:
            assert loop.time() < deadline, "nothing was said of the busy store"
            await asyncio.sleep(0.05)
    await quiet(board, downloads, sender)
    await clock.advance(3)  # the retry delay
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 2
    assert await downloads.marked() == [(NoticeKind.FAILED, None)]
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


# --- a feed's news ----------------------------------------------------------------------------

async def _feed_added(downloads: Downloads, ids: list[int], feed: str) -> None:
    """Store a feed's adds as the feed reader does (one notice each), in one go."""
    def write() -> None:
        with downloads.store.database.db.atomic():
            for download_id in ids:
                downloads.store.notices.write(download_id, NoticeKind.FEED_ADDED,
                                              datetime(2024, 1, 1), detail=feed)

    await downloads.store.database.run(write)
    downloads.store.notices.stored()


async def test_a_feeds_add_is_told_as_a_manual_add_its_progress_message_edited_after(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock, downloads: Downloads,
) -> None:
    await downloads.add(snapshot(10, message_id=None, name="Show.S01E01.mkv"))
    await _feed_added(downloads, [1], "nyaa")
    await quiet(board, downloads, sender)
    [told] = sender.sends
    assert "Show.S01E01.mkv" in told.text and "from feed “nyaa”" in told.text
    assert told.markup is not None  # Pause, Cancel… as under a manual add's reply
    assert (await downloads.manager.get(1)).message_id == sender.next_id  # stored
    assert await downloads.marked() == [(NoticeKind.FEED_ADDED, None)]
    await clock.advance(INTERVAL)
    await downloads.tell(board, TorrentProgress, 1, completed_bytes=60 * MIB)
    await quiet(board, downloads, sender)
    [edit] = sender.edits
    assert edit.message_id == sender.next_id and "60%" in edit.text


async def test_many_adds_of_one_feed_at_once_are_one_message_sent_once_through_errors(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock, downloads: Downloads,
) -> None:
    for number in range(1, 7):
        await downloads.add(snapshot(0, id=number, message_id=None,
                                     name=f"Show.S01E0{number}.mkv", total_bytes=MIB))
    sender.send_failures += [NetworkError("Bad Gateway")]
    await _feed_added(downloads, [1, 2, 3, 4, 5], "nyaa")
    await quiet(board, downloads, sender)
    await clock.advance(3.0)  # the retry delay
    await quiet(board, downloads, sender)
    await _feed_added(downloads, [6], "other")  # another feed's one add: told on its own
    await quiet(board, downloads, sender)
    summaries = [call for call in sender.sends if "Feed “nyaa” added 5 downloads" in call.text]
    assert len(summaries) == 2  # the failed try, then the one that went
    assert all(f"#{n} Show.S01E0{n}.mkv · 1.0 MiB" in summaries[1].text for n in range(1, 6))
    [single] = [call for call in sender.sends if "from feed “other”" in call.text]
    assert "Show.S01E06.mkv" in single.text
    assert await downloads.pending() == []
    assert await downloads.marked() == [(NoticeKind.FEED_ADDED, None)] * 6
    await clock.advance(INTERVAL * 10)
    await quiet(board, downloads, sender)
    assert len(sender.sends) == 3


async def test_a_feed_failing_for_long_is_told_to_its_chat(
    board: ProgressBoard, sender: FakeSender, downloads: Downloads,
) -> None:
    def write() -> None:
        downloads.store.notices.write_chat(CHAT, NoticeKind.FEED_FAILING,
                                           "The feed “nyaa” has not been read <for a day>",
                                           datetime(2024, 1, 1))

    await downloads.store.database.run(write)
    downloads.store.notices.stored()
    await quiet(board, downloads, sender)
    [told] = sender.sends
    assert (told.chat_id, told.text) == (
        CHAT, "The feed “nyaa” has not been read &lt;for a day&gt;")
    assert await downloads.marked() == [(NoticeKind.FEED_FAILING, None)]
