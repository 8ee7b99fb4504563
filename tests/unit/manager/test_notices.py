"""The outbox: a change of state and its notice are one write; marked notices stay marked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import peewee
import pytest

from manager.errors import StoreError
from manager.notices import NoticeKind, download_notices, mirror_notices
from manager.store import Store
from tests.dbfaults import LOCKED, hold_writes, refuse_notices, wait_for_locks
from tests.unit.manager.test_store import add


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
    await store.downloads.update(first, message_id=31)
    await store.downloads.update_many({
        first: {"state": "complete", "completed_at": datetime.now(UTC)},
        second: {"state": "error", "error": "disk full"}})
    # second has no progress message: no final edit for it
    assert _kinds(await store.notices.pending()) == [
        (first, NoticeKind.COMPLETED), (first, NoticeKind.FINAL), (second, NoticeKind.FAILED)]


async def test_a_write_that_fails_after_its_first_notice_stores_no_notice(
    store: Store,
) -> None:
    first, second = await add(store, "a" * 40), await add(store, "b" * 40)
    # The database refuses the second notice: the first one is already written by then.
    await refuse_notices(store, second)
    with pytest.raises(peewee.IntegrityError, match="refused"):
        await store.downloads.update_many({first: {"state": "error", "error": "x"},
                                           second: {"state": "error", "error": "y"}})
    assert await store.notices.pending() == []
    assert [(await store.downloads.get(i)).state for i in (first, second)] == ["queued", "queued"]


async def test_a_write_whose_notice_fails_in_the_database_stores_neither(store: Store) -> None:
    first = await add(store)
    await refuse_notices(store)
    with pytest.raises(peewee.IntegrityError, match="refused"):
        await store.downloads.update_many({first: {"state": "error", "error": "x"}})
    assert (await store.downloads.get(first)).state == "queued"  # the change went with its notice


async def test_a_busy_database_fails_the_write_with_a_store_error_and_stores_neither(
    store: Store, database_url: str,
) -> None:
    first = await add(store)
    await wait_for_locks(store, 50)
    with hold_writes(database_url), pytest.raises(StoreError, match=LOCKED):
        await store.downloads.update_many({first: {"state": "error", "error": "x"}})
    assert await store.notices.pending() == []
    assert (await store.downloads.get(first)).state == "queued"


async def test_each_chat_gets_its_oldest_notices_in_one_read(store: Store) -> None:
    busy = [await add(store, f"{n:040x}", chat=5) for n in range(4)]
    quiet = await add(store, "f" * 40, chat=6)
    for download_id in [*busy, quiet]:
        await store.downloads.update(download_id, state="error", error="x")
    await store.notices.add(NoticeKind.ARIA2_DOWN, "aria2c died")
    read = await store.notices.pending(per_chat=2)
    assert [(n.chat_id, n.download_id) for n in read] == [
        (5, busy[0]), (5, busy[1]), (6, quiet), (None, None)]


async def test_every_write_that_stores_a_notice_tells_the_watchers(store: Store) -> None:
    told: list[int] = []
    unwatch = store.notices.watch(lambda: told.append(len(told)))
    first = await add(store)
    await store.downloads.update(first, completed_bytes=5, peers=2)  # no notice
    assert told == []
    await store.downloads.update(first, state="error", error="x")
    assert len(told) == 1
    await store.mirrors.start(first, chat_id=1, user_id=7, remote="r:", move=False,
                              state="uploading")
    await store.mirrors.update(first, bytes=3)  # no notice
    assert len(told) == 1
    await store.mirrors.update(first, state="failed", error="gone")
    assert len(told) == 2
    await store.notices.add(NoticeKind.ARIA2_DOWN, "aria2c died")
    assert len(told) == 3
    unwatch()
    await store.notices.add(NoticeKind.ARIA2_RESTARTED, "again")
    assert len(told) == 3


async def test_local_downloads_have_nobody_to_tell(store: Store) -> None:
    local = await add(store, chat=0)
    await store.downloads.update(local, state="error", error="x", message_id=3)
    assert await store.notices.pending() == []


async def test_marked_notices_are_not_pending_and_final_edits_coalesce(store: Store) -> None:
    first = await add(store)
    await store.downloads.update(first, message_id=8)
    await store.downloads.update(first, state="error", error="x")
    # a second final state: one edit is enough
    await store.downloads.update(first, state="cancelled")
    pending = await store.notices.pending()
    assert _kinds(pending) == [(first, NoticeKind.FAILED), (first, NoticeKind.FINAL)]
    await store.notices.done(pending[0].id)
    await store.notices.failed(pending[1].id)
    [left] = await store.notices.pending()
    assert (left.kind, left.tries) == (NoticeKind.FINAL, 1)
    await store.notices.done(left.id, dropped="message deleted")
    assert await store.notices.pending() == []
    # marked: a later final state gets its own
    await store.downloads.update(first, state="cancelled")
    assert _kinds(await store.notices.pending()) == [(first, NoticeKind.FINAL)]


async def test_engine_alerts_and_deleted_downloads(store: Store) -> None:
    first = await add(store)
    await store.downloads.update(first, state="error", error="x")
    await store.notices.add(NoticeKind.ARIA2_DOWN, "aria2c died")
    await store.downloads.delete([first])
    [alert] = await store.notices.pending()
    assert (alert.kind, alert.chat_id, alert.detail) == (NoticeKind.ARIA2_DOWN, None,
                                                         "aria2c died")
    await store.notices.done(alert.id)
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1)
    assert await store.notices.forget_sent(later) == 1


async def test_overview_message_ids_are_kept_per_chat(database_url: str) -> None:
    url = database_url
    store = Store(url)
    await store.open()
    assert await store.chats.overview_message(5) is None
    await store.chats.set_overview_message(5, 100)
    await store.chats.set_overview_message(5, 101)
    await store.chats.set_overview_message(6, 7)
    await store.close()
    reopened = Store(url)
    await reopened.open()
    chats = reopened.chats
    assert (await chats.overview_message(5), await chats.overview_message(6)) == (101, 7)
    await reopened.close()


async def test_a_version_3_database_gets_the_outbox(database_url: str) -> None:
    url = database_url
    first = Store(url)
    await first.open()
    download = await add(first)
    for sql in ("DROP TABLE notices", "DROP TABLE chat_views",
                "UPDATE schema_version SET version = 3"):
        await first.database.run(lambda sql=sql: first.database.db.execute_sql(sql))
    await first.close()
    again = Store(url)
    await again.open()
    try:
        await again.downloads.update(download, state="error", error="x")
        assert _kinds(await again.notices.pending()) == [(download, NoticeKind.FAILED)]
        await again.chats.set_overview_message(1, 2)
    finally:
        await again.close()


async def test_a_chat_that_moved_takes_its_downloads_mirrors_and_pending_notices(
    store: Store,
) -> None:
    moving, staying = await add(store, "a" * 40, chat=-5), await add(store, "b" * 40, chat=6)
    await store.downloads.update(moving, message_id=9)
    await store.downloads.update(moving, state="error", error="x")  # FAILED and FINAL, pending
    [failed, final] = await store.notices.pending()
    await store.notices.done(failed.id)  # told in the old chat already: stays there
    await store.mirrors.start(moving, chat_id=-5, user_id=7, remote="r:", move=False,
                              state="failed")
    await store.chats.set_overview_message(-5, 3)
    moved = (await store.chats.move(-5, -1005)).moved
    assert [(r.id, r.chat_id, r.message_id) for r in moved] == [(moving, -1005, None)]
    assert [(n.id, n.chat_id) for n in await store.notices.pending()] == [(final.id, -1005)]
    assert (await store.mirrors.get(moving)).chat_id == -1005  # type: ignore[union-attr]
    assert await store.chats.overview_message(-5) is None
    assert (await store.downloads.get(staying)).chat_id == 6
    assert (await store.chats.move(-5, -1005)).moved == []  # twice: nothing more to move
    assert await store.chats.moves() == {-5: -1005}


async def test_a_torrent_the_new_chat_already_lists_stays_with_the_old_chat(
    store: Store,
) -> None:
    """One row per torrent and chat: the old chat's copy cannot join the new chat's. It
    stays (its progress message forgotten), everything else moves, nothing raises."""
    twice, once = await add(store, "a" * 40, chat=-5), await add(store, "b" * 40, chat=-5)
    listed = await add(store, "a" * 40, chat=-1005)
    await store.downloads.update(twice, message_id=9)
    await store.mirrors.start(twice, chat_id=-5, user_id=7, remote="r:", move=False,
                              state="done")
    done = await store.chats.move(-5, -1005)
    assert [r.id for r in done.moved] == [once]
    assert [(r.id, r.chat_id, r.message_id) for r in done.stayed] == [(twice, -5, None)]
    assert (await store.downloads.get(listed)).chat_id == -1005
    assert (await store.mirrors.get(twice)).chat_id == -5  # type: ignore[union-attr]
    assert await store.chats.moves() == {-5: -1005}


async def test_a_row_the_new_chat_cancelled_gives_way_to_the_old_chats_copy(
    store: Store,
) -> None:
    """The new chat's cancelled row owns nothing: the old chat's copy takes its place (the
    cancelled row goes with its notices); both cancelled, the old one stays."""
    live, dead = await add(store, "a" * 40, chat=-5), await add(store, "b" * 40, chat=-5)
    await store.downloads.update(live, state="complete")
    await store.downloads.update(dead, state="cancelled")
    cancelled, also = await add(store, "a" * 40, chat=-1005), await add(store, "b" * 40,
                                                                      chat=-1005)
    await store.downloads.update(cancelled, state="cancelled")
    await store.downloads.update(also, state="cancelled")
    done = await store.chats.move(-5, -1005, giving_way={"cancelled"})
    assert [r.id for r in done.moved] == [live] and done.replaced == [cancelled]
    assert [r.id for r in done.stayed] == [dead]
    assert await store.downloads.find("a" * 40, -1005) == await store.downloads.get(live)
    assert [n.download_id for n in await store.notices.pending()
            if n.download_id == cancelled] == []
