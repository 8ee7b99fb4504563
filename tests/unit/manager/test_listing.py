"""Paged listings on a real store, SQLite and PostgreSQL: ``ariabot list``'s cursor pages
and ``/status``'s pages (unfinished first, then finished, newest first; cancelled left out;
totals from one count)."""

from __future__ import annotations

from manager.downloads.listing import LIST_PAGE_MAX, Listing
from manager.downloads.live import LiveDownloads
from manager.models import Torrent
from manager.store import Store


async def _as_they_are(torrents: list[Torrent]) -> list[Torrent]:
    return torrents


def listing(store: Store) -> Listing:
    return Listing(LiveDownloads(store, lambda: 0.0), store, _as_they_are)


async def add(store: Store, number: int, state: str, chat: int = 1) -> int:
    record = await store.downloads.create(
        info_hash=f"{number:040x}", chat_id=chat, user_id=7,
        name=f"n{number}", source_kind="magnet", source=b"magnet:?",
        directory="/d", state=state)
    return record.id


async def test_cursor_pages_walk_every_download_newest_first(store: Store) -> None:
    ids = [await add(store, n, "complete", chat=1 + n % 2) for n in range(7)]
    pages, before = [], None
    while True:
        page = await listing(store).page(before_id=before, limit=3)
        if not page:
            break
        pages.append([t.id for t in page])
        before = page[-1].id
    assert pages == [ids[6:3:-1], ids[3:0:-1], ids[:1]]
    assert [t.id for t in await listing(store).page(2, limit=10)] == ids[5::-2]
    assert len(await listing(store).page(limit=10**6)) == 7  # capped at LIST_PAGE_MAX
    assert LIST_PAGE_MAX < 10**6


async def test_status_pages_unfinished_first_then_finished_and_leave_out_cancelled(
    store: Store,
) -> None:
    states = ["complete", "queued", "cancelled", "error", "downloading", "seeding",
              "complete", "paused", "cancelled"]
    ids = {n: await add(store, n, state) for n, state in enumerate(states)}
    await add(store, 99, "queued", chat=2)  # another chat's
    by_page = []
    for number in range(3):
        page = await listing(store).status_page(1, number, 3)
        assert (page.total, page.page, page.pages) == (7, number, 3)
        by_page.append([t.id for t in page.torrents])
    unfinished = [ids[7], ids[5], ids[4], ids[1]]
    finished = [ids[6], ids[3], ids[0]]
    assert by_page == [unfinished[:3], [unfinished[3], *finished[:2]], finished[2:]]
    last = await listing(store).status_page(1, 99, 3)  # past the end: the last page
    assert (last.page, [t.id for t in last.torrents]) == (2, finished[2:])
    empty = await listing(store).status_page(3, 0, 3)
    assert (empty.total, empty.page, empty.pages, empty.torrents) == (0, 0, 1, ())


async def test_state_counts_is_one_query(store: Store) -> None:
    for n, state in enumerate(["queued", "queued", "complete"]):
        await add(store, n, state)
    before = store.statements
    assert await store.downloads.state_counts(chat_id=1) == {"queued": 2, "complete": 1}
    assert store.statements - before == 1
