"""Feeds end to end: ``ariabot rss`` on a running ariabot, feeds shaped like nyaa's,
showRSS's, Jackett's and an Atom one served on 127.0.0.1 (tests/fakes/feeds.py), their
torrents and magnets from the local swarm. Each new item is added once, across a kill -9 in
the middle of a read and a restart; an unchanged feed costs its server a 304; bad feeds are
one clear line and store nothing.

These ariabots allow 127.0.0.1/32 (``ARIABOT_FETCH_ALLOW_NETWORKS``), as a user with a Jackett
on the same machine would, and read each feed every second.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakes.feeds import FakeItem, FeedSite, atom, jackett, nyaa, showrss
from tests.integration.test_cli import cli, downloads
from tests.integration.test_torrent_urls import _complete
from tests.runner import AriabotRun, until
from tests.swarm import Swarm, SwarmTorrent

KEY = "s3cr3tapikey"
"""An indexer's API key in the feed URLs: it never shows in an answer."""
NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"ARIABOT_DOWNLOAD_DIR": str(tmp_path / "downloads"), "ARIABOT_SEED_TIME": "0",
            "ARIABOT_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "ARIABOT_FEED_INTERVAL": "1",
            **extra}


def _item(site: FeedSite, torrent: SwarmTorrent, shape: str, age_hours: int) -> FakeItem:
    name = torrent.name.removesuffix(".bin")
    url = {"nyaa": site.url(f"/files/{name}.torrent"),
           "jackett": site.url(f"/dl/indexer/?jackett_apikey={KEY}&file={name}"),
           "atom": site.url(f"/files/{name}.torrent"), "showrss": None}[shape]
    return FakeItem(title=torrent.name, guid=f"https://tracker.example/view/{name}",
                    torrent_url=url, magnet=torrent.magnet if shape == "showrss" else None,
                    info_hash=torrent.info_hash if shape == "nyaa" else None,
                    size=torrent.total_bytes, published=NOW - timedelta(hours=age_hours))


RENDER = {"nyaa": nyaa, "showrss": showrss, "jackett": jackett, "atom": atom}


async def _rss(run: AriabotRun, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, run, "rss", *args)


async def _hashes(run: AriabotRun) -> list[str]:
    return sorted(row["info_hash"] for row in await asyncio.to_thread(downloads, run))


async def _reads(site: FeedSite, path: str, more: int) -> None:
    """Wait for ``more`` further reads of ``path`` (any answer)."""
    start = site.asked(path)
    await until(lambda: site.asked(path) >= start + more, 30,
                f"{more} reads of {path} (asked last: {site.requests[-8:]})")


async def test_each_shape_adds_each_new_item_once_across_a_kill_in_the_middle_of_a_read(
        tmp_path: Path, swarm: Swarm) -> None:
    made = {shape: [swarm.add(f"{shape}-{n}.bin", 64 * 1024, seed=2700 + 10 * i + n)
                    for n in range(3)] for i, shape in enumerate(RENDER)}
    site = FeedSite()
    async with site:
        site.torrents = {t.name.removesuffix(".bin"): t.torrent_bytes
                         for torrents in made.values() for t in torrents}
        for shape, (old, _, _) in made.items():
            site.feeds[shape] = RENDER[shape]([_item(site, old, shape, 10)])
        run = AriabotRun(tmp_path / "data", _env(tmp_path)).start()
        try:
            await asyncio.to_thread(run.wait_ready, 60)
            for shape in RENDER:
                added = await _rss(run, "add", site.url(f"/feeds/{shape}?apikey={KEY}"), shape)
                assert added.returncode == 0, added.stderr
                assert added.stdout == (f"subscribed to {shape} (127.0.0.1): 1 items in it "
                                        "now taken as seen\n")
            for shape in RENDER:
                await _reads(site, f"/feeds/{shape}", 2)
            assert await _hashes(run) == []  # the backlog is not downloaded
            assert all(site.answers[f"/feeds/{shape}", 200] == 1 for shape in RENDER)

            for shape, (old, new, _) in made.items():
                site.feeds[shape] = RENDER[shape]([_item(site, new, shape, 1),
                                                   _item(site, old, shape, 10)])
            wanted = sorted(torrents[1].info_hash for torrents in made.values())
            for shape in RENDER:
                await _reads(site, f"/feeds/{shape}", 3)
            assert await _hashes(run) == wanted
            # One whole answer per change; every other read was a 304.
            assert all(site.answers[f"/feeds/{shape}", 200] == 2 for shape in RENDER)
            assert all(site.answers[f"/feeds/{shape}", 304] >= 3 for shape in RENDER)
            listed = await _rss(run, "list")
            assert listed.returncode == 0 and KEY not in listed.stdout
            assert [line.split(" ")[0] for line in listed.stdout.splitlines()] == sorted(RENDER)

            nyaa_new = made["nyaa"][1]
            [row] = [r for r in await asyncio.to_thread(downloads, run)
                     if r["info_hash"] == nyaa_new.info_hash]
            done = await asyncio.to_thread(cli, run, "wait", str(row["id"]))
            assert done.returncode == 0, done.stdout + done.stderr
            assert _complete(tmp_path / "downloads", nyaa_new)

            # A third nyaa item whose .torrent is held: the read is killed in its middle.
            third = made["nyaa"][2]
            held = asyncio.Event()
            site.holds[third.name.removesuffix(".bin")] = held
            site.feeds["nyaa"] = nyaa([_item(site, third, "nyaa", 0),
                                       _item(site, nyaa_new, "nyaa", 1),
                                       _item(site, made["nyaa"][0], "nyaa", 10)])
            await until(lambda: any(p.startswith(f"/files/{third.name.removesuffix('.bin')}")
                                    for p in site.requests), 30, "the held .torrent asked for")
            run.signal(signal.SIGKILL)
            await asyncio.to_thread(run.wait_exit, 10)
            await asyncio.to_thread(run.stop)  # its aria2c too
            held.set()
            run = AriabotRun(tmp_path / "data", _env(tmp_path)).start()
            await asyncio.to_thread(run.wait_ready, 60)
            wanted = sorted([*wanted, third.info_hash])
            for shape in RENDER:
                await _reads(site, f"/feeds/{shape}", 3)
            assert await _hashes(run) == wanted  # the third once, nothing else again
        finally:
            await asyncio.to_thread(run.stop)
    assert "Traceback" not in run.output


async def test_every_bad_feed_is_one_clear_line_and_stores_nothing(
        tmp_path: Path, swarm: Swarm) -> None:
    torrent = swarm.add("bad-feeds.bin", 64 * 1024, seed=2790)
    bomb = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<rss version="2.0"><channel><title>&b;</title></channel></rss>')
    site = FeedSite()
    async with site:
        site.feeds["bomb"] = bomb
        site.feeds["pages"] = nyaa([FakeItem("Only a page", "https://tracker.example/p/1")])
        site.feeds["html-torrent"] = jackett([FakeItem(
            torrent.name, "https://tracker.example/view/h", torrent_url=site.url("/page"),
            published=NOW)])
        cases = {
            "/page": "it is a web page",
            "/huge/50": "it is larger than 4.8 MiB, the most a feed may be",
            "/feeds/bomb": "XML entities",
            "/feeds/pages": "none of the feed's 1 items names a torrent",
            "/loop": "more than 5 redirects",
            "/feeds/missing": "the server answered 404 Not Found",
        }
        run = AriabotRun(tmp_path / "data", _env(tmp_path)).start()
        try:
            await asyncio.to_thread(run.wait_ready, 60)
            for path, said in cases.items():
                refused = await _rss(run, "add", site.url(path), "x")
                assert refused.returncode == 1, (path, refused.stdout)
                [line] = refused.stderr.splitlines()
                assert said in line, (path, line)
            other = await _rss(run, "add", "ftp://127.0.0.1/feed.xml")
            assert other.stderr == "ariabot: only http:// and https:// feeds are read\n"
            option = await _rss(run, "add", site.url("/feeds/pages"), "x", "min:lots")
            assert option.returncode == 1 and "min:lots" in option.stderr
            listed = await _rss(run, "list", "--json")
            assert json.loads(listed.stdout) == []  # nothing stored

            # A feed whose item's .torrent link serves a web page: the feed is taken, the
            # item is not, and the feed says why.
            taken = await _rss(run, "add", site.url("/feeds/html-torrent"), "h", "newest:1")
            assert taken.returncode == 0, taken.stderr
            [feed] = json.loads((await _rss(run, "list", "--json")).stdout)
            assert feed["last_error"] == (f"{torrent.name}: cannot get the .torrent from "
                                          "127.0.0.1: it served a web page, not a .torrent file")
            assert await _hashes(run) == []
        finally:
            await asyncio.to_thread(run.stop)
    assert "Traceback" not in run.output
