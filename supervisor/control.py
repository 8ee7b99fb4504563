"""The local control socket: how ``ariabot add/list/status/log/...`` reach a running ariabot.

``ariabot run`` is the only process that writes the store and talks to aria2; local commands
send it one JSON request per connection over ``<data dir>/control.sock``. The socket is mode
0600 inside the 0700 data dir, and the server also checks the caller's uid (SO_PEERCRED), so
only the user running ariabot (or root) gets in.

Wire format: one JSON object per line each way. Requests: ``{"op": ..., ...}``; answers:
``{"ok": true, ...}`` or ``{"ok": false, "error": "<words for a user>"}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from manager import (
    LIST_PAGE_MAX,
    FeedView,
    ManagerError,
    NodeFigures,
    NodeState,
    NodeStatus,
    Torrent,
    TorrentManager,
    is_http_url,
    utcnow,
)
from supervisor.health import database_health, health_json

__all__ = [
    "LIST_PAGE",
    "LOG_LIMIT_DEFAULT",
    "LOG_LIMIT_MAX",
    "ControlClient",
    "ControlServer",
    "NotRunning",
    "Refused",
    "activity_json",
    "feed_from_json",
    "feed_json",
    "list_torrents",
    "node_from_json",
    "node_json",
    "torrent_json",
]

log = logging.getLogger(__name__)

MAX_REQUEST = 32 * 1024 * 1024
"""Largest request line: a .torrent at its largest, base64-encoded, with room to spare."""

_SUN_PATH_MAX = 107
"""Bytes of a path an AF_UNIX address holds (``sun_path`` is 108, with its NUL)."""


@contextlib.contextmanager
def _socket_address(path: Path) -> Iterator[str]:
    """``path`` as an AF_UNIX address, however deep the data dir is.

    A path that fits ``sun_path`` is used as it is. A longer one cannot be bound or
    connected by name (``OSError: AF_UNIX path too long``), so the same file is reached
    through an ``O_PATH`` descriptor of its folder, ``/proc/self/fd/N/control.sock``, held
    open for the ``with`` block. No ``chdir``: the working directory is the whole process's.

    Raises:
        FileNotFoundError: the folder does not exist (so no socket can be in it).
    """
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


def torrent_json(torrent: Torrent) -> dict[str, Any]:
    """The stable JSON form of a download (``ariabot list --json`` and ``status --json``).

    Keys: id, info_hash, name, state, progress (0..1), completed_bytes, total_bytes,
    download_speed, upload_speed (bytes/s), seeders, peers, queue_position, error,
    stuck_reason, path, chat_id, created_at, completed_at (ISO 8601 UTC or null), mirror
    (null, or its upload to the rclone destination: state, destination, move, bytes,
    total_bytes, speed, attempt, attempts, error, link, local_deleted).
    """
    return {
        "id": torrent.id,
        "info_hash": torrent.info_hash,
        "name": torrent.name,
        "state": torrent.state.value,
        "progress": round(torrent.progress, 4),
        "completed_bytes": torrent.completed_bytes,
        "total_bytes": torrent.total_bytes,
        "download_speed": torrent.download_speed,
        "upload_speed": torrent.upload_speed,
        "seeders": torrent.seeders,
        "peers": torrent.peers,
        "queue_position": torrent.queue_position,
        "error": torrent.error,
        "stuck_reason": torrent.stuck_reason,
        "path": torrent.path,
        "chat_id": torrent.chat_id,
        "created_at": torrent.created_at.isoformat() + "Z" if torrent.created_at else None,
        "completed_at": torrent.completed_at.isoformat() + "Z" if torrent.completed_at else None,
        "mirror": _mirror_json(torrent),
        "node": torrent.node,
        "elsewhere": torrent.elsewhere,
    }


def _mirror_json(torrent: Torrent) -> dict[str, Any] | None:
    """The download's upload to the rclone destination, or None when there is none."""
    mirror = torrent.mirror
    if mirror is None:
        return None
    return {
        "state": mirror.state.value, "destination": mirror.destination, "move": mirror.move,
        "bytes": mirror.bytes, "total_bytes": mirror.total_bytes, "speed": mirror.speed,
        "attempt": mirror.attempt, "attempts": mirror.attempts, "error": mirror.error,
        "link": mirror.link, "local_deleted": mirror.local_deleted,
    }


def activity_json(entry: Any) -> dict[str, Any]:
    """The JSON form of one activity entry (``ariabot log``), newest first in a list.

    Keys: at (ISO 8601 UTC), chat_id, user_id (0: the local CLI), action, download_id (or
    null), detail.
    """
    return {
        "at": entry.at.isoformat() + "Z",
        "chat_id": entry.chat_id,
        "user_id": entry.user_id,
        "action": entry.action,
        "download_id": entry.download_id,
        "detail": entry.detail,
    }


LIST_PAGE = 100
"""Downloads one ``list`` answer holds unless asked for fewer (at most
:data:`~manager.LIST_PAGE_MAX`): a page's snapshots and JSON are made on the event loop,
so one answer holds it for a few milliseconds however many downloads there are."""

LOG_LIMIT_DEFAULT = 20
"""Activity entries ``ariabot log`` shows without ``--limit``."""

LOG_LIMIT_MAX = 10_000
"""Most activity entries one request returns."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
"""Whole numbers the store can hold (SQLite INTEGER); others are refused as bad requests."""


class _BadRequest(Exception):
    """A request that is not well-formed."""


def feed_json(feed: FeedView) -> dict[str, Any]:
    """A feed as the control socket answers it (never its URL: its host only)."""
    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() + "Z" if moment is not None else None  # naive UTC

    return {"name": feed.name, "host": feed.host, "filter": feed.filter, "paused": feed.paused,
            "user_id": feed.user_id,
            "added": feed.added, "last_added_at": when(feed.last_added_at),
            "last_ok_at": when(feed.last_ok_at), "next_poll_at": when(feed.next_poll_at),
            "last_error": feed.last_error, "failing_since": when(feed.failing_since)}


def feed_from_json(fields: dict[str, Any]) -> FeedView:
    """The feed :func:`feed_json` made ``fields`` of (for the CLI's lines)."""
    def when(key: str) -> datetime | None:
        if not fields.get(key):
            return None
        return datetime.fromisoformat(fields[key]).replace(tzinfo=None)  # naive UTC

    return FeedView(name=str(fields["name"]), host=str(fields["host"]),
                    filter=str(fields["filter"]), paused=bool(fields["paused"]),
                    user_id=int(fields["user_id"]),
                    added=int(fields["added"]), last_added_at=when("last_added_at"),
                    last_ok_at=when("last_ok_at"),
                    next_poll_at=when("next_poll_at") or utcnow(),
                    last_error=fields.get("last_error"), failing_since=when("failing_since"))


def node_json(node: NodeStatus) -> dict[str, Any]:
    """A node as the control socket answers it."""
    figures = node.figures
    return {"name": node.name, "state": node.state.value, "silent_for": node.silent_for,
            "this": node.this, "version": node.version, "slots_used": figures.slots_used,
            "slots_total": figures.slots_total, "free_disk": figures.free_disk,
            "downloads": figures.downloads}


def node_from_json(fields: dict[str, Any]) -> NodeStatus:
    """The node :func:`node_json` made ``fields`` of (for the CLI's lines)."""
    return NodeStatus(
        name=str(fields["name"]), version=str(fields["version"]),
        state=NodeState(fields["state"]), silent_for=float(fields["silent_for"]),
        this=bool(fields["this"]),
        figures=NodeFigures(int(fields["slots_used"]), int(fields["slots_total"]),
                            int(fields["free_disk"]), int(fields["downloads"])))


def _int_field(request: dict[str, Any], key: str, default: int | None = None) -> int:
    value = request.get(key, default)
    if (isinstance(value, bool) or not isinstance(value, int)
            or not _INT64_MIN <= value <= _INT64_MAX):
        raise _BadRequest(f"'{key}' must be a whole number")
    return value


class ControlServer:
    """Serve local control requests for ``manager`` on a Unix socket at ``path``."""

    def __init__(self, manager: TorrentManager, path: Path) -> None:
        self.manager = manager
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._ops: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "add": self._add,
            "list": self._list,
            "status": self._status,
            "pause": self._pause,
            "resume": self._resume,
            "cancel": self._cancel,
            "files": self._files,
            "purge": self._purge,
            "health": self._health,
            "log": self._log,
            "mirror": self._mirror,
            "link": self._link,
            "nodes": self._nodes,
            "rss": self._rss,
        }

    async def start(self) -> None:
        """Listen (replacing a socket file left by a crash; we hold the instance lock)."""
        self.path.unlink(missing_ok=True)
        # The mode is set on the socket before bind() creates the file (Linux takes the file's
        # mode from the socket's inode), so it is never more open than 0600, without touching
        # the process-wide umask while other threads create files.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.fchmod(sock.fileno(), 0o600)
            with _socket_address(self.path) as address:
                sock.bind(address)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock,
                                                           limit=MAX_REQUEST)
        except BaseException:
            sock.close()
            raise

    async def stop(self) -> None:
        """Stop listening and remove the socket file."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not self._peer_allowed(writer):
                answer = {"ok": False, "error": "permission denied"}
            else:
                answer = await self._answer(reader)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    def _peer_allowed(writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        if sock is None:
            return False
        credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                      struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", credentials)
        return uid in (0, os.getuid())

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            async with asyncio.timeout(30):
                line = await reader.readline()
        except (ValueError, asyncio.LimitOverrunError):
            return {"ok": False, "error": "request too large"}
        except TimeoutError:
            return {"ok": False, "error": "request timed out"}
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise _BadRequest("a request is a JSON object")
            op = request.get("op")
            operation = self._ops.get(op) if isinstance(op, str) else None
            if operation is None:
                raise _BadRequest(f"unknown operation {op!r}"[:200])
            return {"ok": True, **await operation(request)}
        except ManagerError as error:
            return {"ok": False, "error": str(error)}
        except (ValueError, _BadRequest) as error:
            return {"ok": False, "error": f"bad request: {error}"}
        except Exception:
            log.exception("control request failed")
            return {"ok": False, "error": "internal error (see ariabot's log)"}

    async def _add(self, request: dict[str, Any]) -> dict[str, Any]:
        chat = _int_field(request, "chat", 0)
        if isinstance(request.get("torrent_b64"), str):
            try:
                source: str | bytes = base64.b64decode(request["torrent_b64"], validate=True)
            except (binascii.Error, ValueError):
                raise _BadRequest("torrent_b64 is not base64") from None
        elif isinstance(request.get("magnet"), str):
            source = request["magnet"]
        elif isinstance(request.get("url"), str) and is_http_url(request["url"]):
            source = request["url"]  # the manager fetches it
        else:
            raise _BadRequest("give 'magnet', 'url' (http or https) or 'torrent_b64'")
        result = await self.manager.add(source, chat_id=chat, user_id=0)
        return {"torrent": torrent_json(result.torrent), "existing": result.existing,
                "note": result.note}

    async def _list(self, request: dict[str, Any]) -> dict[str, Any]:
        """One page, newest first: ``before`` (the previous page's ``next``) and ``limit``
        are optional; ``next`` is null after the last page."""
        chat = request.get("chat")
        if chat is not None:
            chat = _int_field(request, "chat")
        before = request.get("before")
        if before is not None:
            before = _int_field(request, "before")
        limit = _int_field(request, "limit", LIST_PAGE)
        if not 1 <= limit <= LIST_PAGE_MAX:
            raise _BadRequest(f"'limit' must be from 1 to {LIST_PAGE_MAX}")
        page = await self.manager.page(chat, before_id=before, limit=limit)
        following = page[-1].id if len(page) == limit else None
        return {"torrents": [torrent_json(t) for t in page], "next": following}

    async def _status(self, request: dict[str, Any]) -> dict[str, Any]:
        torrent = await self.manager.get(_int_field(request, "id"))
        return {"torrent": torrent_json(torrent)}

    async def _health(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"health": {**health_json(self.manager),
                           "database": await database_health(self.manager)}}

    async def _nodes(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"nodes": [node_json(node) for node in await self.manager.nodes()]}

    async def _rss(self, request: dict[str, Any]) -> dict[str, Any]:
        """A chat's feeds: ``action`` (add, list, remove, pause, resume, filter), ``chat``
        (0 by default), ``url``, ``name`` and ``options`` (a list of option words)."""
        chat = _int_field(request, "chat", 0)
        action = request.get("action")
        feeds = self.manager.feeds
        if action == "list":
            return {"feeds": [feed_json(feed) for feed in await feeds.list(chat)]}
        name = request.get("name")
        if name is not None and not isinstance(name, str):
            raise _BadRequest("'name' must be text")
        options = request.get("options", [])
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise _BadRequest("'options' must be a list of words")
        if action == "add":
            url = request.get("url")
            if not isinstance(url, str):
                raise _BadRequest("'url' must be text")
            done = await feeds.subscribe(chat, 0, url, name, options)
            return {"feed": feed_json(done.feed), "items": done.items, "added": done.added}
        if not name:
            raise _BadRequest("give the feed's 'name'")
        if action == "filter":
            return {"feed": feed_json(await feeds.set_filter(chat, name, options))}
        if action in ("remove", "pause", "resume"):
            return {"feed": feed_json(await getattr(feeds, action)(chat, name))}
        raise _BadRequest("'action' is one of add, list, remove, pause, resume, filter")

    async def _log(self, request: dict[str, Any]) -> dict[str, Any]:
        chat = request.get("chat")
        if chat is not None:
            chat = _int_field(request, "chat")
        limit = _int_field(request, "limit", LOG_LIMIT_DEFAULT)
        if not 1 <= limit <= LOG_LIMIT_MAX:
            raise _BadRequest(f"'limit' must be from 1 to {LOG_LIMIT_MAX}")
        return {"entries": [activity_json(e) for e in await self.manager.activity(chat, limit)]}

    async def _pause(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"torrent": torrent_json(await self.manager.pause(_int_field(request, "id")))}

    async def _resume(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"torrent": torrent_json(await self.manager.resume(_int_field(request, "id")))}

    async def _cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        delete = request.get("delete_files", False)
        if not isinstance(delete, bool):
            raise _BadRequest("'delete_files' must be true or false")
        cancelled = await self.manager.cancel(_int_field(request, "id"), delete_files=delete)
        return {"torrent": torrent_json(cancelled.torrent),
                "files_deleted": cancelled.files_deleted, "kept_for": cancelled.kept_for,
                "upload_stopped": cancelled.upload_stopped}

    async def _mirror(self, request: dict[str, Any]) -> dict[str, Any]:
        stop = request.get("stop", False)
        if not isinstance(stop, bool):
            raise _BadRequest("'stop' must be true or false")
        act = self.manager.stop_mirror if stop else self.manager.mirror
        return {"torrent": torrent_json(await act(_int_field(request, "id")))}

    async def _link(self, request: dict[str, Any]) -> dict[str, Any]:
        made = await self.manager.link(_int_field(request, "id"))
        return {"url": made.url, "expires_at": made.expires_at.isoformat(),
                "torrent": torrent_json(made.torrent)}

    async def _files(self, request: dict[str, Any]) -> dict[str, Any]:
        download_id = _int_field(request, "id")
        select = request.get("select")
        if select is not None:
            if not isinstance(select, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in select
            ):
                raise _BadRequest("'select' must be a list of file numbers")
            await self.manager.set_files(download_id, select)
        files = await self.manager.files(download_id)
        return {"files": [{"index": f.index, "path": f.path, "length": f.length,
                           "completed": f.completed, "selected": f.selected} for f in files]}

    async def _purge(self, request: dict[str, Any]) -> dict[str, Any]:
        days = request.get("older_than_days")
        if (isinstance(days, bool) or not isinstance(days, int | float)
                or not math.isfinite(days) or not 0 <= days <= 36500):
            raise _BadRequest("'older_than_days' must be a number of days from 0 to 36500")
        delete = request.get("delete_files", False)
        if not isinstance(delete, bool):
            raise _BadRequest("'delete_files' must be true or false")
        count = await self.manager.purge_finished(timedelta(days=days), delete_files=delete)
        return {"purged": count}


def list_torrents(client: ControlClient, chat: int | None = None) -> Iterator[dict[str, Any]]:
    """Every download (of one chat, or all), newest first, a page per request: the running
    ariabot never builds the whole list, and a reader that stops early (``ariabot list |
    head -1``) asks for no more pages.

    Raises:
        NotRunning: nothing listens on the socket.
        Refused: ariabot refused (its words).
    """
    fields: dict[str, Any] = {"chat": chat} if chat is not None else {}
    before: int | None = None
    while True:
        answer = client.request("list", **fields, **({"before": before} if before else {}))
        if not answer.get("ok"):
            raise Refused(answer.get("error", "refused"))
        page: Iterable[dict[str, Any]] = answer["torrents"]
        yield from page
        before = answer.get("next")
        if before is None:
            return


class Refused(Exception):
    """The running ariabot answered a request with an error (the message is its words)."""


class NotRunning(ConnectionError):
    """No ``ariabot run`` is listening on this data dir."""


class ControlClient:
    """Send one request to the running ariabot and return its answer (blocking)."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.path = path
        self.timeout = timeout

    def request(self, operation: str, **fields: Any) -> dict[str, Any]:
        """Send ``{"op": operation, **fields}``.

        Raises:
            NotRunning: nothing listens on the socket.
        """
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                with _socket_address(self.path) as address:
                    sock.connect(address)
            except (FileNotFoundError, ConnectionRefusedError):
                raise NotRunning(
                    f"ariabot is not running on {self.path.parent} (start it with 'ariabot run')"
                ) from None
            sock.sendall(json.dumps({"op": operation, **fields}).encode() + b"\n")
            with sock.makefile("rb") as stream:
                line = stream.readline()
        if not line:
            raise NotRunning("ariabot closed the connection without an answer")
        return json.loads(line)
