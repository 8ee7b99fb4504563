"""A fake Telegram Bot API server: real HTTP on 127.0.0.1, recorded requests, chat state.

The code under test is the real python-telegram-bot pointed at this server::

    async with FakeTelegramServer() as server:
        app = (
            ApplicationBuilder()
            .token(server.token)
            .base_url(f"{server.url}/bot")
            .base_file_url(f"{server.url}/file/bot")
            .build()
        )

What it imitates, because the bot's correctness depends on it:

* Long polling: ``getUpdates`` waits up to ``timeout`` seconds; an update stays queued until a
  later ``getUpdates`` confirms it with ``offset > update_id`` (so it is redelivered after a
  lost answer, and never twice after a confirmation). A second concurrent ``getUpdates``
  ends the first one with 409 Conflict, as Telegram does. With ``hold_polls`` set to False
  it answers ``getUpdates`` at once whatever its ``timeout`` (a misconfigured local Bot API
  server or proxy).
* Messages: ids increase per chat; ``parse_mode="HTML"`` is parsed into plain text plus
  entities (with Telegram's "can't parse entities" errors); leading and trailing whitespace
  is trimmed; only inline keyboards are echoed as ``reply_markup``; editing a message's text
  without ``reply_markup`` removes its keyboard; an edit that changes nothing answers
  "message is not modified".
* Chat members: :meth:`FakeTelegramServer.set_member` makes a user a group's ``creator``,
  ``administrator``, ``member``, ``left`` or ``kicked``; ``getChatMember`` answers that
  (``left`` for anyone never set) and ``getChatAdministrators`` lists the creator and the
  administrators that are not bots; in a private chat it fails as Telegram does ("there are
  no administrators in the private chat").
* Documents: a multipart upload whose file is bigger than ``upload_limit`` (Telegram's 50 MB
  by default; tests give a small one) is answered 413 "Request Entity Too Large" once its
  body is read, as Telegram does; uploads are streamed to a SHA-1 (``UploadedFile.sha1``),
  their bytes kept only up to ``keep_bytes``. With ``local_mode`` (a ``--local`` server)
  ``sendDocument`` also takes a ``file://`` URI and reads that file from disk, up to
  ``local_limit`` (2000 MB); without it a URI is a wrong file identifier, as in the cloud.
* Chats that end or move, with Telegram's own answers to every request naming them:
  :meth:`FakeTelegramServer.migrate` upgrades a group to a supergroup (400 "group chat was
  upgraded to a supergroup chat" with ``parameters.migrate_to_chat_id``, which PTB raises as
  ``ChatMigrated``; the service messages ``migrate_to_chat_id``/``migrate_from_chat_id`` are
  queued as updates; the new chat's message ids start again at 1, the old messages stay in the
  old chat), :meth:`~FakeTelegramServer.block` (403 "bot was blocked by the user"),
  :meth:`~FakeTelegramServer.kick_bot` (403 "bot was kicked from the group chat" or "... the
  supergroup chat"), :meth:`~FakeTelegramServer.delete_chat` (400 "chat not found"). Texts
  over 4096 characters get "message is too long" (sent) or "MESSAGE_TOO_LONG" (edited).
* Errors: wrong token → 401 ``Unauthorized`` (what Telegram answers for a token of the right
  shape that it does not know; PTB raises InvalidToken), unknown method → 404, plus injected
  failures (:meth:`FakeTelegramServer.fail_next`), raw answers such as a malformed ``getMe``
  (:meth:`FakeTelegramServer.answer_next`) and outages (:meth:`FakeTelegramServer.outage`).

* Flood limits (:class:`FloodLimits`, on by default; ``limits=None`` turns them off): Telegram's
  published ones, from the Bot FAQ "My bot is hitting limits, how do I avoid this?"
  (core.telegram.org/bots/faq): "avoid sending more than one message per second" in a chat
  ("we may allow short bursts"), "not more than 20 messages per minute to the same group",
  "not more than 30 messages per second or so" for bulk notifications. Each message a chat
  gets (sent, edited, uploaded: :data:`FLOOD_LIMITED`) that breaks one of them is answered
  with 429 "Too Many Requests: retry after N" and ``parameters.retry_after`` like Telegram,
  and counted (:attr:`FakeTelegramServer.too_many`).

Not imitated: MarkdownV2 parsing (text is stored as sent), automatic url/mention entities,
long-message flood weight, inline mode, webhooks delivery (``setWebhook`` is recorded;
:meth:`FakeTelegramServer.text_update` builds an update for the test to POST itself).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from aiohttp import BodyPartReader, web

__all__ = [
    "BOT_BLOCKED",
    "BOT_USERNAME",
    "CHAT_MIGRATED",
    "CHAT_NOT_FOUND",
    "CONFLICT_OTHER_POLL",
    "CONFLICT_WEBHOOK",
    "DEFAULT_TOKEN",
    "EDIT_TEXT_TOO_LONG",
    "FILE_DOWNLOAD",
    "FLOOD_LIMITED",
    "KICKED_FROM_GROUP",
    "KICKED_FROM_SUPERGROUP",
    "MALFORMED_GET_ME",
    "MESSAGE_TO_DELETE_NOT_FOUND",
    "MESSAGE_TO_EDIT_NOT_FOUND",
    "NOT_MODIFIED",
    "NO_ADMINS_IN_PRIVATE",
    "QUERY_INVALID",
    "TEXT_TOO_LONG",
    "FakeTelegramServer",
    "FloodLimits",
    "Request",
    "StoredFile",
    "UploadedFile",
]

T = TypeVar("T")
JSON = dict[str, Any]

DEFAULT_TOKEN = "123456:" + "A" * 35
BOT_USERNAME = "ariabot_test_bot"

#: The method name recorded for downloads from ``/file/bot<token>/<file_path>``.
FILE_DOWNLOAD = "file"

#: Answers to ``getMe`` (status 200) that no Bot API server gives, for
#: :meth:`FakeTelegramServer.answer_next`: what a wrong ``ARIABOT_TELEGRAM_API_URL`` may get.
MALFORMED_GET_ME: dict[str, Any] = {
    "without the bot's fields": {"ok": True, "result": {"username": BOT_USERNAME}},
    "without a result": {"ok": True},
    "a result that is not an object": {"ok": True, "result": "ariabot"},
    "not JSON": "<html><body>Welcome to nginx!</body></html>",
}

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are"
    " exactly the same as a content and reply markup of the current content and reply markup"
    " of the message"
)
MESSAGE_TO_EDIT_NOT_FOUND = "Bad Request: message to edit not found"
MESSAGE_TO_DELETE_NOT_FOUND = "Bad Request: message to delete not found"
MESSAGE_CANT_BE_EDITED = "Bad Request: message can't be edited"
NO_TEXT_TO_EDIT = "Bad Request: there is no text in the message to edit"
TEXT_EMPTY = "Bad Request: message text is empty"
TEXT_TOO_LONG = "Bad Request: message is too long"
EDIT_TEXT_TOO_LONG = "Bad Request: MESSAGE_TOO_LONG"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
BOT_COMMAND_INVALID = "Bad Request: BOT_COMMAND_INVALID"
QUERY_INVALID = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
INVALID_FILE_ID = "Bad Request: invalid file_id"
WRONG_FILE_IDENTIFIER = "Bad Request: wrong file identifier/HTTP URL specified"
FILE_TOO_BIG = "Bad Request: file is too big"
REPLY_NOT_FOUND = "Bad Request: message to be replied not found"
CHAT_MIGRATED = "Bad Request: group chat was upgraded to a supergroup chat"
CHAT_NOT_FOUND = "Bad Request: chat not found"
BOT_BLOCKED = "Forbidden: bot was blocked by the user"
KICKED_FROM_GROUP = "Forbidden: bot was kicked from the group chat"
KICKED_FROM_SUPERGROUP = "Forbidden: bot was kicked from the supergroup chat"
NO_ADMINS_IN_PRIVATE = "Bad Request: there are no administrators in the private chat"
USER_NOT_FOUND = "Bad Request: user not found"
MEMBER_STATUSES = ("creator", "administrator", "member", "left", "kicked")
CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance"
    " is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active;"
    " use deleteWebhook to delete the webhook first"
)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_DOWNLOAD = 20 * 1024 * 1024
MAX_UPLOAD = 50 * 1024 * 1024
MAX_LOCAL_UPLOAD = 2000 * 1024 * 1024
KEEP_BYTES = 64 * 1024 * 1024
TOO_LARGE = "Request Entity Too Large"
_CHUNK = 256 * 1024

# Form fields that are strings even when they look like JSON ("123", "true").
_TEXT_FIELDS = frozenset({
    "action", "business_connection_id", "callback_query_id", "caption", "data", "description",
    "emoji", "file_id", "inline_message_id", "ip_address", "language_code",
    "message_effect_id", "name", "parse_mode", "query", "secret_token", "short_description",
    "text", "title", "url",
})
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_HTML_TAGS = {
    "a": "text_link", "b": "bold", "blockquote": "blockquote", "code": "code", "del":
    "strikethrough", "em": "italic", "i": "italic", "ins": "underline", "pre": "pre", "s":
    "strikethrough", "span": "spoiler", "strike": "strikethrough", "strong": "bold",
    "tg-emoji": "custom_emoji", "tg-spoiler": "spoiler", "u": "underline",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{2,4}));")
_HTML_ATTR_RE = re.compile(r"""\s*([^\s=>/"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?""")
_FAILURE_DESCRIPTIONS = {
    HTTPStatus.BAD_REQUEST: "Bad Request",
    HTTPStatus.UNAUTHORIZED: "Unauthorized",
    HTTPStatus.FORBIDDEN: "Forbidden: bot was blocked by the user",
    HTTPStatus.NOT_FOUND: "Not Found",
    HTTPStatus.CONFLICT: "Conflict",
    HTTPStatus.INTERNAL_SERVER_ERROR: "Internal Server Error",
    HTTPStatus.BAD_GATEWAY: "Bad Gateway",
}
_MALFORMED_BODY = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


FLOOD_LIMITED = frozenset({
    "sendMessage", "editMessageText", "editMessageReplyMarkup", "sendDocument",
})
"""The methods that put a message into a chat, and so count against the flood limits."""


@dataclass(frozen=True)
class FloodLimits:
    """Telegram's flood limits as this server enforces them (see the module docstring).

    Telegram publishes no burst size ("short bursts"): this server allows ``chat_burst``
    messages back to back in one chat, then one per ``1 / chat_rate`` seconds (a token
    bucket). Groups (negative chat ids) also get at most ``group_per_minute`` in any 60 s,
    and all chats together at most ``global_per_second`` in any second (sliding windows).
    """

    chat_rate: float = 1.0
    chat_burst: int = 4
    group_per_minute: int = 20
    global_per_second: int = 30


class _FloodGate:
    """Decides, per arriving message, whether Telegram would answer 429 (and for how long)."""

    def __init__(self, limits: FloodLimits) -> None:
        self.limits = limits
        self._buckets: dict[Any, tuple[float, float]] = {}  # chat → (tokens, at)
        self._group_times: dict[Any, list[float]] = {}
        self._all_times: list[float] = []

    def admit(self, chat_id: Any, now: float) -> float:
        """0 when the message may go (and it is counted), else the seconds to wait."""
        limits = self.limits
        tokens, at = self._buckets.get(chat_id, (float(limits.chat_burst), now))
        tokens = min(float(limits.chat_burst), tokens + (now - at) * limits.chat_rate)
        waits = [0.0]
        if tokens < 1:
            waits.append((1 - tokens) / limits.chat_rate)
        group = self._group_times.setdefault(chat_id, []) if _is_group(chat_id) else None
        if group is not None:
            group[:] = [t for t in group if t > now - 60]
            if len(group) >= limits.group_per_minute:
                waits.append(group[0] + 60 - now)
        self._all_times[:] = [t for t in self._all_times if t > now - 1]
        if len(self._all_times) >= limits.global_per_second:
            waits.append(self._all_times[0] + 1 - now)
        wait = max(waits)
        if wait > 0:
            self._buckets[chat_id] = (tokens, now)
            return wait
        self._buckets[chat_id] = (tokens - 1, now)
        if group is not None:
            group.append(now)
        self._all_times.append(now)
        return 0.0


def _is_group(chat_id: Any) -> bool:
    """A group, supergroup or channel: a negative id or an ``@username``."""
    return isinstance(chat_id, str) or (_is_int(chat_id) and chat_id < 0)


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request, as the server received it: its size and SHA-1
    always, its bytes when it was at most the server's ``keep_bytes`` (else ``b""``)."""

    filename: str | None
    content_type: str
    data: bytes
    size: int = -1
    sha1: str = ""


@dataclass(frozen=True)
class StoredFile:
    """A file the server can hand out through ``getFile`` and the file URL."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None
    size: int = -1
    """Its size when ``data`` was not kept (a big upload); -1: ``len(data)``."""
    sha1: str = ""
    local_path: str | None = None
    """The path it was read from, for a ``file://`` document (local mode)."""

    @property
    def file_size(self) -> int:
        """Its size in bytes."""
        return self.size if self.size >= 0 else len(self.data)

    @property
    def digest(self) -> str:
        """Its SHA-1, hex."""
        return self.sha1 or hashlib.sha1(self.data).hexdigest()


@dataclass(frozen=True)
class Request:
    """One request the server answered (or dropped, then ``status`` is ``None``).

    ``params`` is decoded: JSON bodies as sent; form and multipart values JSON-decoded unless
    they are text fields (``text``, ``caption``, ``data``, ...), so ``chat_id`` is an ``int``
    and ``reply_markup`` a ``dict``; uploaded files are :class:`UploadedFile`. ``time`` is the
    :func:`time.monotonic` arrival time; ``response`` the decoded answer body (``None`` when
    it was not JSON or nothing was sent).
    """

    method: str
    params: dict[str, Any]
    time: float
    status: int | None
    response: Any = None
    http_method: str = "POST"


class _ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass
class _Failure:
    status: int
    description: str | None
    retry_after: int | None
    malformed: bool
    remaining: int
    when: Callable[[dict[str, Any]], bool] | None = None
    raw: Any = None


@dataclass
class _Query:
    query: JSON
    answered: bool = False
    answer: dict[str, Any] = field(default_factory=dict)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _HtmlError(ValueError):
    pass


def _parse_html(source: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse mode: ``(plain text, entities)``, offsets in UTF-16 units.

    Raises:
        _HtmlError: with Telegram's wording, for markup Telegram rejects.
    """

    def at(index: int) -> int:
        return len(source[:index].encode())

    out: list[str] = []
    pos = 0  # UTF-16 offset of the output so far
    stack: list[tuple[str, int, str | None]] = []  # (tag, start offset, argument)
    entities: list[JSON] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "&":
            match = _HTML_ENTITY_RE.match(source, i)
            decoded = None
            if match and match.group(3):
                decoded = _HTML_NAMED.get(match.group(3).lower())
            elif match:
                code = int(match.group(1)) if match.group(1) else int(match.group(2), 16)
                decoded = chr(code) if 0 < code <= 0x10FFFF else None
            if match and decoded is not None:
                out.append(decoded)
                pos += _utf16_len(decoded)
                i = match.end()
                continue
        if char != "<":
            out.append(char)
            pos += _utf16_len(char)
            i += 1
            continue
        close = source.find(">", i)
        if close == -1:
            raise _HtmlError(f"Unclosed start tag at byte offset {at(i)}")
        inside = source[i + 1 : close]
        if inside.startswith("/"):
            name = inside[1:].strip().lower()
            if not stack:
                raise _HtmlError(f"Unexpected end tag at byte offset {at(i)}")
            tag, start, argument = stack.pop()
            if name and name != tag:
                raise _HtmlError(
                    f'Unmatched end tag at byte offset {at(i)}, expected "</{tag}>", '
                    f'found "</{name}>"'
                )
            if pos > start:
                entities.append(_html_entity(tag, start, pos - start, argument, entities))
        else:
            parts = inside.split(None, 1)
            name = parts[0].lower() if parts else ""
            rest = parts[1] if len(parts) > 1 else ""
            if name not in _HTML_TAGS:
                raise _HtmlError(f'Unsupported start tag "{name}" at byte offset {at(i)}')
            attrs = {
                m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
                for m in _HTML_ATTR_RE.finditer(rest)
            }
            argument: str | None = None
            if name == "a":
                argument = attrs.get("href")
            elif name == "code":
                argument = attrs.get("class", "").removeprefix("language-") or None
            elif name == "span":
                if attrs.get("class") != "tg-spoiler":
                    raise _HtmlError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {at(i)}'
                    )
            elif name == "blockquote" and "expandable" in attrs:
                argument = "expandable"
            elif name == "tg-emoji":
                argument = attrs.get("emoji-id")
            stack.append((name, pos, argument))
        i = close + 1
    if stack:
        raise _HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


def _html_entity(tag: str, offset: int, length: int, argument: str | None,
                 done: list[JSON]) -> JSON:
    kind = _HTML_TAGS[tag]
    entity: JSON = {"offset": offset, "length": length, "type": kind}
    if kind == "text_link":
        entity["url"] = argument or ""
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = argument or ""
    elif kind == "blockquote" and argument:
        entity["type"] = "expandable_blockquote"
    elif kind == "pre":
        # <pre><code class="language-x">…</code></pre> is one pre entity with a language.
        inner = done[-1] if done else None
        if inner and inner["type"] == "code" and (inner["offset"], inner["length"]) == (
            offset, length
        ):
            done.pop()
            if inner.get("language"):
                entity["language"] = inner["language"]
    elif kind == "code" and argument:
        entity["language"] = argument
    return entity


def _trim(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Strip surrounding whitespace like Telegram, keeping entities on the same characters."""
    head = _utf16_len(text) - _utf16_len(text.lstrip())
    text = text.strip()
    size = _utf16_len(text)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - head, 0)
        end = min(entity["offset"] + entity["length"] - head, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    kept.sort(key=lambda e: (e["offset"], -e["length"]))
    return text, kept


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FakeTelegramServer:
    """A Bot API server on 127.0.0.1 that records requests and keeps per-chat state.

    Use as ``async with FakeTelegramServer() as server:`` or call :meth:`start` and
    :meth:`stop`. Everything runs on the test's event loop; the helpers are not thread-safe.

    Parameters:
        token: the only token accepted; others get 401 Unauthorized.
        bot_username: the bot's ``username`` in ``getMe`` and in sent messages.
        host: the address to listen on (loopback by default; keep it that way).
        limits: the flood limits to enforce (Telegram's by default), or None for none.
        upload_limit: the largest file of a multipart upload; bigger gets 413.
        local_mode: behave like a Bot API server run with ``--local`` (``file://``
            documents are read from disk).
        local_limit: the largest ``file://`` document in local mode.
        keep_bytes: uploads up to this size keep their bytes (bigger: size and SHA-1 only).
    """

    def __init__(self, *, token: str = DEFAULT_TOKEN, bot_username: str = BOT_USERNAME,
                 host: str = "127.0.0.1", limits: FloodLimits | None = FloodLimits(),
                 upload_limit: int = MAX_UPLOAD, local_mode: bool = False,
                 local_limit: int = MAX_LOCAL_UPLOAD, keep_bytes: int = KEEP_BYTES) -> None:
        self.token = token
        self._flood = _FloodGate(limits) if limits is not None else None
        self._too_many = 0
        self.host = host
        self.upload_limit = upload_limit
        self.local_mode = local_mode
        self.local_limit = local_limit
        self.keep_bytes = keep_bytes
        self.bot_user: JSON = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "ariabot test",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._requests: list[Request] = []
        self._changed = asyncio.Event()
        self._failures: dict[str, list[_Failure]] = {}
        self._lost_answers: dict[str, list[_Failure]] = {}
        self.lost_answers: list[Request] = []
        """Calls done (message posted) whose answer was then dropped (lose_answer_next)."""
        self._bad_gateway_until = -math.inf
        """Until this monotonic time every method answers 502 (a proxy without Telegram)."""
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._poll_generation = 0
        self._polls_in_flight = 0
        self.hold_polls = True
        """False answers every ``getUpdates`` at once, as if its ``timeout`` were 0."""
        self._users: dict[int, JSON] = {}
        self._chats: dict[int, JSON] = {}
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[int, dict[int, JSON]] = {}
        self._queries: dict[str, _Query] = {}
        self._query_ids = itertools.count(1)
        self._files: dict[str, StoredFile] = {}
        self._file_numbers = itertools.count(1)
        self._commands: dict[str, list[JSON]] = {}
        self._webhook: JSON = {"url": ""}
        self._menu_buttons: dict[int | None, JSON] = {}
        """The menu button per private chat (None: the default of every private chat)."""
        self._members: dict[int, dict[int, str]] = {}
        self._migrated: dict[int, int] = {}
        """Old group id → its supergroup's id."""
        self._blocked: set[int] = set()
        self._kicked: set[int] = set()
        self._deleted: set[int] = set()
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
            "sendDocument": self._send_document,
            "deleteMessage": self._delete_message,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
        }
        self._method_names = {name.lower(): name for name in self._handlers}

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The TCP port; fixed after the first :meth:`start`, kept across outages."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: give PTB ``f"{url}/bot"`` and ``f"{url}/file/bot"``."""
        return f"http://{self.host}:{self._port}"

    @property
    def online(self) -> bool:
        """Whether the server is accepting connections."""
        return self._runner is not None

    async def start(self) -> None:
        """Listen on ``host`` (a free port the first time, the same port afterwards).

        Raises:
            RuntimeError: if already listening.
        """
        if self._runner is not None:
            raise RuntimeError("FakeTelegramServer is already listening")
        self._closing = False
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2,
                               handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Answer pending long polls with no updates, then close every connection."""
        self._closing = True
        self._notify()
        await self._shutdown()

    async def go_offline(self) -> None:
        """Drop every connection (pending long polls get no answer) and refuse new ones."""
        await self._shutdown()

    async def go_online(self) -> None:
        """Listen again on the same port after :meth:`go_offline`."""
        await self.start()

    async def outage(self, seconds: float) -> None:
        """Be unreachable for ``seconds`` (connections refused), then listen again."""
        await self.go_offline()
        await asyncio.sleep(seconds)
        await self.go_online()

    async def _shutdown(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeTelegramServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    def bad_gateway(self, seconds: float) -> None:
        """Answer every call 502 "Bad Gateway" for ``seconds`` from now: Telegram is away,
        the proxy in front of it answers."""
        self._bad_gateway_until = time.monotonic() + seconds

    def fail_next(self, method: str, times: int = 1, status: int = 429,
                  retry_after: int | None = None, *, description: str | None = None,
                  malformed: bool = False,
                  when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` with an error instead.

        Parameters:
            method: a Bot API method name, or ``"file"`` for downloads.
            times: how many matching calls fail.
            status: 429 → "Too Many Requests: retry after N" with ``parameters.retry_after``;
                500/502 → "Internal Server Error"/"Bad Gateway"; others their usual text.
            retry_after: seconds for 429 (default 1).
            description: replaces the default description.
            malformed: send an nginx HTML page (not JSON) with ``status`` instead.
            when: only calls whose decoded params satisfy it fail (and count).
        """
        if status == HTTPStatus.TOO_MANY_REQUESTS and retry_after is None:
            retry_after = 1
        self._failures.setdefault(method, []).append(
            _Failure(status, description, retry_after, malformed, times, when)
        )

    def lose_answer_next(self, method: str, times: int = 1, *,
                         when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Do the next ``times`` calls of ``method`` (the message is posted, the file kept)
        and then drop the connection without an answer: the answer is lost after the
        message was posted, so the client cannot tell that Telegram has it.

        Parameters:
            method: a Bot API method name.
            times: how many matching successful calls lose their answer.
            when: only calls whose decoded params satisfy it (and count).
        """
        self._lost_answers.setdefault(method, []).append(
            _Failure(HTTPStatus.OK, None, None, False, times, when))

    def _answer_lost(self, method: str, params: dict[str, Any]) -> bool:
        """True (and counted) when this successful call's answer is to be dropped."""
        for rule in self._lost_answers.get(method, []):
            if rule.remaining > 0 and (rule.when is None or rule.when(params)):
                rule.remaining -= 1
                return True
        return False

    @staticmethod
    def _drop_connection(request: web.Request) -> web.StreamResponse:
        """Close the connection with no answer (the client sees it reset or cut)."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=HTTPStatus.OK)

    def answer_next(self, method: str, body: Any, *, status: int = 200, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with exactly ``body`` (for answers
        no real server should give, such as a ``getMe`` result without the bot's fields).

        Parameters:
            method: a Bot API method name.
            body: a ``str`` is sent as an HTML page; anything else as JSON.
            status: the HTTP status.
            times: how many calls get it.
        """
        self._failures.setdefault(method, []).append(
            _Failure(status, None, None, False, times, raw=body)
        )

    def push_update(self, payload: JSON) -> JSON:
        """Queue an update for ``getUpdates``; ``update_id`` is assigned. Returns it."""
        update = {"update_id": next(self._update_ids), **payload}
        self._updates.append(update)
        self._notify()
        return copy.deepcopy(update)

    def push_text(self, chat_id: int, user_id: int, text: str, *,
                  first_name: str | None = None, username: str | None = None) -> JSON:
        """A user sends ``text``; a leading ``/cmd`` or ``/cmd@bot`` gets a bot_command entity.

        Returns:
            The update dict.
        """
        return self.push_update(
            {"message": self._text_message(chat_id, user_id, text, first_name, username)})

    def text_update(self, chat_id: int, user_id: int, text: str) -> JSON:
        """Like :meth:`push_text`, but not queued for ``getUpdates``: the update Telegram
        would POST to a webhook (the test delivers it; this server does not).

        Returns:
            The update dict, with its ``update_id``.
        """
        message = self._text_message(chat_id, user_id, text, None, None)
        return {"update_id": next(self._update_ids), "message": message}

    def _text_message(self, chat_id: int, user_id: int, text: str, first_name: str | None,
                      username: str | None) -> JSON:
        message = self._user_message(chat_id, user_id, first_name, username)
        message["text"] = text
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"offset": 0, "length": _utf16_len(command), "type": "bot_command"}
            ]
        return copy.deepcopy(message)

    def push_document(self, chat_id: int, user_id: int, data: bytes, file_name: str,
                      mime_type: str = "application/x-bittorrent", *,
                      caption: str | None = None, first_name: str | None = None,
                      username: str | None = None) -> JSON:
        """A user sends a document; its bytes are served by ``getFile`` + the file URL.

        Returns:
            The update dict.
        """
        stored = self.add_file(data, file_name=file_name, mime_type=mime_type)
        message = self._user_message(chat_id, user_id, first_name, username)
        message["document"] = self._document(stored)
        if caption is not None:
            message["caption"] = caption
        return self.push_update({"message": message})

    def push_callback(self, chat_id: int, user_id: int, message_id: int, data: str, *,
                      first_name: str | None = None, username: str | None = None,
                      too_old: bool = False) -> JSON:
        """A user presses an inline button with ``data`` under the bot's message.

        ``too_old``: the press reaches the bot after Telegram stopped taking its answer (it
        waited through a restart, or it was answered before a crash and is delivered again):
        ``answerCallbackQuery`` gets 400 "query is too old ... or query ID is invalid".

        Returns:
            The update dict; its ``callback_query.id`` is what ``answerCallbackQuery`` needs.

        Raises:
            LookupError: if the chat has no such message.
        """
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise LookupError(f"chat {chat_id} has no message {message_id}")
        query_id = str(9_000_000_000 + next(self._query_ids))
        query = {
            "id": query_id,
            "from": self._user(user_id, first_name, username),
            "message": copy.deepcopy(message),
            "chat_instance": str(abs(chat_id) * 7919),
            "data": data,
        }
        self._queries[query_id] = _Query(query, answered=too_old)
        return self.push_update({"callback_query": query})

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """Make ``user_id`` a ``creator``, ``administrator``, ``member``, ``left`` or
        ``kicked`` of the group ``chat_id`` (what getChatMember/getChatAdministrators say).

        Raises:
            ValueError: an unknown status, or a private chat (it has no members to set).
        """
        if status not in MEMBER_STATUSES:
            raise ValueError(f"status must be one of {MEMBER_STATUSES}")
        if chat_id > 0:
            raise ValueError("a private chat has no members to set")
        self._members.setdefault(chat_id, {})[user_id] = status

    def migrate(self, chat_id: int, new_chat_id: int | None = None, *,
                by: int | None = None) -> int:
        """Upgrade the group ``chat_id`` to a supergroup, as Telegram does: from now on every
        request naming the old id is answered 400 "group chat was upgraded to a supergroup
        chat" with ``parameters.migrate_to_chat_id``; the old chat keeps its messages, the
        new one starts with none. With ``by`` (the user who upgraded it), the two service
        messages are queued as updates: ``migrate_to_chat_id`` in the old chat,
        ``migrate_from_chat_id`` in the new one.

        Returns:
            The supergroup's id (``-100`` followed by the group's number by default).

        Raises:
            ValueError: ``chat_id`` is not a basic group (a private chat, a supergroup, or
                one already upgraded).
        """
        if chat_id >= 0 or str(chat_id).startswith("-100") or chat_id in self._migrated:
            raise ValueError(f"chat {chat_id} is not a basic group")
        new_id = new_chat_id if new_chat_id is not None else int(f"-100{-chat_id}")
        if by is not None:
            old = self._user_message(chat_id, by, None, None)
            old["migrate_to_chat_id"] = new_id
            self.push_update({"message": copy.deepcopy(old)})
            new = self._user_message(new_id, by, None, None)
            new["migrate_from_chat_id"] = chat_id
            self.push_update({"message": copy.deepcopy(new)})
        self._migrated[chat_id] = new_id
        if chat_id in self._members:
            self._members[new_id] = dict(self._members[chat_id])
        return new_id

    def block(self, user_id: int, blocked: bool = True) -> None:
        """The user blocks the bot (or, with ``blocked=False``, unblocks it): requests to
        the private chat get 403 "bot was blocked by the user"."""
        if user_id <= 0:
            raise ValueError("only a user can block the bot")
        (self._blocked.add if blocked else self._blocked.discard)(user_id)

    def kick_bot(self, chat_id: int) -> None:
        """The bot is removed from the group: 403 "bot was kicked from the group chat" (or
        "... the supergroup chat") for every request to it."""
        if chat_id >= 0:
            raise ValueError("the bot can only be kicked from a group")
        self._kicked.add(chat_id)

    def delete_chat(self, chat_id: int) -> None:
        """The chat no longer exists (deleted group, deleted account): 400 "chat not found"."""
        self._deleted.add(chat_id)

    def _chat_refusal(self, params: dict[str, Any]) -> _ApiError | None:
        """Telegram's answer to a request naming a chat that moved or closed to the bot."""
        raw = params.get("chat_id")
        if isinstance(raw, str) and raw.lstrip("-").isdigit():
            raw = int(raw)
        if not _is_int(raw):
            return None
        if raw in self._migrated:
            return _ApiError(HTTPStatus.BAD_REQUEST, CHAT_MIGRATED,
                             {"migrate_to_chat_id": self._migrated[raw]})
        if raw in self._deleted:
            return _ApiError(HTTPStatus.BAD_REQUEST, CHAT_NOT_FOUND)
        if raw in self._kicked:
            supergroup = str(raw).startswith("-100")
            return _ApiError(HTTPStatus.FORBIDDEN,
                             KICKED_FROM_SUPERGROUP if supergroup else KICKED_FROM_GROUP)
        if raw in self._blocked:
            return _ApiError(HTTPStatus.FORBIDDEN, BOT_BLOCKED)
        return None

    def add_file(self, data: bytes, *, file_name: str | None = None,
                 mime_type: str | None = None, file_path: str | None = None,
                 size: int = -1, sha1: str = "", local_path: str | None = None) -> StoredFile:
        """Register bytes for ``getFile`` and ``GET /file/bot<token>/<file_path>`` (a big
        upload: no bytes, its ``size`` and ``sha1``)."""
        number = next(self._file_numbers)
        suffix = file_name.rsplit(".", 1)[-1] if file_name and "." in file_name else "bin"
        stored = StoredFile(
            file_id=f"BQACAgIAAxkBAAI{number:06d}",
            file_unique_id=f"AgAD{number:06d}",
            file_path=file_path or f"documents/file_{number}.{suffix}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            size=size,
            sha1=sha1,
            local_path=local_path,
        )
        self._files[stored.file_id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile:
        """A stored file (pushed, added, or uploaded by the bot) by its ``file_id``."""
        return self._files[file_id]

    @property
    def polls_in_flight(self) -> int:
        """How many ``getUpdates`` calls are being answered right now (long polls waiting)."""
        return self._polls_in_flight

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by an ``offset``."""
        return copy.deepcopy(self._updates)

    # ------------------------------------------------------------------ inspection

    @property
    def too_many(self) -> int:
        """429 answers the flood limits gave (injected failures are not counted)."""
        return self._too_many

    @property
    def limits(self) -> FloodLimits | None:
        """The flood limits enforced, or None."""
        return self._flood.limits if self._flood is not None else None

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in the order they were answered."""
        return list(self._requests)

    def requests_for(self, method: str) -> list[Request]:
        """The requests for one method, in order."""
        return [r for r in self._requests if r.method == method]

    def count(self, method: str, *, status: int | None = None) -> int:
        """How many requests for ``method`` (answered with ``status``, if given)."""
        return sum(
            1 for r in self._requests
            if r.method == method and (status is None or r.status == status)
        )

    def mark(self) -> int:
        """A position in the request log, for ``wait_for(..., since=mark)``."""
        return len(self._requests)

    async def wait_for(self, method: str,
                       predicate: Callable[[Request], bool] | None = None,
                       timeout: float = 10.0, *, since: int = 0) -> Request:
        """Wait for an answered request; event-driven (woken by each recorded request).

        Parameters:
            method: the Bot API method name (``"file"`` for downloads).
            predicate: extra condition on the :class:`Request`.
            timeout: seconds to wait.
            since: only consider the log from this index (see :meth:`mark`); by default the
                whole log, so a request that already happened is returned at once.

        Returns:
            The first matching request.

        Raises:
            TimeoutError: after ``timeout`` seconds without one.
        """

        def find() -> Request | None:
            for request in self._requests[since:]:
                if request.method == method and (predicate is None or predicate(request)):
                    return request
            return None

        return await self.wait_until(find, timeout=timeout, what=f"a matching {method}")

    async def wait_until(self, check: Callable[[], T], *, timeout: float = 10.0,
                         what: str = "condition") -> T:
        """Re-evaluate ``check`` after every request or pushed update until it is truthy.

        Returns:
            The truthy value.

        Raises:
            TimeoutError: after ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    value = check()
                    if value:
                        return value
                    await self._changed.wait()
        except TimeoutError:
            seen = [f"{r.method}:{r.status}" for r in self._requests[-10:]]
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {what}; last requests: {seen}"
            ) from None

    def messages(self, chat_id: int, *, include_user: bool = False) -> list[JSON]:
        """What the chat shows now: the bot's undeleted messages (and the user's, if asked),
        oldest first, as Bot API message dicts (copies)."""
        bot_id = self.bot_user["id"]
        return [
            copy.deepcopy(m) for _, m in sorted(self._messages.get(chat_id, {}).items())
            if include_user or m.get("from", {}).get("id") == bot_id
        ]

    def message(self, chat_id: int, message_id: int) -> JSON:
        """One current message (a copy).

        Raises:
            KeyError: if it does not exist or was deleted.
        """
        return copy.deepcopy(self._messages[chat_id][message_id])

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """The ``answerCallbackQuery`` params (without the id), or ``None`` if unanswered."""
        query = self._queries.get(query_id)
        return dict(query.answer) if query is not None and query.answered else None

    def commands(self, *, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """The command list set with ``setMyCommands`` for that scope and language."""
        return copy.deepcopy(self._commands.get(self._commands_key(scope, language_code), []))

    @property
    def webhook_url(self) -> str:
        """The URL from the last ``setWebhook`` (empty when none)."""
        return self._webhook["url"]

    # ------------------------------------------------------------------ HTTP plumbing

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _record(self, request: Request) -> None:
        self._requests.append(request)
        self._notify()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        name = request.match_info["method"]
        method = self._method_names.get(name.lower(), name)
        params: dict[str, Any] = {}
        status: int | None = None
        body: Any = None
        try:
            params = await self._read_params(request)
            too_big = any(isinstance(v, UploadedFile) and v.size > self.upload_limit
                          for v in params.values())
            if too_big:
                status, body = self._error(_ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                                     TOO_LARGE))
            else:
                status, body = await self._dispatch(request.match_info["token"], method,
                                                    params)
        finally:
            done = Request(method, params, arrived, None if status is None else int(status),
                           body if isinstance(body, dict) else None, request.method)
            self._record(done)
        if status == HTTPStatus.OK and self._answer_lost(method, params):
            self.lost_answers.append(done)
            return self._drop_connection(request)
        return self._respond(status, body)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        path = request.match_info["file_path"]
        params = {"file_path": path}
        status, body = self._take_failure(FILE_DOWNLOAD, params) or (None, None)
        if status is None:
            stored = next((f for f in self._files.values() if f.file_path == path), None)
            if request.match_info["token"] != self.token or stored is None:
                status, body = self._error(_ApiError(HTTPStatus.NOT_FOUND, "Not Found"))
            else:
                status, body = HTTPStatus.OK, stored.data
        self._record(Request(FILE_DOWNLOAD, params, arrived, int(status),
                             body if isinstance(body, dict) else None, request.method))
        if isinstance(body, bytes):
            return web.Response(status=status, body=body,
                                content_type="application/octet-stream")
        return self._respond(status, body)

    @staticmethod
    def _respond(status: int | None, body: Any) -> web.StreamResponse:
        if isinstance(body, str):
            return web.Response(status=status or 200, text=body, content_type="text/html")
        return web.json_response(body, status=status or 200)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = {k: _decode_field(k, v) for k, v in request.query.items()}
        if not request.body_exists:
            return params
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                for key, value in body.items():
                    is_json_text = isinstance(value, str) and value[:1] in ("{", "[")
                    params[key] = (_decode_field(key, value)
                                   if is_json_text and key not in _TEXT_FIELDS else value)
        elif request.content_type == "multipart/form-data":
            params.update(await self._read_multipart(request))
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    params[key] = UploadedFile(value.filename, value.content_type, data,
                                               len(data), hashlib.sha1(data).hexdigest())
                else:
                    params[key] = _decode_field(key, value)
        return params

    async def _read_multipart(self, request: web.Request) -> dict[str, Any]:
        """Stream a multipart body: files to a SHA-1 (bytes kept up to ``keep_bytes``), so a
        1 GB test upload costs no memory here, and one too big is still read to its end."""
        params: dict[str, Any] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is None:
                params[part.name] = _decode_field(part.name, await part.text())
                continue
            digest, size, kept = hashlib.sha1(), 0, bytearray()
            while chunk := await part.read_chunk(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if size <= self.keep_bytes:
                    kept += chunk
            params[part.name] = UploadedFile(
                part.filename, part.headers.get("Content-Type", "application/octet-stream"),
                bytes(kept) if size <= self.keep_bytes else b"", size, digest.hexdigest())
        return params

    async def _dispatch(self, token: str, method: str,
                        params: dict[str, Any]) -> tuple[int, Any]:
        if token != self.token:
            return self._error(_ApiError(HTTPStatus.UNAUTHORIZED, "Unauthorized"))
        handler = self._handlers.get(method)
        if handler is None:
            return self._error(
                _ApiError(HTTPStatus.NOT_FOUND, "Not Found: method not found")
            )
        if time.monotonic() < self._bad_gateway_until:
            return self._error(_ApiError(HTTPStatus.BAD_GATEWAY, "Bad Gateway"))
        failure = self._take_failure(method, params)
        if failure is not None:
            return failure
        if (refusal := self._chat_refusal(params)) is not None:
            return self._error(refusal)
        if self._flood is not None and method in FLOOD_LIMITED:
            wait = self._flood.admit(params.get("chat_id"), time.monotonic())
            if wait > 0:
                self._too_many += 1
                seconds = max(1, math.ceil(wait))
                return self._error(_ApiError(
                    HTTPStatus.TOO_MANY_REQUESTS, f"Too Many Requests: retry after {seconds}",
                    {"retry_after": seconds}))
        try:
            result = await handler(params)
        except _ApiError as exc:
            return self._error(exc)
        return HTTPStatus.OK, {"ok": True, "result": result}

    def _take_failure(self, method: str, params: dict[str, Any]) -> tuple[int, Any] | None:
        for failure in self._failures.get(method, []):
            if failure.remaining > 0 and (failure.when is None or failure.when(params)):
                failure.remaining -= 1
                break
        else:
            return None
        if failure.raw is not None:
            return failure.status, failure.raw
        if failure.malformed:
            return failure.status, _MALFORMED_BODY
        parameters = None
        if failure.status == HTTPStatus.TOO_MANY_REQUESTS:
            description = f"Too Many Requests: retry after {failure.retry_after}"
            parameters = {"retry_after": failure.retry_after}
        else:
            description = _FAILURE_DESCRIPTIONS.get(
                HTTPStatus(failure.status), HTTPStatus(failure.status).phrase
            )
        return self._error(
            _ApiError(failure.status, failure.description or description, parameters)
        )

    @staticmethod
    def _error(exc: _ApiError) -> tuple[int, JSON]:
        body: JSON = {"ok": False, "error_code": exc.status, "description": exc.description}
        if exc.parameters:
            body["parameters"] = exc.parameters
        return exc.status, body

    # ------------------------------------------------------------------ state helpers

    def _user(self, user_id: int, first_name: str | None = None,
              username: str | None = None) -> JSON:
        user = self._users.setdefault(user_id, {
            "id": user_id, "is_bot": False, "first_name": f"User{user_id}",
            "username": f"user{user_id}", "language_code": "en",
        })
        if first_name is not None:
            user["first_name"] = first_name
        if username is not None:
            user["username"] = username
        return dict(user)

    def _chat(self, chat_id: int, user: JSON | None = None) -> JSON:
        if chat_id not in self._chats:
            if chat_id > 0:
                chat: JSON = {"id": chat_id, "type": "private"}
                person = user or self._users.get(chat_id) or self._user(chat_id)
                chat.update(first_name=person["first_name"], username=person["username"])
            else:
                kind = "supergroup" if str(chat_id).startswith("-100") else "group"
                chat = {"id": chat_id, "type": kind, "title": f"Group {-chat_id}"}
            self._chats[chat_id] = chat
        return dict(self._chats[chat_id])

    def _new_message(self, chat_id: int, sender: JSON) -> JSON:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return {
            "message_id": message_id,
            "from": sender,
            "chat": self._chat(chat_id, sender if not sender["is_bot"] else None),
            "date": int(time.time()),
        }

    def _user_message(self, chat_id: int, user_id: int, first_name: str | None,
                      username: str | None) -> JSON:
        message = self._new_message(chat_id, self._user(user_id, first_name, username))
        self._messages.setdefault(chat_id, {})[message["message_id"]] = message
        return message

    def _store(self, message: JSON) -> JSON:
        self._messages.setdefault(message["chat"]["id"], {})[message["message_id"]] = message
        return copy.deepcopy(message)

    @staticmethod
    def _document(stored: StoredFile) -> JSON:
        document: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }
        if stored.file_name is not None:
            document["file_name"] = stored.file_name
        if stored.mime_type is not None:
            document["mime_type"] = stored.mime_type
        return document

    def _existing(self, params: dict[str, Any], missing: str) -> JSON:
        chat_id = _require_int(params, "chat_id", "Bad Request: chat_id is empty")
        message_id = _require_int(params, "message_id",
                                  "Bad Request: message identifier is not specified")
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise _ApiError(HTTPStatus.BAD_REQUEST, missing)
        return message

    def _mine(self, message: JSON) -> None:
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise _ApiError(HTTPStatus.BAD_REQUEST, MESSAGE_CANT_BE_EDITED)

    @staticmethod
    def _inline_markup(params: dict[str, Any]) -> JSON | None:
        """The ``reply_markup`` a message would show: inline keyboards only, validated."""
        markup = params.get("reply_markup")
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return None
        for row in markup["inline_keyboard"]:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                    raise _ApiError(HTTPStatus.BAD_REQUEST, BUTTON_DATA_INVALID)
                if "web_app" in button:  # Mini Apps: private chats and HTTPS only
                    if not _is_int(params.get("chat_id")) or params["chat_id"] <= 0:
                        raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: BUTTON_TYPE_INVALID")
                    if not str(button["web_app"].get("url", "")).startswith("https://"):
                        raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: BUTTON_URL_INVALID")
        return copy.deepcopy(markup)

    @staticmethod
    def _formatted(params: dict[str, Any], key: str, entities_key: str,
                   empty: str) -> tuple[str, list[JSON]]:
        raw = params.get(key)
        if raw is None or raw == "":
            raise _ApiError(HTTPStatus.BAD_REQUEST, empty)
        raw = str(raw)
        mode = str(params.get("parse_mode") or "").lower()
        if mode == "html":
            try:
                text, entities = _parse_html(raw)
            except _HtmlError as exc:
                raise _ApiError(HTTPStatus.BAD_REQUEST,
                                f"Bad Request: can't parse entities: {exc}") from None
        elif mode in ("", "markdown", "markdownv2"):
            text, entities = raw, list(params.get(entities_key) or [])
        else:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: unsupported parse_mode")
        text, entities = _trim(text, entities)
        if not text:
            raise _ApiError(HTTPStatus.BAD_REQUEST, empty)
        return text, entities

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> JSON | None:
        reply = params.get("reply_parameters")
        target = reply.get("message_id") if isinstance(reply, dict) else None
        target = target if target is not None else params.get("reply_to_message_id")
        if target is None:
            return None
        message = self._messages.get(chat_id, {}).get(target)
        if message is None:
            allowed = isinstance(reply, dict) and reply.get("allow_sending_without_reply")
            if allowed or params.get("allow_sending_without_reply"):
                return None
            raise _ApiError(HTTPStatus.BAD_REQUEST, REPLY_NOT_FOUND)
        quoted = copy.deepcopy(message)
        quoted.pop("reply_to_message", None)
        return quoted

    @staticmethod
    def _commands_key(scope: JSON | None, language_code: str) -> str:
        return json.dumps([scope or {"type": "default"}, language_code or ""], sort_keys=True)

    # ------------------------------------------------------------------ Bot API methods

    async def _get_me(self, params: dict[str, Any]) -> JSON:
        return dict(self.bot_user)

    async def _get_updates(self, params: dict[str, Any]) -> list[JSON]:
        if self._webhook["url"]:
            raise _ApiError(HTTPStatus.CONFLICT, CONFLICT_WEBHOOK)
        self._poll_generation += 1
        self._polls_in_flight += 1
        self._notify()  # wakes an older poll, which then answers 409
        try:
            return await self._long_poll(self._poll_generation, params)
        finally:
            self._polls_in_flight -= 1

    async def _long_poll(self, generation: int, params: dict[str, Any]) -> list[JSON]:
        offset = params.get("offset")
        if _is_int(offset) and offset < 0:
            self._updates = self._updates[offset:]
        elif _is_int(offset) and offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = params.get("limit")
        limit = min(max(limit, 1), 100) if _is_int(limit) else 100
        wait = params.get("timeout") or 0
        wait = float(wait) if isinstance(wait, int | float) and self.hold_polls else 0.0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if generation != self._poll_generation:
                raise _ApiError(HTTPStatus.CONFLICT, CONFLICT_OTHER_POLL)
            remaining = deadline - loop.time()
            if self._updates or remaining <= 0 or self._closing:
                return copy.deepcopy(self._updates[:limit])
            changed = self._changed
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                pass

    async def _send_message(self, params: dict[str, Any]) -> JSON:
        chat_id = _require_int(params, "chat_id", "Bad Request: chat_id is empty")
        text, entities = self._formatted(params, "text", "entities", TEXT_EMPTY)
        if _utf16_len(text) > MAX_TEXT:
            raise _ApiError(HTTPStatus.BAD_REQUEST, TEXT_TOO_LONG)
        markup = self._inline_markup(params)
        reply_to = self._reply_to(chat_id, params)
        message = self._new_message(chat_id, dict(self.bot_user))
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message["text"] = text
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        return self._store(message)

    async def _edit_message_text(self, params: dict[str, Any]) -> JSON:
        if params.get("inline_message_id"):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: inline messages are not faked")
        message = self._existing(params, MESSAGE_TO_EDIT_NOT_FOUND)
        self._mine(message)
        if "text" not in message:
            raise _ApiError(HTTPStatus.BAD_REQUEST, NO_TEXT_TO_EDIT)
        text, entities = self._formatted(params, "text", "entities", TEXT_EMPTY)
        if _utf16_len(text) > MAX_TEXT:
            raise _ApiError(HTTPStatus.BAD_REQUEST, EDIT_TEXT_TOO_LONG)
        markup = self._inline_markup(params)
        unchanged = (
            text == message["text"]
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        )
        if unchanged:
            raise _ApiError(HTTPStatus.BAD_REQUEST, NOT_MODIFIED)
        message["text"] = text
        message.pop("entities", None)
        message.pop("reply_markup", None)
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> JSON:
        if params.get("inline_message_id"):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: inline messages are not faked")
        message = self._existing(params, MESSAGE_TO_EDIT_NOT_FOUND)
        self._mine(message)
        markup = self._inline_markup(params)
        if markup == message.get("reply_markup"):
            raise _ApiError(HTTPStatus.BAD_REQUEST, NOT_MODIFIED)
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query = self._queries.get(str(params.get("callback_query_id", "")))
        if query is None or query.answered:
            raise _ApiError(HTTPStatus.BAD_REQUEST, QUERY_INVALID)
        query.answered = True
        query.answer = {k: v for k, v in params.items() if k != "callback_query_id"}
        return True

    async def _get_file(self, params: dict[str, Any]) -> JSON:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise _ApiError(HTTPStatus.BAD_REQUEST, INVALID_FILE_ID)
        if stored.file_size > MAX_DOWNLOAD:
            raise _ApiError(HTTPStatus.BAD_REQUEST, FILE_TOO_BIG)
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    async def _send_document(self, params: dict[str, Any]) -> JSON:
        chat_id = _require_int(params, "chat_id", "Bad Request: chat_id is empty")
        document = params.get("document")
        if isinstance(document, UploadedFile):
            stored = self.add_file(document.data, file_name=document.filename,
                                   mime_type=document.content_type, size=document.size,
                                   sha1=document.sha1)
        elif self.local_mode and isinstance(document, str) and document.startswith("file://"):
            stored = await self._local_document(document)
        elif isinstance(document, str) and document in self._files:
            stored = self._files[document]
        else:
            raise _ApiError(HTTPStatus.BAD_REQUEST, WRONG_FILE_IDENTIFIER)
        caption: tuple[str, list[JSON]] | None = None
        if params.get("caption"):
            caption = self._formatted(params, "caption", "caption_entities", TEXT_EMPTY)
            if _utf16_len(caption[0]) > MAX_CAPTION:
                raise _ApiError(HTTPStatus.BAD_REQUEST, CAPTION_TOO_LONG)
        markup = self._inline_markup(params)
        reply_to = self._reply_to(chat_id, params)
        message = self._new_message(chat_id, dict(self.bot_user))
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message["document"] = self._document(stored)
        if caption is not None:
            message["caption"] = caption[0]
            if caption[1]:
                message["caption_entities"] = caption[1]
        if markup is not None:
            message["reply_markup"] = markup
        return self._store(message)

    async def _local_document(self, uri: str) -> StoredFile:
        """A ``file://`` document in local mode: the server reads the file from disk."""
        path = Path(unquote(urlsplit(uri).path))
        try:
            size, digest = await asyncio.to_thread(_hash_file, path)
        except OSError:
            raise _ApiError(HTTPStatus.BAD_REQUEST, WRONG_FILE_IDENTIFIER) from None
        if size > self.local_limit:
            raise _ApiError(HTTPStatus.BAD_REQUEST, FILE_TOO_BIG)
        return self.add_file(b"", file_name=path.name, size=size, sha1=digest,
                             local_path=str(path))

    async def _delete_message(self, params: dict[str, Any]) -> bool:
        message = self._existing(params, MESSAGE_TO_DELETE_NOT_FOUND)
        del self._messages[message["chat"]["id"]][message["message_id"]]
        return True

    async def _send_chat_action(self, params: dict[str, Any]) -> bool:
        _require_int(params, "chat_id", "Bad Request: chat_id is empty")
        return True

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: commands not found")
        for command in commands:
            name = str(command.get("command", "")).removeprefix("/")
            description = str(command.get("description", ""))
            if not _COMMAND_RE.fullmatch(name) or not 1 <= len(description) <= 256:
                raise _ApiError(HTTPStatus.BAD_REQUEST, BOT_COMMAND_INVALID)
        key = self._commands_key(params.get("scope"), str(params.get("language_code") or ""))
        self._commands[key] = copy.deepcopy(commands)
        return True

    async def _get_my_commands(self, params: dict[str, Any]) -> list[JSON]:
        return self.commands(scope=params.get("scope"),
                             language_code=str(params.get("language_code") or ""))

    async def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        key = self._commands_key(params.get("scope"), str(params.get("language_code") or ""))
        self._commands.pop(key, None)
        return True

    async def _set_chat_menu_button(self, params: dict[str, Any]) -> bool:
        button = params.get("menu_button") or {"type": "default"}
        kind = button.get("type")
        if kind not in ("default", "commands", "web_app"):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: unsupported menu button type")
        if kind == "web_app":
            url = str((button.get("web_app") or {}).get("url", ""))
            if not 1 <= len(str(button.get("text", ""))) <= 64:
                raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: BUTTON_TEXT_INVALID")
            if not url.startswith("https://"):  # Mini Apps are HTTPS only in production
                raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: BUTTON_URL_INVALID")
        chat_id = params.get("chat_id")
        self._menu_buttons[None if chat_id is None else int(chat_id)] = copy.deepcopy(button)
        return True

    async def _get_chat_menu_button(self, params: dict[str, Any]) -> JSON:
        return self.menu_button(None if params.get("chat_id") is None
                                else int(params["chat_id"]))

    def set_menu_button(self, button: JSON) -> None:
        """The bot's default menu button, as if set earlier (by a run, or in @BotFather)."""
        self._menu_buttons[None] = copy.deepcopy(button)

    def menu_button(self, chat_id: int | None = None) -> JSON:
        """The menu button a private chat shows (its own, else the bot's default)."""
        button = self._menu_buttons.get(chat_id) or self._menu_buttons.get(None)
        return copy.deepcopy(button or {"type": "commands"})

    def _member(self, chat_id: int, user_id: int, status: str) -> JSON:
        """A ChatMember object as Telegram sends it for ``status``."""
        member: JSON = {"status": status, "user": self._user(user_id)}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                can_be_edited=False, is_anonymous=False, can_manage_chat=True,
                can_delete_messages=True, can_manage_video_chats=True,
                can_restrict_members=True, can_promote_members=False, can_change_info=True,
                can_invite_users=True, can_post_stories=False, can_edit_stories=False,
                can_delete_stories=False, can_pin_messages=True,
            )
        elif status == "kicked":
            member["until_date"] = 0
        return member

    async def _get_chat_member(self, params: dict[str, Any]) -> JSON:
        chat_id = _require_int(params, "chat_id", "Bad Request: chat_id is empty")
        user_id = _require_int(params, "user_id", "Bad Request: user_id is empty")
        if user_id <= 0:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: PARTICIPANT_ID_INVALID")
        if chat_id > 0:
            if user_id != chat_id:
                raise _ApiError(HTTPStatus.BAD_REQUEST, USER_NOT_FOUND)
            return self._member(chat_id, user_id, "member")
        status = self._members.get(chat_id, {}).get(user_id, "left")
        return self._member(chat_id, user_id, status)

    async def _get_chat_administrators(self, params: dict[str, Any]) -> list[JSON]:
        chat_id = _require_int(params, "chat_id", "Bad Request: chat_id is empty")
        if chat_id > 0:
            raise _ApiError(HTTPStatus.BAD_REQUEST, NO_ADMINS_IN_PRIVATE)
        members = self._members.get(chat_id, {})
        return [self._member(chat_id, user_id, status)
                for user_id, status in members.items()
                if status in ("creator", "administrator")
                and user_id != self.bot_user["id"]]

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self._webhook = {"url": ""}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        self._webhook = {k: v for k, v in params.items() if not isinstance(v, UploadedFile)}
        self._webhook["url"] = str(params.get("url") or "")
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> JSON:
        return {
            "url": self._webhook["url"],
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }


def _hash_file(path: Path) -> tuple[int, str]:
    if not path.is_absolute() or not path.is_file():
        raise FileNotFoundError(path)
    digest, size = hashlib.sha1(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _decode_field(key: str, value: str) -> Any:
    """A form value as Telegram reads it: JSON for non-text fields when it parses."""
    if key in _TEXT_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _require_int(params: Mapping[str, Any], key: str, missing: str) -> int:
    value = params.get(key)
    if _is_int(value):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise _ApiError(HTTPStatus.BAD_REQUEST, missing)
