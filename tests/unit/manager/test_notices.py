"""The outbox: a change of state and its notice are one write; marked notices stay marked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from manager.errors import StoreError
from manager.notices import NoticeKind, download_notices, mirror_notices
from manager.store import Store
from tests.unit.manager.test_store import add


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'ariabot.db'}")
    await opened.open()
    yield opened
    await opened.close()


def _kinds(notices: list) -> list[tuple[int | None, NoticeKind]]:
    return [(n.download_id, n.kind) for n in notices]


def test_rules_follow_the_written_columns() -> None:
    now = datetime.now(UTC)
    assert download_notices({"completed_bytes": 5, "peers": 2}) == []
    assert download_notices({"state": "seeding", "completed_at": now}) == [NoticeKind.COMPLETED]
    assert download_notices({"state": "complete", "completed_at": now}) == [
        NoticeKind.COMPLETED, NoticeKind.FINAL]
    assert download_notices({"state": "error", "error": "x"}) == [NoticeKind.FAILED,
                                                                  NoticeKind.FINAL]
    assert download_notices({"state": "cancelled"}) == [NoticeKind.FINAL]
    assert download_notices({"completed_at": None, "state": "queued"}) == []
    assert mirror_notices({"state": "done"}) == [NoticeKind.MIRRORED, NoticeKind.FINAL]
    assert mirror_notices({"state": "failed"}) == [NoticeKind.MIRROR_FAILED, NoticeKind.FINAL]
    assert mirror_notices({"state": "uploading", "bytes": 4}) == []


async def test_a_completion_is_stored_with_its_notices(store: Store) -> None:
    first, second = await add(store, "a" * 40), await add(store, "b" * 40)
    await store.update(first, message_id=31)
    await store.update_many({first: {"state": "complete", "completed_at": datetime.now(UTC)},
                             second: {"state": "error", "error": "disk full"}})
    # second has no progress message: no final edit for it
    assert _kinds(await store.pending_notices()) == [
        (first, NoticeKind.COMPLETED), (first, NoticeKind.FINAL), (second, NoticeKind.FAILED)]


async def test_a_failed_write_stores_no_notice(store: Store) -> None:
    first = await add(store)
    with pytest.raises(ValueError, match="not writable"):
        await store.update_many({first: {"state": "error", "nonsense": 1}})
    assert await store.pending_notices() == []


async def test_a_write_that_fails_in_the_database_stores_neither(store: Store,
                                                                 tmp_path: Path) -> None:
    first = await add(store)
    await store._run(lambda: store._db.execute_sql(
        "CREATE TRIGGER refuse AFTER INSERT ON notices BEGIN "
        "SELECT RAISE(ABORT, 'refused'); END"))
    with pytest.raises((StoreError, Exception)):
        await store.update_many({first: {"state": "error", "error": "x"}})
    assert (await store.get(first)).state == "queued"  # the change went with its notice


async def test_local_downloads_have_nobody_to_tell(store: Store) -> None:
    local = await add(store, chat=0)
    await store.update(local, state="error", error="x", message_id=3)
    assert await store.pending_notices() == []


async def test_marked_notices_are_not_pending_and_final_edits_coalesce(store: Store) -> None:
    first = await add(store)
    await store.update(first, message_id=8)
    await store.update(first, state="error", error="x")
    await store.update(first, state="cancelled")  # a second final state: one edit is enough
    pending = await store.pending_notices()
    assert _kinds(pending) == [(first, NoticeKind.FAILED), (first, NoticeKind.FINAL)]
    await store.notice_done(pending[0].id)
    await store.notice_failed(pending[1].id)
    [left] = await store.pending_notices()
    assert (left.kind, left.tries) == (NoticeKind.FINAL, 1)
    await store.notice_done(left.id, dropped="message deleted")
    assert await store.pending_notices() == []
    await store.update(first, state="cancelled")  # marked: a later final state gets its own
    assert _kinds(await store.pending_notices()) == [(first, NoticeKind.FINAL)]


async def test_engine_alerts_and_deleted_downloads(store: Store) -> None:
    first = await add(store)
    await store.update(first, state="error", error="x")
    await store.add_notice(NoticeKind.ARIA2_DOWN, "aria2c died")
    await store.delete([first])
    [alert] = await store.pending_notices()
    assert (alert.kind, alert.chat_id, alert.detail) == (NoticeKind.ARIA2_DOWN, None,
                                                         "aria2c died")
    await store.notice_done(alert.id)
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1)
    assert await store.forget_sent_notices(later) == 1


async def test_overview_message_ids_are_kept_per_chat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ariabot.db'}"
    store = Store(url)
    await store.open()
    assert await store.overview_message(5) is None
    await store.set_overview_message(5, 100)
    await store.set_overview_message(5, 101)
    await store.set_overview_message(6, 7)
    await store.close()
    reopened = Store(url)
    await reopened.open()
    assert (await reopened.overview_message(5), await reopened.overview_message(6)) == (101, 7)
    await reopened.close()


async def test_a_version_3_database_gets_the_outbox(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v3.db'}"
    first = Store(url)
    await first.open()
    download = await add(first)
    for sql in ("DROP TABLE notices", "DROP TABLE chat_views",
                "UPDATE schema_version SET version = 3"):
        await first._run(lambda sql=sql: first._db.execute_sql(sql))
    await first.close()
    again = Store(url)
    await again.open()
    try:
        await again.update(download, state="error", error="x")
        assert _kinds(await again.pending_notices()) == [(download, NoticeKind.FAILED)]
        await again.set_overview_message(1, 2)
    finally:
        await again.close()
