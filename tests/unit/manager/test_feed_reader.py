"""One read of a feed (:class:`manager.feeds.FeedReader`) on a real store of each engine, a
real manager (aria2 absent: an add is stored and waits for it) and feeds served on
127.0.0.1 (tests/fakes/feeds.py): what is added, how often, and what a failing feed costs.
The clock is the test's, so schedules are read exactly."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import ipaddress
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import torf

from manager import (
    Aria2Endpoint,
    Aria2Rpc,
    FeedConfig,
    FeedError,
    ManagerConfig,
    TorrentManager,
    TorrentUrlError,
)
from manager.feeds import FeedReader, FeedService
from manager.feeds.reader import TRIES, backoff
from manager.fetch import FeedFetcher, FetchPolicy, TorrentFetcher
from manager.notices import NoticeKind
from manager.store import FeedRecord, Store, entry_key
from tests.fakes.feeds import FakeItem, FeedSite, nyaa
from tests.runner import free_port

START = datetime(2026, 12, 7, 12, 0, 0)
INTERVAL = 600.0
FAILING_AFTER = 3600.0
CHAT = 42


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def site() -> AsyncIterator[FeedSite]:
    async with FeedSite() as serving:
        yield serving


@pytest.fixture
async def manager(store: Store, tmp_path: Path) -> AsyncIterator[TorrentManager]:
    rpc = Aria2Rpc(Aria2Endpoint(free_port(), "s" * 32), timeout=1)
    adding = TorrentManager(rpc, store, ManagerConfig(download_dir=tmp_path / "dl"))
    yield adding
    await adding.close()
    await rpc.close()


@pytest.fixture
async def reader(store: Store, manager: TorrentManager,
                 clock: Clock) -> AsyncIterator[FeedReader]:
    policy = FetchPolicy(max_bytes=1_000_000,
                         allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    torrents = TorrentFetcher(policy)
    yield FeedReader(store, feeds=FeedFetcher(torrents.client, 1_000_000), torrents=torrents,
                     adder=manager, config=FeedConfig(interval=INTERVAL, max_adds=2,
                                                      failing_after=FAILING_AFTER),
                     torrent_max_bytes=1_000_000, clock=clock)
    await torrents.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _torrents(folder: Path, count: int, size: int = 1000) -> dict[str, bytes]:
    made = {}
    for number in range(1, count + 1):
        content = folder / f"episode-{number:02d}.mkv"
        content.parent.mkdir(parents=True, exist_ok=True)
        content.write_bytes(bytes([number]) * size)
        torrent = torf.Torrent(path=content, trackers=["http://127.0.0.1:1/announce"])
        torrent.generate()
        made[f"e{number}"] = torrent.dump()
    return made


def _items(site: FeedSite, names: list[str], *, guid: str = "view") -> list[FakeItem]:
    """Newest first, as feeds list them: ``names`` are given oldest first."""
    return [FakeItem(title=f"Show {name}", guid=f"https://t.example/{guid}/{name}",
                     torrent_url=site.url(f"/files/{name}.torrent"),
                     published=START - timedelta(hours=len(names) - place))
            for place, name in reversed(list(enumerate(names)))]


async def _feed(store: Store, site: FeedSite, name: str = "show", *, chat: int = CHAT,
                filter_json: str = "{}") -> FeedRecord:
    return await store.feeds.create(chat_id=chat, user_id=7, name=name,
                                    url=site.url(f"/feeds/{name}"), filter_json=filter_json,
                                    next_poll_at=START, seen=[])


async def _read(reader: FeedReader, store: Store, feed: FeedRecord) -> tuple[int, FeedRecord]:
    """Read the feed as stored now; how many it added, and the row after."""
    stored = await store.feeds.get(feed.id)
    assert stored is not None
    outcome = await reader.read(stored)
    after = await store.feeds.get(feed.id)
    assert after is not None
    return outcome.added, after


async def _names(store: Store) -> list[str]:
    return [record.name for record in sorted(await store.downloads.list(),
                                             key=lambda record: record.id)]


async def test_a_read_adds_at_most_its_limit_oldest_first_and_the_rest_at_the_next_reads(
        store: Store, reader: FeedReader, site: FeedSite, tmp_path: Path) -> None:
    site.torrents = _torrents(tmp_path / "t", 5)
    site.feeds["show"] = nyaa(_items(site, ["e1", "e2", "e3", "e4", "e5"]))
    feed = await _feed(store, site)
    added = [(await _read(reader, store, feed))[0] for _ in range(3)]
    assert added == [2, 2, 1]
    assert await _names(store) == [f"episode-0{n}.mkv" for n in range(1, 6)]
    # Reads that left matches for later asked for the whole feed; the last one stored the
    # validators, so an unchanged feed now costs a 304 and adds nothing.
    stored = await store.feeds.get(feed.id)
    assert stored is not None
    outcome = await reader.read(stored)
    assert outcome.not_modified and outcome.added == 0
    assert site.answers["/feeds/show", 200] == 3
    assert site.answers["/feeds/show", 304] == 1
    assert len(await store.downloads.list()) == 5
    notices = [n for n in await store.notices.pending() if n.kind is NoticeKind.FEED_ADDED]
    assert sorted(n.download_id for n in notices) == sorted(
        r.id for r in await store.downloads.list())
    assert {n.detail for n in notices} == {"show"}


async def test_a_torrent_comes_once_per_chat_whatever_its_guid_or_feed(
        store: Store, reader: FeedReader, site: FeedSite, tmp_path: Path) -> None:
    site.torrents = _torrents(tmp_path / "t", 2)
    site.feeds["show"] = nyaa(_items(site, ["e1"]))
    site.feeds["mirror"] = nyaa(_items(site, ["e1", "e2"], guid="elsewhere"))
    first = await _feed(store, site, "show")
    second = await _feed(store, site, "mirror")
    assert (await _read(reader, store, first))[0] == 1
    assert (await _read(reader, store, second))[0] == 1  # e2 only: e1 came from "show"
    # The same feed posts e1 again under a new GUID: skipped quietly.
    site.feeds["show"] = nyaa(_items(site, ["e1"], guid="reposted") + _items(site, ["e1"]))
    assert (await _read(reader, store, first))[0] == 0
    assert await _names(store) == ["episode-01.mkv", "episode-02.mkv"]
    entries = await store.feeds.entries(first.id, [entry_key("https://t.example/reposted/e1")])
    assert [entry.state for entry in entries.values()] == ["duplicate"]


async def test_an_add_cut_short_is_settled_by_the_chats_row_and_never_added_twice(
        store: Store, reader: FeedReader, manager: TorrentManager, site: FeedSite,
        tmp_path: Path) -> None:
    site.torrents = _torrents(tmp_path / "t", 3)
    site.feeds["show"] = nyaa(_items(site, ["e1", "e2", "e3"]))
    feed = await _feed(store, site)
    [e3, e2, e1] = _items(site, ["e1", "e2", "e3"])
    # As a crash leaves them: e1 marked "adding" and its download stored (the crash came
    # before "added"); e2 marked "adding" and nothing stored; e3 added then cancelled.
    for item in (e1, e2, e3):
        await store.feeds.mark(feed, entry_key(item.guid), "adding", info_hash=None,
                               title=item.title)
    stored = await manager.add(site.torrents["e1"], CHAT, 7)
    cancelled = await manager.add(site.torrents["e3"], CHAT, 7)
    await manager.cancel(cancelled.torrent.id, CHAT)
    added, _ = await _read(reader, store, feed)
    assert added == 2  # e1 adopted (told now), e2 added
    rows = {record.name: record for record in await store.downloads.list()}
    assert sorted(rows) == ["episode-01.mkv", "episode-02.mkv", "episode-03.mkv"]
    assert rows["episode-01.mkv"].id == stored.torrent.id
    assert rows["episode-03.mkv"].state == "cancelled"  # not brought back
    told = [n.download_id for n in await store.notices.pending()
            if n.kind is NoticeKind.FEED_ADDED]
    assert sorted(told) == sorted([stored.torrent.id, rows["episode-02.mkv"].id])
    assert (await _read(reader, store, feed))[0] == 0  # e3, left by the limit of 2
    entries = await store.feeds.entries(feed.id, [entry_key(i.guid) for i in (e1, e2, e3)])
    assert sorted(entry.state for entry in entries.values()) == ["added", "added", "duplicate"]
    assert len(await store.downloads.list()) == 3


async def test_a_failing_feed_waits_longer_each_time_and_tells_its_chat_once_per_run(
        store: Store, reader: FeedReader, site: FeedSite, clock: Clock) -> None:
    site.feeds["show"] = nyaa([])
    site.statuses["show"] = 500
    feed = await _feed(store, site)
    told = []
    for failures in range(1, 9):
        _, after = await _read(reader, store, feed)
        wait = (after.next_poll_at - clock.now).total_seconds()
        expected = backoff(INTERVAL, failures)
        assert expected * 0.9 <= wait <= expected * 1.1, (failures, wait)
        assert after.failures == failures
        assert after.last_error == "cannot read the feed at 127.0.0.1: the server answered 500 " \
                                   "Internal Server Error"
        told.append(sum(n.kind is NoticeKind.FEED_FAILING for n in await store.notices.pending()))
        clock.now = after.next_poll_at
    assert backoff(INTERVAL, 8) == 6 * 3600  # capped
    # Told once, at the first read a day... an hour (FAILING_AFTER) after the first failure.
    first_told = told.index(1)
    assert told[first_told:] == [1] * (len(told) - first_told) and first_told > 0
    del site.statuses["show"]
    _, after = await _read(reader, store, feed)
    assert (after.failures, after.failing_since, after.last_error) == (0, None, None)
    assert INTERVAL * 0.9 <= (after.next_poll_at - clock.now).total_seconds() <= INTERVAL * 1.1
    [notice] = [n for n in await store.notices.pending() if n.kind is NoticeKind.FEED_FAILING]
    assert notice.chat_id == CHAT and "“show”" in notice.detail and "500" in notice.detail


async def test_an_item_whose_torrent_cannot_be_had_is_tried_at_three_reads_then_given_up(
        store: Store, reader: FeedReader, site: FeedSite, tmp_path: Path) -> None:
    site.torrents = _torrents(tmp_path / "t", 2)
    del site.torrents["e1"]  # the indexer answers 404 for it
    site.feeds["show"] = nyaa(_items(site, ["e1", "e2"]))
    feed = await _feed(store, site)
    for _ in range(TRIES):
        _, after = await _read(reader, store, feed)
        assert after.last_error is not None and after.last_error.startswith("Show e1: ")
    for _ in range(2):  # given up: not asked for again, and the problem is not repeated
        _, after = await _read(reader, store, feed)
        assert after.last_error is None
    assert site.answers["/files/e1.torrent", 404] == TRIES
    assert await _names(store) == ["episode-02.mkv"]


async def test_a_size_filter_uses_the_torrents_size_when_the_feed_gives_none(
        store: Store, reader: FeedReader, site: FeedSite, tmp_path: Path) -> None:
    site.torrents = {**_torrents(tmp_path / "small", 1, size=1000),
                     **{"e2": _torrents(tmp_path / "big", 2, size=300_000)["e2"]}}
    site.feeds["show"] = nyaa(_items(site, ["e1", "e2"]))  # no nyaa:size
    feed = await _feed(store, site, filter_json='{"min_size": 100000}')
    assert (await _read(reader, store, feed))[0] == 1
    assert await _names(store) == ["episode-02.mkv"]


async def test_a_feed_on_the_servers_own_network_is_never_fetched_without_the_setting(
        site: FeedSite) -> None:
    site.feeds["show"] = nyaa([])
    torrents = TorrentFetcher(FetchPolicy(max_bytes=1_000_000))  # no network allowed
    fetcher = FeedFetcher(torrents.client, 1_000_000)
    try:
        for url in (site.url("/feeds/show"), f"http://[::1]:{site.port}/feeds/show",
                    f"http://0.0.0.0:{site.port}/feeds/show",
                    f"http://localhost:{site.port}/feeds/show"):
            with pytest.raises(FeedError, match="private or local address"):
                await fetcher.fetch(url)
    finally:
        await torrents.close()
    assert site.requests == []  # refused before any connection


async def test_a_server_that_never_answers_is_given_up_at_the_fetch_timeout(
        site: FeedSite) -> None:
    site.torrents["stuck"] = b"d4:infoe"
    site.holds["stuck"] = asyncio.Event()  # set only at the end: the server does not answer
    torrents = TorrentFetcher(FetchPolicy(max_bytes=1_000_000, timeout=1.0,
                                          allowed_networks=(ipaddress.ip_network(
                                              "127.0.0.1/32"),)))
    try:
        with pytest.raises(TorrentUrlError, match=r"from 127\.0\.0\.1: no answer within 1 s$"):
            await torrents.fetch(site.url("/files/stuck.torrent"))
    finally:
        site.holds["stuck"].set()  # the site's handler ends, so the site closes at once
        await torrents.close()
    assert site.requests == ["/files/stuck.torrent"]


async def test_an_add_cut_short_before_its_download_was_stored_is_added_at_the_next_read(
        store: Store, reader: FeedReader, site: FeedSite, tmp_path: Path) -> None:
    site.torrents = _torrents(tmp_path / "t", 1)
    site.feeds["show"] = nyaa(_items(site, ["e1"]))
    feed = await _feed(store, site)
    [e1] = _items(site, ["e1"])
    # What a stop between the "adding" mark (with the torrent's info-hash, as the reader
    # writes it) and the add leaves: no download.
    info_hash = torf.Torrent.read_stream(io.BytesIO(site.torrents["e1"])).infohash
    await store.feeds.mark(feed, entry_key(e1.guid), "adding", info_hash=info_hash,
                           title=e1.title)
    assert (await _read(reader, store, feed))[0] == 1
    assert await _names(store) == ["episode-01.mkv"]


async def test_the_backlog_posted_again_under_new_guids_is_not_downloaded(
        store: Store, reader: FeedReader, site: FeedSite, tmp_path: Path) -> None:
    site.torrents = _torrents(tmp_path / "t", 2)
    hashes = {name: torf.Torrent.read_stream(io.BytesIO(data)).infohash
              for name, data in site.torrents.items()}
    backlog = [dataclasses.replace(item, info_hash=hashes[name])
               for item, name in zip(_items(site, ["e1", "e2"]), ["e2", "e1"], strict=True)]
    feed = await store.feeds.create(
        chat_id=CHAT, user_id=7, name="show", url=site.url("/feeds/show"), filter_json="{}",
        next_poll_at=START, seen=[(entry_key(i.guid), i.info_hash, i.title) for i in backlog])
    site.feeds["show"] = nyaa([dataclasses.replace(item, guid=item.guid + "?v2")
                               for item in backlog])  # the site changed its GUIDs
    assert (await _read(reader, store, feed))[0] == 0
    assert await _names(store) == []


async def test_an_item_whose_torrent_link_fails_is_added_by_its_magnet(
        store: Store, reader: FeedReader, site: FeedSite, tmp_path: Path) -> None:
    torrents = _torrents(tmp_path / "t", 1)
    info_hash = torf.Torrent.read_stream(io.BytesIO(torrents["e1"])).infohash
    [e1] = _items(site, ["e1"])  # its .torrent is not served (an expired Jackett link)
    site.feeds["show"] = nyaa([dataclasses.replace(e1, info_hash=info_hash)])
    feed = await _feed(store, site)
    assert (await _read(reader, store, feed))[0] == 1
    [row] = await store.downloads.list()
    assert (row.info_hash, row.source_kind) == (info_hash, "magnet")
    assert site.answers["/files/e1.torrent", 404] == 1


async def test_the_same_feed_is_not_subscribed_twice_by_a_url_that_differs_in_form(
        store: Store, reader: FeedReader, site: FeedSite, clock: Clock) -> None:
    site.feeds["show"] = nyaa([])
    service = FeedService(store, reader, FeedConfig(interval=INTERVAL), clock)
    await service.subscribe(CHAT, 7, site.url("/feeds/show?apikey=k"), "show")
    for again in (f"HTTP://127.0.0.1:{site.port}/feeds/show?apikey=k",
                  site.url("/feeds/show?apikey=k#latest")):
        with pytest.raises(FeedError, match=r"^this chat has that feed already: show$"):
            await service.subscribe(CHAT, 7, again)
    assert [feed.name for feed in await service.list(CHAT)] == ["show"]


async def test_a_feed_failing_long_in_the_local_chat_is_told_by_the_log_once(
        store: Store, reader: FeedReader, site: FeedSite, clock: Clock,
        caplog: pytest.LogCaptureFixture) -> None:
    site.feeds["show"] = nyaa([])
    site.statuses["show"] = 500
    feed = await _feed(store, site, chat=0)
    for _ in range(8):
        _, after = await _read(reader, store, feed)
        clock.now = after.next_poll_at
    said = [r for r in caplog.records if r.levelname == "WARNING" and "not been read" in
            r.getMessage()]
    assert len(said) == 1 and "feed show of chat 0" in said[0].getMessage()
    assert await store.notices.pending() == []  # nobody to tell in a chat
