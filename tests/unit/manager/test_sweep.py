"""QueueSweep: which progress polls read aria2's waiting list (the one that grows with N)."""

from __future__ import annotations

from datetime import UTC, datetime

from manager.aria2 import WAITING_PAGE, Counts
from manager.downloads.live import LiveDownloads
from manager.store import DownloadRecord, Store
from manager.tracking.sweep import QueueSweep


def record(download_id: int, gid: str | None = "g1", state: str = "queued") -> DownloadRecord:
    now = datetime.now(UTC).replace(tzinfo=None)
    return DownloadRecord(
        id=download_id, info_hash="ab" * 20, chat_id=1, user_id=1, message_id=None,
        name="x", source_kind="magnet", directory="/tmp", gid=gid, state=state,
        total_bytes=0, completed_bytes=0, upload_bytes=0, download_speed=0, upload_speed=0,
        seeders=0, peers=0, error=None, selected_files=None, created_at=now, updated_at=now,
        completed_at=None)


def live_downloads() -> LiveDownloads:
    # Never opened: tracking and forgetting do not touch the store.
    return LiveDownloads(Store("sqlite:///:memory:"), clock=lambda: 0.0)


def polls(sweep: QueueSweep, count: int) -> list[bool]:
    return [sweep.next_poll() for _ in range(count)]


def test_first_poll_sweeps_then_idle_polls_do_not_until_the_safety_net() -> None:
    sweep = QueueSweep(live_downloads(), every=4)
    assert polls(sweep, 9) == [True, False, False, False, True, False, False, False, True]


def test_moved_makes_the_next_poll_sweep_once() -> None:
    sweep = QueueSweep(live_downloads(), every=100)
    polls(sweep, 2)
    sweep.moved()
    assert polls(sweep, 3) == [True, False, False]


def test_a_forced_poll_sweeps_and_restarts_the_count() -> None:
    sweep = QueueSweep(live_downloads(), every=3)
    polls(sweep, 2)
    assert sweep.next_poll(force=True)
    assert polls(sweep, 3) == [False, False, True]


def test_tracking_forgetting_or_a_new_gid_or_state_makes_the_next_poll_sweep() -> None:
    live = live_downloads()
    sweep = QueueSweep(live, every=100)
    polls(sweep, 2)
    live.remember(record(1))
    assert polls(sweep, 2) == [True, False]
    live.remember(record(1))  # the same row again: nothing moved
    assert polls(sweep, 1) == [False]
    live.remember(record(1, state="paused"))
    assert polls(sweep, 2) == [True, False]
    live.remember(record(1, gid="g2", state="paused"))
    assert polls(sweep, 2) == [True, False]
    live.forget(1)
    assert polls(sweep, 2) == [True, False]


def test_a_change_during_a_sweeping_poll_is_seen_by_the_next_poll() -> None:
    live = live_downloads()
    sweep = QueueSweep(live, every=100)
    assert sweep.next_poll()
    live.remember(record(7))  # while that poll runs
    assert polls(sweep, 2) == [True, False]


def test_the_safety_net_spaces_out_with_the_pages_of_the_waiting_list() -> None:
    """An idle poll costs the same at any size: the sweep that nothing asked for comes
    ``every`` polls per page of the list the last sweep read."""
    sweep = QueueSweep(live_downloads(), every=3)
    assert sweep.next_poll()
    sweep.swept(WAITING_PAGE)  # one page: as before
    assert polls(sweep, 3) == [False, False, True]
    sweep.swept(2 * WAITING_PAGE + 1)  # three pages
    assert polls(sweep, 9) == [False] * 8 + [True]


def test_counts_agree_only_with_the_length_the_last_sweep_read() -> None:
    sweep = QueueSweep(live_downloads(), every=100)
    sweep.swept(5)
    assert sweep.agrees(Counts(active=2, waiting=5, stopped_total=9))
    assert not sweep.agrees(Counts(active=2, waiting=4, stopped_total=9))  # one lost
    assert not sweep.agrees(None)  # not read: a sweep finds out
