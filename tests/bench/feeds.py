"""Benchmark 12: feeds: what reading many feeds costs their servers and ariabot.

One ``ariabot run`` reads :data:`FEEDS` nyaa-shaped feeds of :data:`ITEMS` items each (25
per chat), served on 127.0.0.1 (tests/fakes/feeds.py, with ETag and Last-Modified), every 2
s (the interval is short only to make rounds quick). Measured:

* the requests per read, and how many of them were 304s with no body, over :data:`ROUNDS`
  rounds (smoke: 1) of unchanged feeds (the target: every read after the first is a 304);
* ariabot's RSS with no feed and with :data:`FEEDS` subscribed (their backlogs stored as
  seen) after those rounds (the target: under 30 MiB more);
* the adds per read when one feed publishes :data:`NEW` new items (smoke: 15, two reads'
  worth) with ``ARIABOT_FEED_MAX_ADDS`` = :data:`MAX_ADDS` (the target: at most that many per
  read, all added in the end, each once): each add fetches its ``.torrent`` once, so the
  adds of one read are the ``.torrent`` requests between two requests of the feed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import torf

from tests.bench.common import BenchContext, BenchResult, Row, rss, start_ariabot, wait_for
from tests.fakes.feeds import FakeItem, FeedSite, nyaa

__all__ = ["NAME", "TITLE", "run"]

NAME = "feeds"
TITLE = "12. Feeds: polite reads, bounded adds, memory"
MIB = 1024 * 1024
FEEDS = 100
ITEMS = 50
ROUNDS = 5
NEW = 25
MAX_ADDS = 10
RSS_TARGET = 30 * MIB
T = TypeVar("T")


class _SiteThread:
    """The feed site on an event loop of its own thread (the benchmark is synchronous)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.site = FeedSite()
        self.call(self.site.__aenter__())

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def close(self) -> None:
        self.call(self.site.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def _items(site: FeedSite, feed: str, count: int, first: int = 0) -> list[FakeItem]:
    return [FakeItem(title=f"{feed} episode {n}", guid=f"https://bench.example/{feed}/{n}",
                     torrent_url=site.url(f"/files/{feed}-{n}.torrent"), size=700 * MIB)
            for n in range(first + count - 1, first - 1, -1)]


def _torrents(folder: Path, feed: str, numbers: range) -> dict[str, bytes]:
    made = {}
    for n in numbers:
        content = folder / f"{feed}-{n}.mkv"
        content.write_bytes(n.to_bytes(4, "big") * 256)
        torrent = torf.Torrent(path=content, trackers=["http://127.0.0.1:1/announce"])
        torrent.generate()
        made[f"{feed}-{n}"] = torrent.dump()
    return made


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring)."""
    result = BenchResult()
    feeds, rounds, new = ctx.pick(FEEDS, 20), ctx.pick(ROUNDS, 1), ctx.pick(NEW, 15)
    folder = ctx.path("feeds")
    serving = _SiteThread()
    site = serving.site
    ariabot, _, client = start_ariabot(folder / "data", {
        "ARIABOT_DOWNLOAD_DIR": str(folder / "downloads"),
        "ARIABOT_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "ARIABOT_FEED_INTERVAL": "2",
        "ARIABOT_FEED_MAX_ADDS": str(MAX_ADDS)})
    try:
        assert ariabot.process is not None
        pid = ariabot.process.pid
        time.sleep(1.0)  # let start-up's allocations settle before the baseline
        idle = rss(pid)
        names = [f"f{n:03d}" for n in range(feeds)]
        for name in names:
            site.feeds[name] = nyaa(_items(site, name, ITEMS))
        started = time.monotonic()
        for number, name in enumerate(names):  # 25 feeds per chat (a chat has at most 50)
            answer = client.request("rss", action="add", chat=number // 25, name=name,
                                    url=site.url(f"/feeds/{name}"))
            assert answer.get("ok"), answer
        subscribe_ms = (time.monotonic() - started) * 1000 / feeds
        paths = [f"/feeds/{name}" for name in names]
        wait_for(lambda: all(site.asked(p) >= 1 + rounds for p in paths),
                 timeout=60 + 10 * rounds, what=f"{rounds} reads of every feed")
        reads = sum(site.asked(p) - 1 for p in paths)
        not_modified = sum(site.answers[p, 304] for p in paths)
        with_feeds = rss(pid)

        # One feed publishes new items: adds per read, each once.
        feed = names[0]
        site.torrents.update(_torrents(folder, feed, range(ITEMS, ITEMS + new)))
        mark = len(site.requests)
        site.feeds[feed] = nyaa(_items(site, feed, ITEMS + new))
        wanted = {f"/files/{feed}-{n}.torrent" for n in range(ITEMS, ITEMS + new)}
        wait_for(lambda: wanted <= set(site.requests), timeout=120, what="every new item")
        wait_for(lambda: len(client.request("list").get("torrents", [])) >= new,
                 timeout=60, what="the downloads listed")
        per_read: list[int] = []
        for path in site.requests[mark:]:
            if path == f"/feeds/{feed}":
                per_read.append(0)
            elif path in wanted and per_read:
                per_read[-1] += 1
        per_read = [count for count in per_read if count] or [0]
        fetched = [p for p in site.requests[mark:] if p in wanted]
        listed = len(client.request("list").get("torrents", []))
    finally:
        ariabot.stop()
        serving.close()
    growth = with_feeds - idle
    share = not_modified / reads if reads else 0.0
    result.figures.update(feeds=feeds, items=ITEMS, rounds=rounds, reads=reads,
                          not_modified=not_modified, idle_rss=idle, rss_with_feeds=with_feeds,
                          subscribe_ms=subscribe_ms, adds_per_read=per_read,
                          torrent_fetches=len(fetched), listed=listed)
    result.rows += [
        Row(NAME, f"reads of {feeds} unchanged feeds ({rounds} rounds)", reads, unit="reads"),
        Row(NAME, "  answered 304 (no body)", share * 100, unit="%", target="100",
            met=not_modified == reads),
        Row(NAME, f"RSS with {feeds} feeds of {ITEMS} items (ref: none)", with_feeds / MIB,
            idle / MIB, "MiB", target="< +30 MiB", met=growth < RSS_TARGET),
        Row(NAME, "subscribe (one read, backlog stored)", subscribe_ms, unit="ms"),
        Row(NAME, f"adds per read, {new} new, limit {MAX_ADDS}",
            max(per_read), unit="max", target=f"<= {MAX_ADDS}, all once",
            met=max(per_read) <= MAX_ADDS and len(fetched) == new and listed == new,
            note=" ".join(str(count) for count in per_read)),
    ]
    return result
