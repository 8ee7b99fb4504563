"""ProgressBoard rules with an injected clock, a fake sender and an in-memory outbox: no
real sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from telegram import InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.progress import ProgressBoard
from bot.views import progress_keyboard, progress_text
from manager import (
    Aria2Down,
    Aria2Fatal,
    Aria2Restarted,
    DownloadNotFound,
    EngineEvent,
    Event,
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
from manager.notices import Notice, NoticeKind

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


async def sent(sender: FakeSender, count: int) -> None:
    """Wait (by condition, 5 s at most) for ``count`` new messages: the "Send file" check
    runs in a worker thread, which the fake clock does not drive."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while len(sender.sends) < count:
        assert loop.time() < deadline, f"only {len(sender.sends)} of {count} messages sent"
        await asyncio.sleep(0.001)


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


_ALERTS = {Aria2Down: NoticeKind.ARIA2_DOWN, Aria2Restarted: NoticeKind.ARIA2_RESTARTED,
           Aria2Fatal: NoticeKind.ARIA2_FATAL}
_NEWS = {TorrentCompleted: NoticeKind.COMPLETED, TorrentFailed: NoticeKind.FAILED,
         MirrorDone: NoticeKind.MIRRORED, MirrorFailed: NoticeKind.MIRROR_FAILED}


class FakeOutbox:
    """The manager's outbox in memory: :meth:`record` stores the notices the store writes
    with an event's change (see :mod:`manager.notices`); marks are kept for assertions."""

    def __init__(self) -> None:
        self.pending: dict[int, Notice] = {}
        self.marked: dict[int, tuple[NoticeKind, str | None]] = {}
        self.torrents: dict[int, Torrent] = {}
        self.reads = 0
        self._ids = itertools.count(1)

    def record(self, event: Event) -> None:
        if isinstance(event, EngineEvent):
            self._add(_ALERTS[type(event)], None, None, event.detail)
            return
        assert isinstance(event, TorrentEvent)
        torrent = self.torrents[event.torrent.id] = event.torrent
        if torrent.chat_id == 0:
            return
        if (kind := _NEWS.get(type(event))) is not None:
            self._add(kind, torrent.id, torrent.chat_id)
        mirror_final = torrent.mirror is not None and torrent.mirror.state.is_final
        final = (torrent.state.is_final and torrent.mirror is None) or mirror_final or (
            isinstance(event, (TorrentCancelled, TorrentFailed, TorrentCompleted))
            and torrent.state.is_final)
        if final and torrent.message_id is not None:
            self._add(NoticeKind.FINAL, torrent.id, torrent.chat_id)

    def _add(self, kind: NoticeKind, download_id: int | None, chat_id: int | None,
             detail: str = "") -> None:
        notice_id = next(self._ids)
        self.pending[notice_id] = Notice(notice_id, kind, download_id, chat_id, detail,
                                         datetime(2024, 1, 1), 0)

    async def pending_notices(self, per_chat: int = 50) -> list[Notice]:
        self.reads += 1
        return list(self.pending.values())

    def watch_notices(self, watcher: Any) -> Any:
        return lambda: None

    async def notice_done(self, notice_id: int, dropped: str | None = None) -> None:
        self.marked[notice_id] = (self.pending.pop(notice_id).kind, dropped)

    async def notice_failed(self, notice_id: int) -> None:
        notice = self.pending[notice_id]
        self.pending[notice_id] = dataclasses.replace(notice, tries=notice.tries + 1)

    async def get(self, download_id: int, chat_id: int | None = None) -> Torrent:
        if download_id not in self.torrents:
            raise DownloadNotFound(f"no #{download_id}")
        return self.torrents[download_id]


class OutboxBoard(ProgressBoard):
    """The board as the manager feeds it: each event's notices are stored before it."""

    def __init__(self, sender: FakeSender, outbox: FakeOutbox, **options: Any) -> None:
        super().__init__(sender, outbox, **options)
        self.outbox = outbox

    def __call__(self, event: Event) -> None:
        self.outbox.record(event)
        super().__call__(event)


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


@pytest.fixture
async def board(clock: FakeClock, sender: FakeSender, tmp_path: Path) -> Iterator[OutboxBoard]:
    created = OutboxBoard(
        sender, FakeOutbox(), chat_folder=lambda chat: tmp_path / "torrents" / str(chat),
        edit_interval=INTERVAL, admin_chat=-999, clock=clock,
        sleep=clock.sleep, retry_delay=3.0,
    )
    yield created
    await created.close(flush_timeout=0)


async def assert_done_with(board: ProgressBoard, sender: FakeSender, clock: FakeClock) -> None:
    """The board let go: it holds no message, no worker waits on the clock, and much later
    nothing is sent."""
    calls = len(sender.calls)
    assert board._slots == {}
    assert clock._sleepers == []
    await clock.advance(INTERVAL * 10)
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
                                                        tmp_path: Path) -> None:
    folder = tmp_path / "torrents" / str(CHAT)
    folder.mkdir(parents=True)
    (folder / "file.bin").write_bytes(b"x" * 1000)
    attach(board, snapshot(40))
    await clock.advance(2)
    done = snapshot(100, state=TorrentState.COMPLETE, download_speed=0,
                    completed_at=datetime(2024, 1, 1, 0, 3, 7), path=str(folder / "file.bin"))
    board(TorrentCompleted(done))
    await sent(sender, 1)
    assert len(sender.sends) == 1
    news = sender.sends[0]
    assert news.chat_id == CHAT and news.reply_to == MESSAGE
    assert "is downloaded" in news.text and "took 3m 07s" in news.text
    assert "<code>file.bin</code>" in news.text and str(tmp_path) not in news.text
    assert news.markup is not None
    assert news.markup.inline_keyboard[0][0].callback_data == "send:1"
    assert sender.edits == []  # the final edit still respects the interval
    await clock.advance(INTERVAL)
    assert len(sender.edits) == 1 and "Complete" in sender.edits[0].text
    assert sender.edits[0].markup is None
    await assert_done_with(board, sender, clock)


async def test_send_button_for_any_size_but_not_for_missing_files(board: ProgressBoard,
                                                                 sender: FakeSender,
                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "torrents" / str(CHAT)
    folder.mkdir(parents=True)
    with (folder / "big.bin").open("wb") as big_file:
        big_file.truncate(60 * MIB)  # sparse: above Telegram's 50 MB, it goes in parts
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    (folder / "link.bin").symlink_to(outside)
    for number, path in enumerate([folder / "big.bin", folder / "none.bin",
                                   folder / "link.bin", folder], 1):
        board(TorrentCompleted(snapshot(100, id=number, state=TorrentState.COMPLETE,
                                        path=str(path))))
    await sent(sender, 4)
    by_id = {int(call.text.split("(#")[1].split(")")[0]): call for call in sender.sends}
    big = by_id[1].markup  # bigger than one upload: it goes in parts
    assert big is not None and big.inline_keyboard[0][0].callback_data == "send:1"
    assert all(by_id[n].markup is None for n in (2, 3, 4))


async def test_failure_gets_a_new_message_with_the_reason(board: ProgressBoard,
                                                          sender: FakeSender,
                                                          clock: FakeClock) -> None:
    attach(board, snapshot(10))
    await clock.advance(INTERVAL)
    board(TorrentFailed(snapshot(10, state=TorrentState.ERROR, error="no <peers> for 15 min")))
    await settle()
    assert len(sender.sends) == 1
    assert "no &lt;peers&gt; for 15 min" in sender.sends[0].text
    assert len(sender.edits) == 1 and "❌" in sender.edits[0].text


async def test_notification_survives_429_and_network_errors(board: ProgressBoard,
                                                            sender: FakeSender,
                                                            clock: FakeClock) -> None:
    sender.send_failures += [RetryAfter(7), NetworkError("Internal Server Error")]
    board(TorrentFailed(snapshot(10, state=TorrentState.ERROR, error="boom")))
    await clock.advance(7)  # Telegram's retry_after
    assert len(sender.sends) == 2
    await clock.advance(6)  # retry_delay times the attempt number
    assert len(sender.sends) == 3
    assert board.stats.notifications == 1


async def test_events_before_the_reply_are_kept_for_it(board: ProgressBoard,
                                                       sender: FakeSender,
                                                       clock: FakeClock) -> None:
    # add() emits TorrentAdded before the reply exists; a fast download may even finish.
    added = snapshot(0, message_id=None)
    board(TorrentAdded(added))
    board(TorrentCompleted(snapshot(100, message_id=None, state=TorrentState.COMPLETE,
                                    completed_at=datetime(2024, 1, 1, 0, 0, 9))))
    await settle()
    assert sender.edits == []
    attach(board, added)  # the reply showed 0 %
    await clock.advance(INTERVAL)
    assert len(sender.edits) == 1 and "Complete" in sender.edits[0].text


async def test_cancel_edits_to_the_final_state_without_buttons(board: ProgressBoard,
                                                               sender: FakeSender,
                                                               clock: FakeClock) -> None:
    attach(board, snapshot(10))
    cancelled = snapshot(10, state=TorrentState.CANCELLED, download_speed=0)
    board(TorrentCancelled(cancelled))
    board.show_now(cancelled, MESSAGE, confirm=False)
    await settle()
    assert len(sender.edits) == 1
    assert sender.edits[0].markup is None and "Cancelled" in sender.edits[0].text
    assert sender.sends == []
    await assert_done_with(board, sender, clock)


async def test_engine_events_go_to_the_admin_chat(board: ProgressBoard, sender: FakeSender,
                                                  clock: FakeClock) -> None:
    board(Aria2Restarted("pid 5", "abc"))
    board(Aria2Fatal("crashed 6 times"))
    await settle()
    assert [(c.chat_id, "running again" in c.text or "cannot be kept" in c.text)
            for c in sender.sends] == [(-999, True), (-999, True)]


async def test_local_downloads_and_closed_board_are_ignored(board: ProgressBoard,
                                                            sender: FakeSender,
                                                            clock: FakeClock) -> None:
    board(TorrentCompleted(snapshot(100, chat_id=0, state=TorrentState.COMPLETE)))
    await settle()
    assert sender.calls == []
    await assert_done_with(board, sender, clock)
    await board.close(flush_timeout=0)
    board(TorrentFailed(snapshot(1, state=TorrentState.ERROR)))
    await settle()
    assert sender.calls == []


async def test_close_flushes_pending_notifications(clock: FakeClock, sender: FakeSender,
                                                   tmp_path: Path) -> None:
    board = OutboxBoard(sender, FakeOutbox(), chat_folder=lambda chat: tmp_path, clock=clock,
                          sleep=clock.sleep, admin_chat=1)
    board(Aria2Fatal("gave up"))
    attach(board, snapshot(0))
    board(TorrentProgress(snapshot(50)))  # waiting for the interval: cancelled by close
    await board.close(flush_timeout=1)
    assert len(sender.sends) == 1 and sender.edits == []


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


async def test_upload_progress_edits_by_five_points_and_the_outcome_is_news(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    board(TorrentCompleted(snapshot(100, state=TorrentState.COMPLETE)))
    await sent(sender, 1)
    await clock.advance(INTERVAL)
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
    board(MirrorDone(mirrored(MirrorState.DONE, 100, link="https://example.org/s/abc")))
    await sent(sender, 2)
    news = sender.sends[-1]
    assert news.reply_to == MESSAGE and "is uploaded (#1) to" in news.text
    assert "Link: https://example.org/s/abc" in news.text
    await clock.advance(INTERVAL)
    assert "☁️ Uploaded to" in sender.edits[-1].text and sender.edits[-1].markup is None
    await assert_done_with(board, sender, clock)


async def test_a_retry_edits_at_once_and_a_failure_is_one_message(
    board: ProgressBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    board(MirrorChanged(mirrored(MirrorState.UPLOADING, 10)))
    await clock.advance(INTERVAL)
    board(MirrorChanged(mirrored(MirrorState.RETRYING, 10, attempt=2, retry_in=4.0,
                                 error="the remote refused the connection (is it up?)")))
    await clock.advance(INTERVAL)
    assert "Trying again in 4s: the remote refused the connection" in sender.edits[-1].text
    assert "attempt 2 of 4" in sender.edits[-1].text
    board(MirrorFailed(mirrored(MirrorState.FAILED, 10, attempt=4, error="gone")))
    await sent(sender, 1)
    assert sender.sends[0].text.endswith(
        "after 4 attempts: gone\nThe files on this server are kept. Try again with /mirror 1.")
    await clock.advance(INTERVAL)
    await assert_done_with(board, sender, clock)


# --- the outbox: notices are marked only once Telegram has them ----------------------------------

async def test_a_notice_stays_pending_through_errors_and_is_marked_once_sent(
    board: OutboxBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    sender.send_failures += [NetworkError("Bad Gateway"), TimedOut(), NetworkError("Bad Gateway")]
    board(TorrentFailed(snapshot(10, message_id=None, state=TorrentState.ERROR, error="x")))
    await settle()
    [pending] = board.outbox.pending.values()
    assert len(sender.sends) == 1 and pending.tries == 1
    await clock.advance(3)  # retry_delay, then doubling: 3, 6, 12
    await clock.advance(6)
    assert len(sender.sends) == 3 and board.outbox.pending
    await clock.advance(11.9)
    assert len(sender.sends) == 3
    await clock.advance(0.1)
    assert len(sender.sends) == 4
    assert board.outbox.pending == {} and list(board.outbox.marked.values()) == [
        (NoticeKind.FAILED, None)]
    await clock.advance(INTERVAL * 10)
    assert len(sender.sends) == 4


async def test_notices_nobody_can_receive_are_dropped_with_the_reason(
    board: OutboxBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    sender.send_failures += [Forbidden("bot was blocked by the user"),
                             BadRequest("Chat not found")]
    board(TorrentFailed(snapshot(10, id=1, message_id=None, state=TorrentState.ERROR)))
    board(TorrentFailed(snapshot(10, id=2, message_id=None, state=TorrentState.ERROR)))
    await settle()
    board.outbox._add(NoticeKind.COMPLETED, 77, CHAT)  # a download deleted meanwhile
    board.start()
    await settle()
    reasons = " | ".join(sorted(str(dropped) for _, dropped in board.outbox.marked.values()))
    assert len(board.outbox.marked) == 3 and board.outbox.pending == {}
    assert reasons == ("Telegram refused it: Chat not found | cannot write to chat 42: bot "
                       "was blocked by the user | the download was deleted")
    assert board.stats.dropped == 3 and len(sender.sends) == 2


async def test_a_final_edit_left_from_before_a_restart_is_done_once(
    clock: FakeClock, sender: FakeSender, tmp_path: Path,
) -> None:
    outbox = FakeOutbox()
    outbox.record(TorrentCancelled(snapshot(40, state=TorrentState.CANCELLED)))
    board = OutboxBoard(sender, outbox, chat_folder=lambda chat: tmp_path, clock=clock,
                        sleep=clock.sleep, edit_interval=INTERVAL)
    board.start()  # a new process: the board has never seen this download
    await settle()
    assert len(sender.edits) == 1 and "Cancelled" in sender.edits[0].text
    assert sender.edits[0].message_id == MESSAGE
    assert list(outbox.marked.values()) == [(NoticeKind.FINAL, None)]
    outbox.record(TorrentCancelled(snapshot(40, state=TorrentState.CANCELLED)))
    board.start()  # the same final state again: on screen already, no request
    await settle()
    assert len(sender.edits) == 1 and outbox.pending == {}
    await board.close(flush_timeout=0)


async def test_a_final_edit_of_a_deleted_message_is_dropped(
    board: OutboxBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    sender.edit_failures.append(BadRequest("Message to edit not found"))
    board(TorrentCancelled(snapshot(40, state=TorrentState.CANCELLED)))
    await settle()
    await clock.advance(INTERVAL)
    assert list(board.outbox.marked.values()) == [(NoticeKind.FINAL,
                                                   "the progress message is gone")]
    assert len(sender.edits) == 1


async def test_close_leaves_unsent_notices_stored(clock: FakeClock, sender: FakeSender,
                                                  tmp_path: Path) -> None:
    outbox = FakeOutbox()
    board = OutboxBoard(sender, outbox, chat_folder=lambda chat: tmp_path, clock=clock,
                        sleep=clock.sleep, admin_chat=1)
    sender.send_failures.append(NetworkError("Bad Gateway"))
    board(Aria2Down("hung"))
    await settle()
    await board.close(flush_timeout=0)
    assert [n.kind for n in outbox.pending.values()] == [NoticeKind.ARIA2_DOWN]
    assert outbox.marked == {}


async def test_a_notice_deleted_while_it_waits_to_be_retried_is_forgotten(
    board: OutboxBoard, sender: FakeSender, clock: FakeClock,
) -> None:
    sender.send_failures.append(NetworkError("Bad Gateway"))
    board(TorrentFailed(snapshot(10, message_id=None, state=TorrentState.ERROR)))
    await settle()
    board.outbox.pending.clear()  # the download was purged with its notices
    await clock.advance(3)  # its retry time passes: one more read finds nothing
    reads = board.outbox.reads
    await clock.advance(INTERVAL)
    await settle()
    assert board.outbox.reads == reads and len(sender.sends) == 1  # no loop, no resend
