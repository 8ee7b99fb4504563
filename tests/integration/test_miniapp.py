"""The Mini App's API through the real path: the link server as ``ariabot run`` starts it
(the composition root's own function), the bot's rules from the real bot against the fake
Bot API, the real manager and aria2c, downloads from the local swarm.

initData is signed here with the test bot's token, as Telegram signs it; the browser's view
of the same pages is in ``test_miniapp_browser.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from init_data_py import sign

from manager import TorrentState
from supervisor.config import Settings
from supervisor.root import _start_links
from tests.fakes.telegram_api import DEFAULT_TOKEN
from tests.integration.test_bot import MIB, OTHER, USER, Stack, running_stack
from tests.integration.test_manager import wait_state
from tests.integration.test_mirror import mirror_env
from tests.swarm import Swarm
from web import LinkServer

GROUP = -100777
ADMIN = 1003  # allowed, an administrator of GROUP
OUTSIDER = 1004  # allowed, not in GROUP
PUBLIC = "https://127.0.0.1:9"  # what the bot advertises; nothing connects to it


def init_data(user: int, *, start_param: str | None = None, token: str = DEFAULT_TOKEN,
              auth_date: float | None = None) -> str:
    """initData as Telegram hands it to the page, signed with ``token``."""
    fields = {"user": json.dumps({"id": user, "first_name": f"user{user}"}),
              "query_id": "q"}
    if start_param is not None:
        fields["start_param"] = start_param
    return sign(fields, token, auth_date=auth_date)


@dataclass
class App:
    """The Mini App of a running stack, asked over HTTP as the page asks it."""

    stack: Stack
    links: LinkServer
    http: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.links.port}/app/"

    async def ask(self, method: str, path: str, user: int = USER, *, body: Any = None,
                  start_param: str | None = None, auth: str | None = None,
                  ) -> tuple[int, dict[str, Any]]:
        header = auth if auth is not None else f"tma {init_data(user, start_param=start_param)}"
        async with self.http.request(method, self.base + path, json=body,
                                     headers={"Authorization": header}) as answer:
            return answer.status, await answer.json()


@asynccontextmanager
async def running_app(engine_settings: Callable[..., Settings], **env: str) -> AsyncIterator[App]:
    async with running_stack(
            engine_settings,
            ARIABOT_PUBLIC_URL=PUBLIC, ARIABOT_HTTP_LISTEN="127.0.0.1:0",
            ARIABOT_ALLOWED_USERS=f"{USER},{OTHER},{ADMIN},{OUTSIDER}",
            ARIABOT_ALLOWED_CHATS=f"{GROUP},{USER},{OTHER},{ADMIN},{OUTSIDER}", **env) as stack:
        for user, status in ((1, "creator"), (ADMIN, "administrator"), (USER, "member"),
                             (OTHER, "member")):
            stack.server.set_member(GROUP, user, status)
        links = await _start_links(stack.settings, stack.manager, stack.bot.web_rights(),
                                   stack.bot.web_sender())
        try:
            async with aiohttp.ClientSession() as http:
                yield App(stack, links, http)
        finally:
            await links.stop()


@pytest.fixture
async def app(engine_settings: Callable[..., Settings],
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_app(engine_settings) as built:
        yield built


class Events:
    """The page's event stream, read frame by frame."""

    def __init__(self, answer: aiohttp.ClientResponse) -> None:
        self._answer = answer

    async def next(self, timeout: float = 30.0) -> tuple[str, dict[str, Any]]:
        """The next event (pings skipped): its name and its data."""
        async with asyncio.timeout(timeout):
            name, data = "", ""
            while True:
                line = (await self._answer.content.readline()).decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = line.removeprefix("data: ")
                elif not line and name:
                    return name, json.loads(data)
                elif not line and not self._answer.content.at_eof():
                    continue
                if self._answer.content.at_eof():
                    raise AssertionError("the stream ended")

    async def ended(self, timeout: float = 10.0) -> None:
        """Return when the server ended the stream."""
        async with asyncio.timeout(timeout):
            while await self._answer.content.readline():
                pass

    async def until(self, check: Callable[[str, dict[str, Any]], bool],
                    timeout: float = 60.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                name, data = await self.next(timeout)
                if check(name, data):
                    return data


@asynccontextmanager
async def events(app: App, user: int = USER, **signing: Any) -> AsyncIterator[Events]:
    async with app.http.get(app.base + "api/events", headers={
            "Authorization": f"tma {init_data(user, **signing)}"}) as answer:
        assert answer.status == 200, await answer.text()
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        yield Events(answer)


async def test_a_chat_is_followed_and_driven_from_its_page(app: App, swarm: Swarm) -> None:
    manager = app.stack.manager
    seeded = swarm.add("season", [2 * MIB, 1 * MIB, 1 * MIB, 1 * MIB], seed=91)
    with swarm.throttled(256 * 1024):
        added = await manager.add(seeded.torrent_bytes, chat_id=USER, user_id=USER)
        number = added.torrent.id
        assert await app.ask("GET", "api/me") == (200, {
            "user": {"id": USER, "name": f"user{USER}"},
            "chat": {"id": USER, "title": "Your downloads", "private": True},
            "can": {"link": True, "send": True, "mirror": False}})
        async with events(app) as stream:
            name, snapshot = await stream.next()
            assert name == "snapshot"
            assert [d["id"] for d in snapshot["downloads"]] == [number]
            # Progress is pushed as it moves: nothing polls from the page.
            moving = await stream.until(lambda n, d: n == "download" and d["id"] == number
                                        and d["completed_bytes"] > 0)
            assert 0 < moving["progress"] < 1 and moving["may_act"] is True

            status, listed = await app.ask("GET", f"api/downloads/{number}/files")
            assert status == 200 and listed["editable"] is True
            assert [(f["index"], f["path"], f["length"]) for f in listed["files"]] == [
                (1, "season/part01.bin", 2 * MIB), (2, "season/part02.bin", MIB),
                (3, "season/part03.bin", MIB), (4, "season/sub/part04.bin", MIB)]
            # Untick files 2 and 4: aria2 is told, in one action.
            status, answer = await app.ask("POST", f"api/downloads/{number}/files",
                                           body={"selected": [1, 3]})
            assert status == 200, answer
            aria2_view = await manager.files(number, USER)
            assert [f.selected for f in aria2_view] == [True, False, True, False]

            status, answer = await app.ask("POST", f"api/downloads/{number}/pause")
            assert (status, answer["download"]["state"]) == (200, "paused")
            await stream.until(lambda n, d: n == "download" and d["state"] == "paused")
            status, answer = await app.ask("POST", f"api/downloads/{number}/resume")
            assert status == 200 and answer["download"]["state"] != "paused"

            status, answer = await app.ask("POST", f"api/downloads/{number}/cancel",
                                           body={"delete_files": True})
            assert (status, answer) == (200, {
                "message": f"#{number} is cancelled; its files are deleted."})
            assert await stream.until(lambda n, d: n == "removed") == {"id": number}
    assert (await manager.get(number, USER)).state is TorrentState.CANCELLED
    assert not (app.stack.settings.download_dir / "torrents" / str(USER) / "season").exists()
    assert await app.ask("GET", "api/downloads") == (200, {"downloads": []})


async def test_a_purged_download_leaves_the_open_page(app: App, swarm: Swarm) -> None:
    """A purge (``ariabot purge``, the daily retention) takes finished downloads off the list:
    an open page drops their cards at once, not at its next reconnection."""
    manager = app.stack.manager
    seeded = swarm.add("purged.bin", MIB, seed=99)
    number = (await manager.add(seeded.torrent_bytes, chat_id=USER, user_id=USER)).torrent.id
    await wait_state(app.stack, number, TorrentState.COMPLETE)
    async with events(app) as stream:
        name, snapshot = await stream.next()
        assert (name, [d["id"] for d in snapshot["downloads"]]) == ("snapshot", [number])
        assert await manager.purge_finished(timedelta(0)) == 1
        assert await stream.until(lambda n, d: n == "removed") == {"id": number}
    assert await app.ask("GET", "api/downloads") == (200, {"downloads": []})


async def test_the_menu_button_opens_the_mini_app(app: App) -> None:
    assert app.stack.server.menu_button() == {
        "type": "web_app", "text": "Downloads", "web_app": {"url": f"{PUBLIC}/app/"}}


async def test_a_group_is_seen_by_its_members_and_changed_by_the_adder_and_admins(
    app: App, swarm: Swarm,
) -> None:
    manager, group = app.stack.manager, f"c{GROUP}"
    seeded = swarm.add("shared", 3 * MIB, seed=92)
    with swarm.throttled(128 * 1024):
        number = (await manager.add(seeded.torrent_bytes, chat_id=GROUP,
                                    user_id=USER)).torrent.id
        status, me = await app.ask("GET", "api/me", OTHER, start_param=group)
        assert (status, me["chat"]["id"], me["chat"]["private"]) == (200, GROUP, False)
        status, listed = await app.ask("GET", "api/downloads", OTHER, start_param=group)
        assert [(d["id"], d["may_act"]) for d in listed["downloads"]] == [(number, False)]

        # A member who neither added it nor administers the group: refused, nothing done.
        for action in ("pause", "resume", "cancel", "files"):
            body = {"selected": [1]} if action == "files" else {}
            status, answer = await app.ask("POST", f"api/downloads/{number}/{action}", OTHER,
                                           start_param=group, body=body)
            assert (status, answer) == (403, {"error": f"Only the user who added #{number} "
                                                       "or an admin of this chat can do that."})
        assert (await manager.get(number, GROUP)).state is not TorrentState.PAUSED

        # An allowed user outside the group sees nothing of it.
        assert await app.ask("GET", "api/downloads", OUTSIDER, start_param=group) == (
            403, {"error": "Only the members of that group see its downloads."})
        # The group's admin may act on it.
        status, answer = await app.ask("POST", f"api/downloads/{number}/pause", ADMIN,
                                       start_param=group)
        assert (status, answer["download"]["state"]) == (200, "paused")
        # From a private chat, the group's download is not found.
        status, answer = await app.ask("POST", f"api/downloads/{number}/resume", ADMIN)
        assert (status, answer) == (404, {"error": f"No download #{number} in this chat."})
    await manager.cancel(number, GROUP, delete_files=True)


async def test_forged_expired_foreign_and_hostile_requests_change_nothing(
    app: App, swarm: Swarm,
) -> None:
    manager = app.stack.manager
    seeded = swarm.add("kept", 1 * MIB, seed=93)
    number = (await manager.add(seeded.torrent_bytes, chat_id=USER, user_id=USER)).torrent.id
    forged = init_data(USER, token="42:NOT-THE-BOTS")
    stale = init_data(USER, auth_date=1_600_000_000)
    not_from_telegram = {"error": "This request is not from Telegram."}
    for auth, answer in ((f"tma {forged}", not_from_telegram),
                         (f"tma {stale}", {"error": "This page was opened too long ago: close "
                                                    "it and open it again from the bot."}),
                         ("", {"error": "This page works only when opened from Telegram."})):
        assert await app.ask("POST", f"api/downloads/{number}/cancel", auth=auth,
                             body={"delete_files": True}) == (401, answer)
    # A stranger, properly signed, is refused by the bot's allow-list.
    status, answer = await app.ask("GET", "api/me", 666)
    assert status == 403 and "may not use this bot" in answer["error"]
    # Another private chat does not see, or reach, this one's download.
    assert await app.ask("GET", "api/downloads", OTHER) == (200, {"downloads": []})
    assert (await app.ask("POST", f"api/downloads/{number}/pause", OTHER))[0] == 404
    # Bad bodies: one sentence each, nothing done.
    for path, body in ((f"api/downloads/{number}/files", {"selected": []}),
                       (f"api/downloads/{number}/files", {"selected": ["1"]}),
                       (f"api/downloads/{number}/files", {"selected": [99]}),
                       (f"api/downloads/{number}/cancel", {"delete_files": "yes"}),
                       (f"api/downloads/{number}/cancel", [1])):
        status, answer = await app.ask("POST", path, body=body)
        assert status == 400 and set(answer) == {"error"}, (path, body, answer)
    deep = b"[" * 30000 + b"]" * 30000  # valid JSON, deeper than Python's recursion
    async with app.http.post(app.base + f"api/downloads/{number}/cancel", data=deep, headers={
            "Authorization": f"tma {init_data(USER)}",
            "Content-Type": "application/json"}) as answer:
        assert (answer.status, await answer.json()) == (
            400, {"error": "This request is not valid JSON."})
    assert (await manager.get(number, USER)).state is not TorrentState.CANCELLED
    assert [f.selected for f in await manager.files(number, USER)] == [True]
    # A burst far past a page's needs is told to wait.
    statuses = [(await app.ask("GET", "api/me"))[0] for _ in range(40)]
    assert 429 in statuses and statuses[0] == 200


async def test_open_pages_do_not_take_the_servers_request_slots(app: App) -> None:
    """16 streams (the server's bound on requests at once) stay open, and the API still
    answers; a user's fifth page (a reload) ends their oldest stream, not the new one."""
    async with contextlib.AsyncExitStack() as pages:
        opened: list[Events] = []
        for user in (USER, OTHER, ADMIN, OUTSIDER):
            for _ in range(4):
                opened.append(stream := await pages.enter_async_context(events(app, user)))
                assert (await stream.next())[0] == "snapshot"
        assert (await app.ask("GET", "api/me"))[0] == 200
        async with events(app) as fifth:
            assert (await fifth.next())[0] == "snapshot"
            await opened[0].ended()


def _login_of(text: str) -> str:
    """The one-time login a /web answer carries (its link's fragment)."""
    [href] = re.findall(r'href="([^"]+)"', text)
    address, _, fragment = html.unescape(href).partition("#")
    assert address == f"{PUBLIC}/app/"
    return unquote(fragment.removeprefix("login="))


async def test_web_gives_a_login_link_that_works_once(app: App) -> None:
    answer = await app.stack.say(USER, "/web")
    assert "works once, in the next 10 minutes" in answer.params["text"]
    login = _login_of(answer.params["text"])
    async with app.http.post(app.base + "api/login", json={"login": login}) as first:
        assert first.status == 200
        session = (await first.json())["session"]
    assert await app.ask("GET", "api/me", auth=f"tma {session}") == (200, {
        "user": {"id": USER, "name": f"User{USER}"},
        "chat": {"id": USER, "title": "Your downloads", "private": True},
        "can": {"link": True, "send": True, "mirror": False}})
    # Whoever has the link after its use gets nothing; the link is no session either.
    async with app.http.post(app.base + "api/login", json={"login": login}) as again:
        assert (again.status, await again.json()) == (401, {
            "error": "This login link was already used: send /web to the bot for a new one."})
    assert (await app.ask("GET", "api/me", auth=f"tma {login}"))[0] == 401


async def test_web_in_a_group_is_answered_in_private_and_opens_the_group(app: App) -> None:
    server = app.stack.server
    mark = server.mark()
    answer = await app.stack.say(GROUP, "/web", user=USER)
    assert answer.params["text"] == ("I sent you a login link for this group's downloads in "
                                     "our private chat.")
    private = await app.stack.answer(USER, mark, "Open your downloads")
    async with app.http.post(app.base + "api/login",
                             json={"login": _login_of(private.params["text"])}) as redeemed:
        session = (await redeemed.json())["session"]
    status, me = await app.ask("GET", "api/me", auth=f"tma {session}")
    assert (status, me["chat"]["id"], me["chat"]["private"]) == (200, GROUP, False)

    server.block(OTHER)  # never started a private chat with the bot
    answer = await app.stack.say(GROUP, "/web", user=OTHER)
    assert answer.params["text"] == ("I cannot write to you: start a private chat with me, "
                                     "then send /web here again.")


async def test_progress_and_completion_messages_open_the_mini_app_in_private_chats_only(
    app: App, swarm: Swarm,
) -> None:
    server, button = app.stack.server, [{"text": "📱 Open app",
                                         "web_app": {"url": f"{PUBLIC}/app/"}}]
    seeded = swarm.add("opened", 1 * MIB, seed=94)
    mark = server.mark()
    server.push_document(USER, USER, seeded.torrent_bytes, "opened.torrent")
    progress = await app.stack.answer(USER, mark)
    assert progress.params["reply_markup"]["inline_keyboard"][-1] == button
    completion = await app.stack.answer(USER, mark, "is downloaded", timeout=60)
    assert completion.params["reply_markup"]["inline_keyboard"][-1] == button

    shared = swarm.add("in-group", 1 * MIB, seed=97)
    mark = server.mark()
    server.push_document(GROUP, USER, shared.torrent_bytes, "in-group.torrent")
    progress = await app.stack.answer(GROUP, mark)  # refused by Telegram if it had one
    assert all("web_app" not in b for row in progress.params["reply_markup"]["inline_keyboard"]
               for b in row)


async def test_a_finished_download_is_linked_and_sent_to_the_chat_from_the_page(
    app: App, swarm: Swarm,
) -> None:
    server, seeded = app.stack.server, swarm.add("done.bin", 1 * MIB, seed=98)
    mark = server.mark()
    server.push_document(USER, USER, seeded.torrent_bytes, "done.torrent")
    number = int((await app.stack.answer(USER, mark)).params["text"].splitlines()[0]
                 .rsplit("#", 1)[1])
    await app.stack.answer(USER, mark, "is downloaded", timeout=60)
    status, me = await app.ask("GET", "api/me")
    assert me["can"] == {"link": True, "send": True, "mirror": False}
    # Finished, aria2 lets it go (the poll after the stored completion purges aria2's copy):
    # its files are still listed, and not to choose.
    await app.stack.manager.poll_once()
    assert await app.ask("GET", f"api/downloads/{number}/files") == (200, {
        "files": [{"index": 1, "path": "done.bin", "length": MIB, "completed": MIB,
                   "selected": True}], "editable": False})

    status, made = await app.ask("POST", f"api/downloads/{number}/link")
    assert status == 200 and made["url"].startswith(f"{PUBLIC}/d/")
    page = made["url"].replace(PUBLIC, f"http://127.0.0.1:{app.links.port}")
    async with app.http.get(page) as opened:  # the download's page, with its file
        assert opened.status == 200 and "done.bin" in await opened.text()

    mark = server.mark()
    assert await app.ask("POST", f"api/downloads/{number}/send") == (
        200, {"message": f"Sending #{number} (1 file) to the chat."})
    sent = await server.wait_for("sendDocument", lambda r: r.params.get("chat_id") == USER,
                                 since=mark, timeout=30)
    document = sent.params["document"]
    assert (document.filename, document.size) == ("done.bin", MIB)
    assert hashlib.sha1(seeded.content_path.read_bytes()).hexdigest() == document.sha1

    assert await app.ask("POST", f"api/downloads/{number}/mirror") == (
        409, {"error": "Mirroring is not set up on this ariabot (the owner sets "
                       "ARIABOT_RCLONE_REMOTE)."})


async def test_a_finished_download_is_mirrored_from_the_page(
    engine_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
    swarm: Swarm, tmp_path: Path,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    target = tmp_path / "nas-folder"
    env = mirror_env(tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}")
    async with running_app(engine_settings, **env) as app:
        server, seeded = app.stack.server, swarm.add("to-cloud.bin", 1 * MIB, seed=99)
        mark = server.mark()
        server.push_document(USER, USER, seeded.torrent_bytes, "to-cloud.torrent")
        await app.stack.answer(USER, mark, "is downloaded", timeout=60)
        [number] = [d["id"] for d in (await app.ask("GET", "api/downloads"))[1]["downloads"]]
        assert (await app.ask("GET", "api/me"))[1]["can"]["mirror"] is True
        status, answer = await app.ask("POST", f"api/downloads/{number}/mirror")
        assert (status, answer["message"]) == (
            200, f"#{number} is being uploaded to the cloud.")
        await app.stack.answer(USER, mark, "is uploaded", timeout=60)
        [copy] = list(target.rglob("to-cloud.bin"))
        assert copy.read_bytes() == seeded.content_path.read_bytes()


async def test_an_open_page_is_ended_when_its_user_leaves_the_group_or_its_data_expires(
    app: App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checks of a request run again on an open stream; the page then reconnects and
    is refused."""
    monkeypatch.setattr("web.miniapp.stream.PING_SECONDS", 0.5)
    monkeypatch.setattr("bot.webrights.MEMBERS_TTL", 0.0)
    async with events(app, OTHER, start_param=f"c{GROUP}") as stream:
        assert (await stream.next())[0] == "snapshot"
        app.stack.server.set_member(GROUP, OTHER, "kicked")
        await stream.ended()
    assert (await app.ask("GET", "api/me", OTHER, start_param=f"c{GROUP}"))[0] == 403

    max_age = app.stack.settings.miniapp_max_age
    expiring = init_data(USER, auth_date=time.time() - max_age + 2)  # good for 2 s more
    async with app.http.get(app.base + "api/events",
                            headers={"Authorization": f"tma {expiring}"}) as answer:
        assert answer.status == 200
        await Events(answer).ended(timeout=10)
