"""/rss end to end: a running ``ariabot`` (its bot on the fake Bot API server) subscribes a
chat to feeds served on 127.0.0.1 (tests/fakes/feeds.py), and a ``newest:1`` match is
downloaded from the local swarm.

The feeds are read only when a command says so: ``ARIABOT_FEED_INTERVAL`` is an hour, so no
scheduled read happens during a test. A feed's link carries a passkey, as private trackers'
do: no message the bot sends may show it, only the feed's host.
"""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.handlers.rss import EMPTY
from bot.views import USAGE
from tests.fakes.feeds import FakeItem, FeedSite, nyaa, showrss
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer, Request
from tests.integration.test_bot import LONG, OTHER, USER
from tests.integration.test_cli import cli, downloads
from tests.runner import AriabotRun
from tests.swarm import Swarm

PASSKEY = "passkey=5f1e0c2a9b8d7e6f"
"""In every feed link: never in what the bot sends."""
GROUP = -100777
ADMIN = 1003
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _env(tmp_path: Path, server: FakeTelegramServer, **extra: str) -> dict[str, str]:
    return {"ARIABOT_DOWNLOAD_DIR": str(tmp_path / "downloads"), "ARIABOT_SEED_TIME": "0",
            "ARIABOT_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "ARIABOT_FEED_INTERVAL": "3600",
            "ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN, "ARIABOT_TELEGRAM_API_URL": server.url,
            "ARIABOT_ALLOWED_USERS": str(USER), **extra}


async def _say(server: FakeTelegramServer, chat: int, text: str, user: int | None = None,
               what: str = "", timeout: float = 15.0) -> Request:
    """``user`` sends ``text`` in ``chat``; returns the bot's next message there (containing
    ``what``: a feed's add may be told meanwhile)."""
    mark = server.mark()
    server.push_text(chat, user or chat, text)
    return await server.wait_for(
        "sendMessage", lambda r: r.status == 200 and r.params.get("chat_id") == chat
        and what in str(r.params.get("text")), since=mark, timeout=timeout)


def _text(request: Request) -> str:
    return str(request.params["text"])


def _sent_texts(server: FakeTelegramServer) -> list[str]:
    return [str(r.params.get("text")) for r in server.requests
            if r.method in ("sendMessage", "editMessageText")]


async def _started(run: AriabotRun) -> None:
    await asyncio.to_thread(run.wait_ready, 60)


async def _cli(run: AriabotRun, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, run, *args)


async def test_feeds_are_subscribed_listed_changed_and_removed_and_newest_is_downloaded(
        tmp_path: Path, swarm: Swarm) -> None:
    wanted = swarm.add("Show.S01E02.1080p.WEB-DL.mkv", 128 * 1024, seed=3101)
    async with FeedSite() as site, FeedSite() as other, FakeTelegramServer() as server:
        site.torrents["e2"] = wanted.torrent_bytes
        # The newest item is not "web dl": newest:1 takes the newest *match*, E02.
        site.feeds["show"] = nyaa([
            FakeItem("Show.S01E03.720p.HDTV", "https://tracker.example/view/3",
                     torrent_url=site.url("/files/e3.torrent"), published=WHEN),
            FakeItem("Show.S01E02.1080p.WEB-DL", "https://tracker.example/view/2",
                     torrent_url=site.url("/files/e2.torrent"),
                     published=WHEN - timedelta(days=7)),
            FakeItem("Show.S01E01.1080p.WEB-DL", "https://tracker.example/view/1",
                     torrent_url=site.url("/files/e1.torrent"),
                     published=WHEN - timedelta(days=14)),
        ])
        other.feeds["anime"] = showrss([
            FakeItem(f"[Group] Anime - {n:02d} [1080p]", f"anime-{n}",
                     magnet=swarm.dead_magnet(f"anime-{n}"), published=WHEN - timedelta(hours=n))
            for n in range(1, 6)])
        run = AriabotRun(tmp_path / "data", _env(tmp_path, server)).start()
        try:
            await _started(run)
            # The backlog is taken as seen: nothing is downloaded, the host is named.
            answer = await _say(server, USER,
                                f"/rss add {other.url('/feeds/anime?' + PASSKEY)} anime")
            assert _text(answer) == (
                "Subscribed to “anime” (127.0.0.1): 5 items in it now are taken as seen; new "
                "matches are added as they come.\nFilter: everything.")
            assert answer.params["link_preview_options"] == {"is_disabled": True}
            assert await asyncio.to_thread(downloads, run) == []

            # newest:1 with a quoted pattern: the newest "web dl" item, from the swarm.
            answer = await _say(server, USER, f"/rss add {site.url('/feeds/show?' + PASSKEY)} "
                                "newest:1 include:“web dl”", what="Subscribed", timeout=LONG)
            said = _text(answer)
            assert said.startswith("Subscribed to “nyaa-home-torrent-file-rss” (127.0.0.1): "
                                   "3 items in it now, the newest 1 match added"), said
            [added] = await asyncio.to_thread(downloads, run)
            assert added["name"] == wanted.name
            assert [p for p in site.requests if p.startswith("/files/")] == ["/files/e2.torrent"]
            done = await _cli(run, "wait", str(added["id"]))
            assert done.returncode == 0, done.stdout + done.stderr
            name = "nyaa-home-torrent-file-rss"  # from the feed's title
            # The chat is told (bot/news.py): the add, then its completion; nothing after.
            for told in (f"from feed “{name}”", f"{wanted.name}</b> is downloaded"):
                await server.wait_for("sendMessage", lambda r, told=told: r.params.get(
                    "chat_id") == USER and told in str(r.params.get("text")), timeout=LONG)

            listing = _text(await _say(server, USER, "/rss list"))
            assert listing.startswith("Feeds in this chat:\n\nanime (127.0.0.1): everything · "
                                      "0 added · next read in"), listing
            assert f"\n\n{name} (127.0.0.1): include \"web dl\" · 1 added, the last" in listing
            bare = _text(await _say(server, USER, "/rss"))  # the same list (its times move)
            assert [line.split(" · ")[0] for line in bare.splitlines()] == [
                line.split(" · ")[0] for line in listing.splitlines()]

            assert _text(await _say(server, USER, f"/rss pause {name}")) == (
                f"⏸ The feed “{name}” is paused: it is not read until /rss resume.")
            assert "· paused" in _text(await _say(server, USER, "/rss list"))
            assert _text(await _say(server, USER, f"/rss resume {name}")) == (
                f"▶ The feed “{name}” is resumed and read now.")
            assert _text(await _say(server, USER, "/rss filter anime exclude:cam max:2GB")) == (
                "The feed “anime” now takes: exclude \"cam\" · at most 1.9 GiB (from its next "
                "items on).")
            assert _text(await _say(server, USER, "/rss filter anime")) == (
                "The feed “anime” now takes: everything (from its next items on).")
            assert _text(await _say(server, USER, "/rss remove anime")) == (
                "✖ The feed “anime” (127.0.0.1) is removed; what it added stays in /status.")
            assert _text(await _say(server, USER, "/rss remove anime")) == (
                "This chat has no feed named 'anime'.")
            listing = _text(await _say(server, USER, "/rss list"))
            assert "anime" not in listing and name in listing
            assert _text(await _say(server, USER, "/rss frobnicate")) == USAGE["rss"]

            assert not [text for text in _sent_texts(server) if PASSKEY in text]
        finally:
            await asyncio.to_thread(run.stop)
    assert "Traceback" not in run.output


async def test_refusals_are_one_line_store_nothing_and_members_may_not_change_feeds(
        tmp_path: Path) -> None:
    async with FeedSite() as site, FakeTelegramServer() as server:
        site.feeds["shared"] = showrss([FakeItem("Film.2026.1080p", "film",
                                                 magnet="magnet:?xt=urn:btih:" + "ab" * 20)])
        feed = site.url("/feeds/shared?" + PASSKEY)
        server.set_member(GROUP, ADMIN, "administrator")
        server.set_member(GROUP, OTHER, "member")
        server.set_member(GROUP, USER, "member")
        run = AriabotRun(tmp_path / "data", _env(
            tmp_path, server, ARIABOT_ALLOWED_USERS=f"{USER},{OTHER},{ADMIN}",
            ARIABOT_ALLOWED_CHATS=f"{USER},{GROUP}")).start()
        try:
            await _started(run)
            assert _text(await _say(server, USER, "/rss")) == USAGE["rss"]  # none yet
            for text, said in (
                (f"/rss add {site.url('/page?' + PASSKEY)}",
                 "It is a web page, not an RSS or Atom feed."),
                (f"/rss add {feed} min:lots", "'min:lots' is not a size: expected min:SIZE, a "
                 "size such as 700MB, 1.5GB or 4GiB."),
                (f"/rss add {feed} size:big", "Unknown option 'size:big': expected "
                 "include:PATTERN, exclude:PATTERN, min:SIZE, max:SIZE or newest:N."),
                (f"/rss add {feed} name-too-long-{'x' * 40}",
                 "A feed's name is 1 to 32 letters, digits, '.', '-' or '_'."),
                (f'/rss add {feed} include:"web dl', "A quote is not closed. " + USAGE["rss"]),
                ("/rss add", USAGE["rss"]),
                ("/rss pause", USAGE["rss"]),
            ):
                assert _text(await _say(server, USER, text)) == said, text
            assert _text(await _say(server, USER, "/rss list")) == EMPTY

            # In a group: a member may subscribe and look; the feed is changed by the one who
            # subscribed it and by an admin, not by another member.
            answer = _text(await _say(server, GROUP, f"/rss add {feed} shared", user=OTHER))
            assert answer.startswith("Subscribed to “shared” (127.0.0.1): 1 item in it now is "
                                     "taken as seen"), answer
            for command in ("/rss pause shared", "/rss filter shared include:x",
                            "/rss remove shared"):
                assert _text(await _say(server, GROUP, command, user=USER)) == (
                    "Only the member who added this feed or an admin of this chat can change "
                    "it."), command
            assert _text(await _say(server, GROUP, "/rss pause shared", user=OTHER)).startswith(
                "⏸ The feed “shared” is paused")
            assert "shared (127.0.0.1)" in _text(await _say(server, GROUP, "/rss list",
                                                            user=OTHER))
            assert _text(await _say(server, GROUP, "/rss remove shared", user=ADMIN)) == (
                "✖ The feed “shared” (127.0.0.1) is removed; what it added stays in /status.")
            assert _text(await _say(server, GROUP, "/rss list", user=OTHER)) == EMPTY
            assert await asyncio.to_thread(downloads, run) == []
            assert not [text for text in _sent_texts(server) if PASSKEY in text]
        finally:
            await asyncio.to_thread(run.stop)
    assert "Traceback" not in run.output
