"""The real stack the promises machine drives, and the read-only views it checks them with.

One :class:`Stack` per Hypothesis example: a fresh data dir, download dir and mirror
destination, a :class:`FaultyTelegram` on its own event-loop thread (the machine is
synchronous; the fake server is asyncio), and ``ariabot run`` as a child process that the
machine may stop, kill and start again. What the machine reads, it reads as an outsider
would: the SQLite file opened read-only, aria2's RPC with the secret from the rendered
``aria2.conf``, the disk, and the requests the fake server recorded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from init_data_py import sign

from supervisor.control import ControlClient, NotRunning
from tests.fakes.feeds import FakeItem, FeedSite, nyaa
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer, Request
from tests.fakes.torrentsite import TorrentSite
from tests.runner import AriabotRun, free_port, rpc, wait_until
from tests.swarm import Swarm, SwarmTorrent

__all__ = [
    "GROUP",
    "GROUP_MIGRATED",
    "LOCAL",
    "USER",
    "USER2",
    "Catalog",
    "FaultyTelegram",
    "Item",
    "LoopThread",
    "Stack",
    "fingerprint",
]

T = TypeVar("T")

USER = 5101
"""Allowed user; his private chat has his id."""
USER2 = 5102
"""A second allowed user, in his own private chat (the one the machine may block)."""
GROUP = -1005103
"""A group both users are in; USER created it. The one the machine may migrate."""
GROUP_MIGRATED = -1009103
"""The supergroup GROUP becomes when Telegram upgrades it (``migrate_to_chat_id``)."""
LOCAL = 0
"""The chat of downloads added from the control socket without ``--chat``."""

KIB = 1024
_CHAT_METHODS = frozenset({
    "sendMessage", "editMessageText", "editMessageReplyMarkup", "sendDocument",
    "deleteMessage", "sendChatAction", "answerCallbackQuery",
})
"""Methods that act in one chat (``chat_id``): what a chat's faults answer."""


@dataclass(frozen=True)
class Item:
    """A torrent of the catalog: ``key`` names it in sequences (two keys may share a name)."""

    key: str
    torrent: SwarmTorrent


class Catalog:
    """Tiny torrents seeded once per swarm: names that collide (two ``movie.mkv``, two
    ``album`` folders of three files) and one that does not."""

    SHAPES: tuple[tuple[str, str, int | list[int], int], ...] = (
        ("movie-a", "movie.mkv", 24 * KIB, 2301),
        ("movie-b", "movie.mkv", 20 * KIB, 2302),
        ("album-a", "album", [6 * KIB, 5 * KIB, 7 * KIB], 2303),
        ("album-b", "album", [4 * KIB, 9 * KIB, 3 * KIB], 2304),
        ("notes", "notes.txt", 5 * KIB, 2305),
    )

    def __init__(self, swarm: Swarm) -> None:
        self.swarm = swarm
        self.items = tuple(Item(key, swarm.add(name, sizes, seed=seed, piece_size=16 * KIB))
                           for key, name, sizes, seed in self.SHAPES)
        self.by_key = {item.key: item for item in self.items}
        self.by_hash = {item.torrent.info_hash: item for item in self.items}

    @classmethod
    def keys_of(cls) -> tuple[str, ...]:
        """The keys, in catalog order (what a sequence picks from; known before seeding)."""
        return tuple(key for key, *_ in cls.SHAPES)


class LoopThread:
    """An asyncio loop on a daemon thread: the fake server lives there, the machine calls in."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-telegram",
                                        daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coroutine`` on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a plain function on the loop's thread (the fake server is not thread-safe)."""
        async def called() -> T:
            return function(*args, **kwargs)
        return self.run(called())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Lost:
    """A message Telegram posted whose answer never reached the bot."""

    chat_id: int
    text: str
    at: float


class FaultyTelegram(FakeTelegramServer):
    """The fake Bot API with per-chat faults: a chat's calls fail 5xx for a while, the next
    sends get 429, a posted message's answer is lost (502 after posting), the bot is blocked
    in a chat (403), a group is upgraded to a supergroup (400 with ``migrate_to_chat_id``)."""

    def __init__(self) -> None:
        super().__init__()
        self.down_until: dict[int, float] = {}
        self.too_many_next: dict[int, int] = {}
        self.lose_next: dict[int, int] = {}
        self.blocked: set[int] = set()
        self.migrated: dict[int, int] = {}
        self.lost: list[Lost] = []

    async def _dispatch(self, token: str, method: str,
                        params: dict[str, Any]) -> tuple[int, Any]:
        chat = params.get("chat_id")
        if method in _CHAT_METHODS and isinstance(chat, int):
            refused = self._chat_fault(method, chat)
            if refused is not None:
                return refused
        status, body = await super()._dispatch(token, method, params)
        if (status == 200 and method == "sendMessage" and isinstance(chat, int)
                and self.lose_next.get(chat, 0) > 0):
            self.lose_next[chat] -= 1
            self.lost.append(Lost(chat, str(params.get("text", "")), time.monotonic()))
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        return status, body

    def _chat_fault(self, method: str, chat: int) -> tuple[int, Any] | None:
        if chat in self.migrated:
            return 400, {"ok": False, "error_code": 400,
                         "description": "Bad Request: group chat was upgraded to a supergroup"
                                        " chat",
                         "parameters": {"migrate_to_chat_id": self.migrated[chat]}}
        if chat in self.blocked:
            return 403, {"ok": False, "error_code": 403,
                         "description": "Forbidden: bot was blocked by the user"}
        if time.monotonic() < self.down_until.get(chat, 0.0):
            return 500, {"ok": False, "error_code": 500,
                         "description": "Internal Server Error"}
        if method in ("sendMessage", "sendDocument", "editMessageText") \
                and self.too_many_next.get(chat, 0) > 0:
            self.too_many_next[chat] -= 1
            return 429, {"ok": False, "error_code": 429,
                         "description": "Too Many Requests: retry after 2",
                         "parameters": {"retry_after": 2}}
        return None


def fingerprint(path: Path) -> str | None:
    """SHA-256 of a file, or None when it is gone."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


@dataclass
class Stack:
    """One example's ariabot: its folders, settings, fake Telegram and process."""

    root: Path
    telegram_loop: LoopThread
    catalog: Catalog
    mode: str = "copy"
    """The mirror mode of the running ariabot (``ARIABOT_MIRROR_MODE``); a restart flips it."""
    server: FaultyTelegram = field(init=False)
    run: AriabotRun | None = field(init=False, default=None)
    runs: list[AriabotRun] = field(init=False, default_factory=list)
    http_port: int = field(init=False, default_factory=free_port)

    def __post_init__(self) -> None:
        self.data = self.root / "data"
        self.downloads = self.root / "downloads"
        self.destination = self.root / "cloud"
        for folder in (self.downloads, self.destination):
            folder.mkdir(parents=True)
        self.rclone_config = self.root / "rclone.conf"
        self.rclone_config.write_text("")
        self.server = FaultyTelegram()
        self.telegram_loop.run(self.server.start())
        for user in (USER, USER2):
            self.telegram_loop.call(self.server.set_member, GROUP, user,
                                    "creator" if user == USER else "member")
        self.telegram_loop.call(self.server.set_member, GROUP_MIGRATED, USER, "creator")
        self.site = TorrentSite({item.key: item.torrent.torrent_bytes
                                 for item in self.catalog.items},
                                magnet=self.catalog.items[0].torrent.magnet, too_large=1)
        self.telegram_loop.run(self.site.__aenter__())
        self.feeds = FeedSite()
        self.telegram_loop.run(self.feeds.__aenter__())

    # --- the process ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        chats = ",".join(str(c) for c in (USER, USER2, GROUP, GROUP_MIGRATED))
        return {
            "ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN,
            "ARIABOT_TELEGRAM_API_URL": self.server.url,
            "ARIABOT_ALLOWED_USERS": f"{USER},{USER2}",
            "ARIABOT_ALLOWED_CHATS": chats,
            "ARIABOT_DOWNLOAD_DIR": str(self.downloads),
            "ARIABOT_SEED_TIME": "0",
            "ARIABOT_PROGRESS_INTERVAL": "1",
            "ARIABOT_EDIT_INTERVAL": "2",
            "ARIABOT_BT_STOP_TIMEOUT": "6",
            "ARIABOT_MAX_CONCURRENT": "4",
            "ARIABOT_RCLONE_REMOTE": str(self.destination),
            "ARIABOT_RCLONE_CONFIG": str(self.rclone_config),
            "ARIABOT_MIRROR_MODE": self.mode,
            "ARIABOT_MIRROR_RETRY_DELAY": "0.5",
            "ARIABOT_PUBLIC_URL": f"http://127.0.0.1:{self.http_port}",
            "ARIABOT_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "ARIABOT_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",  # the catalog's site, the feeds
            "ARIABOT_FEED_INTERVAL": "1",
        }

    def download_dirs(self) -> list[Path]:
        """Where downloads go (one folder per ariabot)."""
        return [self.downloads]

    def start(self) -> None:
        """Start ``ariabot run`` and wait until the control socket answers."""
        self.run = AriabotRun(self.data, self.env()).start()
        self.runs.append(self.run)
        self.run.wait_ready(60)
        wait_until(self._answers, 30, "the control socket to answer")
        # The link server (and the Mini App) starts after the bot, a moment later.
        wait_until(lambda: self._serves_on(self.http_port), 30, "the link server to answer")

    def _answers(self) -> bool:
        try:
            return bool(self.control("list").get("ok"))
        except (NotRunning, OSError):
            return False

    @staticmethod
    def _serves_on(port: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 404
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        """SIGTERM (then SIGKILL after 20 s) and make sure its aria2c is gone."""
        if self.run is not None:
            self.run.stop()

    def kill(self) -> None:
        """``kill -9`` of ariabot; its aria2c stays behind until the next start stops it."""
        assert self.run is not None and self.run.process is not None
        self.run.process.kill()
        self.run.process.wait(10)

    def kill_aria2c(self) -> None:
        """``kill -9`` of aria2c; ariabot's supervisor must start another."""
        assert self.run is not None
        info = self.run.wait_running(30)
        with contextlib.suppress(ProcessLookupError):
            os.kill(info["aria2c_pid"], 9)
        self.run.wait_running(60, not_pid=info["aria2c_pid"])

    @property
    def output(self) -> str:
        """Every run's log, in order."""
        return "\n".join(r.output for r in self.runs if r.log_path.exists())

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(Exception):
            self.telegram_loop.run(self.server.stop(), timeout=10)
        with contextlib.suppress(Exception):
            self.telegram_loop.run(self.site.__aexit__(None, None, None), timeout=10)
        with contextlib.suppress(Exception):
            self.telegram_loop.run(self.feeds.__aexit__(None, None, None), timeout=10)

    # --- the control socket (what ``ariabot add/pause/…`` send) ------------------------------

    def control(self, operation: str, **fields: Any) -> dict[str, Any]:
        return ControlClient(self.data / "control.sock", timeout=30).request(operation, **fields)

    def add_local(self, item: Item, chat: int, as_file: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {"chat": chat}
        if as_file:
            fields["torrent_b64"] = base64.b64encode(item.torrent.torrent_bytes).decode()
        else:
            fields["magnet"] = item.torrent.magnet
        return self.control("add", **fields)

    # --- the Mini App, as its page asks ------------------------------------------------------

    def web_port(self) -> int:
        """The port of the link server (and the Mini App) a user's request goes to."""
        return self.http_port

    def app(self, chat: int, user: int, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST ``api/<path>`` of the Mini App with initData signed by the bot's token for
        ``user`` in ``chat`` (a group as the signed ``startapp`` parameter)."""
        fields = {"user": json.dumps({"id": user, "first_name": f"user{user}"})}
        if chat != user:
            fields["start_param"] = f"c{chat}"
        answer = requests.post(f"http://127.0.0.1:{self.web_port()}/app/api/{path}", json=body,
                               headers={"Authorization": f"tma {sign(fields, DEFAULT_TOKEN)}"},
                               timeout=30)
        return answer.status_code, answer.json()

    # --- Telegram, as users ------------------------------------------------------------------

    def mark(self) -> int:
        return self.telegram_loop.call(self.server.mark)

    def requests(self, since: int = 0) -> list[Request]:
        return self.telegram_loop.call(lambda: self.server.requests[since:])

    def say(self, chat: int, user: int, text: str) -> None:
        self.telegram_loop.call(self.server.push_text, chat, user, text)

    def link(self, item: Item) -> str:
        """The link of ``item``'s ``.torrent`` on the catalog's web site."""
        return self.site.url(f"/files/{item.key}.torrent")

    def publish(self, feed: str, items: list[Item]) -> None:
        """Serve ``items`` (oldest first) as the nyaa-shaped feed ``feed``: each item's link
        is its ``.torrent`` on the catalog's site."""
        listed = [FakeItem(title=item.torrent.name, guid=f"https://catalog.example/{item.key}",
                           torrent_url=self.link(item), info_hash=item.torrent.info_hash,
                           size=item.torrent.total_bytes) for item in reversed(items)]
        self.telegram_loop.call(self.feeds.feeds.__setitem__, feed, nyaa(listed))

    def feed_url(self, feed: str) -> str:
        return self.feeds.url(f"/feeds/{feed}")

    def send_document(self, chat: int, user: int, item: Item) -> None:
        self.telegram_loop.call(self.server.push_document, chat, user,
                                item.torrent.torrent_bytes, f"{item.key}.torrent")

    def press(self, chat: int, user: int, message_id: int, data: str) -> str | None:
        """Press a button under ``message_id``; the query id, or None when the chat does not
        show that message (deleted, or never confirmed)."""
        try:
            update = self.telegram_loop.call(self.server.push_callback, chat, user, message_id,
                                             data)
        except LookupError:
            return None
        return str(update["callback_query"]["id"])

    def messages(self, chat: int) -> list[dict[str, Any]]:
        """What the chat shows: the bot's messages."""
        return self.telegram_loop.call(self.server.messages, chat)

    def chat_fault(self, setter: Callable[[FaultyTelegram], None]) -> None:
        self.telegram_loop.call(setter, self.server)

    # --- what is stored, read-only -----------------------------------------------------------

    def rows(self, table: str = "downloads") -> list[dict[str, Any]]:
        """Every row of a table, as the SQLite file holds it now (read-only connection)."""
        database = self.data / "ariabot.db"
        if not database.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True,
                                                timeout=10)) as connection:
            connection.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in connection.execute(f"SELECT * FROM {table}")]
            except sqlite3.OperationalError as error:
                if "no such table" in str(error):
                    return []
                raise

    @contextlib.contextmanager
    def store_locked(self) -> Iterator[None]:
        """Another connection holds the database's write lock inside the block: every write
        ariabot tries meanwhile waits its busy timeout, then fails."""
        with contextlib.closing(sqlite3.connect(self.data / "ariabot.db", timeout=10,
                                                isolation_level=None)) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                connection.execute("COMMIT")

    # --- aria2, through its RPC --------------------------------------------------------------

    def aria2(self) -> list[dict[str, Any]] | None:
        """aria2's active, waiting and stopped downloads, or None when it does not answer."""
        return self._aria2_of(self.data)

    @staticmethod
    def _aria2_of(data: Path) -> list[dict[str, Any]] | None:
        """What the aria2c of the ariabot on ``data`` holds (None: it does not answer)."""
        conf = data / "aria2.conf"
        try:
            options = dict(line.split("=", 1) for line in conf.read_text().splitlines()
                           if "=" in line and not line.startswith("#"))
            port, secret = int(options["rpc-listen-port"]), options["rpc-secret"]
        except (OSError, KeyError, ValueError):
            return None
        keys = ["gid", "status", "infoHash", "dir", "completedLength", "totalLength",
                "seeder", "followedBy", "bittorrent"]
        calls = [{"methodName": "aria2.tellActive", "params": [f"token:{secret}", keys]},
                 {"methodName": "aria2.tellWaiting",
                  "params": [f"token:{secret}", 0, 1000, keys]},
                 {"methodName": "aria2.tellStopped",
                  "params": [f"token:{secret}", 0, 1000, keys]}]
        try:
            answer = rpc(port, "system.multicall", calls, secret=None, timeout=5)
        except (OSError, ValueError):
            return None
        result = answer.get("result")
        if not isinstance(result, list) or not all(isinstance(r, list) for r in result):
            return None
        return [entry for batch in result for entry in batch[0]]

    def discard(self) -> None:
        """Remove the example's folders (big sequences must not fill the disk)."""
        shutil.rmtree(self.root, ignore_errors=True)
