"""Value parsers for settings: each takes the raw value (a TOML value or an environment
string) and returns the typed one, or raises ``ValueError`` with a short reason.

The reason is what the user reads after the key's name (``aria2.rpc_port: must be a whole
number from 0 to 65535``), so it says what a good value looks like and never repeats the
value itself (it may be a secret). :mod:`supervisor.config` declares which parser each
setting uses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from supervisor.rcloneremote import parse_destination

__all__ = [
    "NODE_NAME_SHAPE",
    "TOKEN_SHAPE",
    "Secret",
    "between",
    "boolean",
    "chat_id",
    "database_url",
    "host_port",
    "http_url",
    "listen_address",
    "log_level",
    "networks",
    "node_name",
    "one_of",
    "optional_path",
    "path",
    "port_range",
    "public_url",
    "rclone_bwlimit",
    "rclone_remote",
    "split_listen",
    "telegram_ids",
    "token",
    "webhook_url",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class Secret:
    """A string that never shows itself in logs, tracebacks or ``repr``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the real value; call only where it is sent to its one legitimate reader."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


def between(kind: type[int] | type[float], low: float, high: float) -> Callable[[Any], Any]:
    """A parser for a number of ``kind`` (``int``: whole numbers only) from low to high.

    The reason names the range the way a user types it: ``from 1 to 50`` for whole numbers,
    ``from 0.2 to 300`` for others.
    """
    if kind is int:
        reason = f"must be a whole number from {low} to {high}"
    else:
        reason = f"must be a number from {low:g} to {high:g}"

    def parse(raw: Any) -> Any:
        if isinstance(raw, bool):
            raise ValueError(reason)
        try:
            value = kind(str(raw).strip())
        except ValueError:
            raise ValueError(reason) from None
        if not low <= value <= high:
            raise ValueError(reason)
        return value

    return parse


def boolean(raw: Any) -> bool:
    """true/false, yes/no, on/off or 1/0 (a TOML boolean as it is)."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("must be true or false")


def path(raw: Any) -> Path:
    """A path, ``~`` expanded; a bad ``~name`` is a user's mistake, not a crash."""
    text = str(raw).strip()
    if not text:
        raise ValueError("must not be empty")
    if "\0" in text:
        raise ValueError("must not contain a NUL byte")
    try:
        return Path(text).expanduser()
    except RuntimeError:
        # pathlib's answer to ~name for an unknown user, or to ~ with no HOME and no
        # password entry: a user's mistake, not a crash.
        head = text.split("/", 1)[0]
        whose = f"user {head[1:]!r}" if len(head) > 1 else "the user running ariabot"
        raise ValueError(f"cannot expand {head}: no home directory found for {whose}; "
                         "give a full path") from None


def optional_path(raw: Any) -> Path | None:
    """A path, or None for an empty value (the setting then has a derived default)."""
    return path(raw) if str(raw).strip() else None


def one_of(*choices: str) -> Callable[[Any], str]:
    """A parser that accepts exactly one of ``choices``."""
    def parse(raw: Any) -> str:
        value = str(raw).strip()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def http_url(raw: Any) -> str:
    """An http(s) server root without a trailing slash, query or fragment."""
    value = str(raw).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL such as http://127.0.0.1:8081")
    if parts.query or parts.fragment:
        raise ValueError("must be a bare server root, without ?query or #fragment")
    return value


def telegram_ids(what: str) -> Callable[[Any], tuple[int, ...]]:
    """A parser for a list of Telegram ``what`` ids ("user", "chat"): a TOML list or a
    comma-separated string; repeats are dropped, the order is kept."""
    reason = f"must be Telegram {what} ids (whole numbers), comma-separated"

    def parse(raw: Any) -> tuple[int, ...]:
        items = raw if isinstance(raw, list) else str(raw).replace(" ", "").split(",")
        ids = []
        for item in items:
            if item == "":
                continue
            if isinstance(item, bool):
                raise ValueError(reason)
            try:
                ids.append(int(item))
            except (TypeError, ValueError):
                raise ValueError(reason) from None
        return tuple(dict.fromkeys(ids))

    return parse


def networks(raw: Any) -> tuple[str, ...]:
    """IP networks or addresses (``127.0.0.1/32``, ``10.0.0.0/8``, ``::1``): a TOML list or a
    comma-separated string, each checked and written as a network (``127.0.0.1/32``)."""
    items = raw if isinstance(raw, list) else str(raw).replace(" ", "").split(",")
    found = []
    for item in items:
        if item == "":
            continue
        try:
            found.append(str(ipaddress.ip_network(str(item), strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP network or address; give networks as "
                             "127.0.0.1/32 or 192.168.1.0/24, comma-separated") from None
    return tuple(dict.fromkeys(found))


def webhook_url(raw: Any) -> str:
    """Empty (long polling) or an https:// URL Telegram can post to."""
    value = str(raw).strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be empty (long polling) or an https:// URL Telegram can reach")
    if parts.query or parts.fragment:
        raise ValueError("must not have a ?query or #fragment")
    return value


def host_port(raw: Any) -> str:
    """``host:port`` with a port from 1 to 65535."""
    value = str(raw).strip()
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("must be host:port, such as 127.0.0.1:8443")
    return value


def public_url(raw: Any) -> str:
    """Empty (links off) or the http(s) root users reach the link server at, without a
    trailing slash; a path is kept (a reverse proxy may serve ariabot under one)."""
    value = str(raw).strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be empty (links off) or an http(s):// URL such as "
                         "https://files.example.org")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must be a bare URL, without ?query, #fragment or user:password@")
    return value


def listen_address(raw: Any) -> str:
    """``host:port`` to listen on; an IPv6 host in brackets (``[::1]:8090``); port 0 picks
    a free port."""
    value = str(raw).strip()
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must be host:port, such as 127.0.0.1:8090")
    return value


def split_listen(value: str) -> tuple[str, int]:
    """The host and the port of a :func:`listen_address` value."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def chat_id(raw: Any) -> int:
    """One Telegram chat id (0: none)."""
    if isinstance(raw, bool):
        raise ValueError("must be a Telegram chat id (a whole number, 0 for none)")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError("must be a Telegram chat id (a whole number, 0 for none)") from None


TOKEN_SHAPE = re.compile(r"[0-9]+:[A-Za-z0-9_-]{30,}")
"""A token from @BotFather: the bot's number, a colon, then 35 characters of [A-Za-z0-9_-].
Telegram does not document the length, so 30 or more are accepted; ASCII only (str.isdigit()
and str.isalnum() would let other scripts' digits and letters through)."""


def token(raw: Any) -> Secret:
    """A bot token shaped like @BotFather's (or empty: local mode), held as a :class:`Secret`."""
    value = str(raw).strip()
    if value and not TOKEN_SHAPE.fullmatch(value):
        raise ValueError("does not look like a bot token from @BotFather: that is the bot's "
                         "number, a colon, then at least 30 (BotFather gives 35) of A-Z a-z "
                         "0-9 _ -, as in 123456789:AAH4... (copy it whole from /mybots → API "
                         "Token)")
    return Secret(value)


NODE_NAME_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def node_name(raw: Any) -> str:
    """A node's name: 1-63 of A-Z a-z 0-9 . _ - (as a host name), or empty: the host name."""
    value = str(raw).strip()
    if value and not NODE_NAME_SHAPE.fullmatch(value):
        raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit, as a host name (empty: this machine's host name)")
    return value


def port_range(raw: Any) -> str:
    """Ports 1024-65535, single or ranges, comma-separated (aria2's ``listen-port``)."""
    value = str(raw).strip()
    for part in value.split(","):
        ends = part.split("-")
        if len(ends) > 2 or not all(e.isdigit() and 1024 <= int(e) <= 65535 for e in ends):
            raise ValueError("must be ports 1024-65535, as 6881 or 6881-6999")
    return value


def database_url(raw: Any) -> str:
    """Empty (the default SQLite file), a SQLite or a PostgreSQL URL: the two engines the
    store is tested on (:mod:`manager.store.engine`)."""
    value = str(raw).strip()
    scheme = value.split("://", 1)[0].lower() if "://" in value else None
    if value and scheme not in ("sqlite", "postgres", "postgresql"):
        raise ValueError("must be a database URL such as sqlite:////path/to/ariabot.db or "
                         "postgresql://user:password@host:5432/database")
    return value


def log_level(raw: Any) -> str:
    """DEBUG, INFO, WARNING or ERROR, in any case."""
    return one_of("DEBUG", "INFO", "WARNING", "ERROR")(str(raw).strip().upper())


def rclone_remote(raw: Any) -> str:
    """An rclone destination: ``remote:path`` (``gdrive:ariabot``), an absolute local folder,
    or a connection string (``:webdav,url=...,pass=...:path``, ``nas,pass=...:path``: its
    parameters reach rclone through its environment, see :mod:`supervisor.rcloneremote`);
    empty turns mirroring off. rclone itself says whether the remote exists."""
    text = str(raw).strip()
    if not text:
        return ""
    if any(char in text for char in "\n\r\0"):
        raise ValueError("must be one line")
    parse_destination(text)
    return text


_BWLIMIT = re.compile(r"(?:\d+(?:\.\d+)?[BKMGTPbkmgtp]?|off)")


def rclone_bwlimit(raw: Any) -> str:
    """rclone's ``--bwlimit`` as one rate (``10M``: 10 MiB/s; ``512K``), or empty for none."""
    text = str(raw).strip()
    if text and not _BWLIMIT.fullmatch(text):
        raise ValueError("must be a rate such as 10M or 512K (bytes per second), or empty")
    return text
