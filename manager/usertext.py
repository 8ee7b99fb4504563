"""Small checks on text a user hands ariabot, and quoting it back in a refusal.

Shared by the magnet, tracker, bencode and metainfo checks, so that every refusal quotes the
user's input the same way: repr-escaped (no control character reaches a chat or a log) and
shortened.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "MAX_NAME_BYTES",
    "display",
    "has_control",
    "is_encodable",
    "shorten",
    "show",
    "show_bytes",
    "shown_destination",
    "truncate_utf8",
]

MAX_NAME_BYTES = 255
"""Longest file or folder name on disk, in UTF-8 bytes (NAME_MAX on Linux)."""

_MAX_SHOWN = 80  # characters of user input quoted back in a message
_NAMED_REMOTE = re.compile(r"(:?[0-9A-Za-z_.][0-9A-Za-z_. -]*):(.*)", re.DOTALL)
"""An rclone destination that names a configured remote, ``name:path``, or a backend made on
the fly, ``:webdav:path``."""


def has_control(text: str) -> bool:
    """Whether ``text`` has a control character (C0, DEL or C1)."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def is_encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogates)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def truncate_utf8(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit].decode(errors="ignore")


def display(value: str | bytes) -> str:
    """A name for messages, whatever its encoding."""
    return value if isinstance(value, str) else value.decode(errors="backslashreplace")


def shorten(text: str, most: int = _MAX_SHOWN) -> str:
    """``text`` cut to ``most`` characters, with an ellipsis when it was cut."""
    return text[:most] + "…" if len(text) > most else text


def show(value: object) -> str:
    """User input quoted back in a message: repr-escaped and shortened."""
    return repr(shorten(value if isinstance(value, str) else str(value)))


def show_bytes(value: bytes) -> str:
    """A bencode key quoted back in a message."""
    return show(value.decode(errors="backslashreplace"))


def shown_destination(remote: str, top: str) -> str:
    """Where a download went, in words fit for a chat: never a path of this server.

    ``gdrive:ariabot`` and ``Movies`` give ``gdrive:ariabot/Movies``; a remote whose path is
    absolute (a local or SFTP remote names a server's folder) shows only its name; a bare
    local folder shows as "the mirror folder".
    """
    match = _NAMED_REMOTE.fullmatch(remote)
    if match is None:
        return f"the mirror folder, as {top}" if top else "the mirror folder"
    name, path = match.group(1), match.group(2).strip("/")
    if match.group(2).startswith("/") or ".." in path.split("/"):
        path = "…"
    parts = [part for part in (path, top) if part]
    return f"{name}:" + "/".join(parts)
