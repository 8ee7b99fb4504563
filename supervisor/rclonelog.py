"""Reading what rclone writes: its JSON log (``--use-json-log``), stats lines and errors.

Pure functions, so every shape rclone writes is tested without running it. With
``--use-json-log --stats 1s --stats-log-level NOTICE`` rclone writes one JSON object per
line on stderr; a stats line carries ``"stats": {"bytes", "totalBytes", "speed", "eta"}``
and an error line ``"level": "error"``. A few fatal lines come before the logger is set up
(``2026/12/03 13:42:27 Failed to create file system for "x:": ...``) and are plain text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

from manager import UploadStats

__all__ = ["RcloneLine", "is_permanent", "parse_line", "plain_reason"]

_PLAIN_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (?:[A-Z]+\s*: )?")
_CREDENTIALS_IN_URL = re.compile(r"(\w+://)[^/\s@\"]+@")
_ATTEMPT_PREFIX = re.compile(r"^Attempt \d+/\d+ failed with \d+ errors? and: ")
_MAX_REASON = 300

_PLAIN_WORDS = MappingProxyType({
    "connection refused": "the remote refused the connection (is it up?)",
    "no such host": "the remote's host name is not known",
    "i/o timeout": "the remote did not answer in time",
    "context deadline exceeded": "the remote did not answer in time",
    "connection reset by peer": "the connection to the remote broke",
    "unexpected eof": "the connection to the remote broke",
    "broken pipe": "the connection to the remote broke",
    "401 unauthorized": "the remote refused the login (check its user and password)",
    "403 forbidden": "the remote refused access (check its permissions)",
    "didn't find section in config file": "no such remote in the rclone config file",
    "invalid characters": "the remote's name is not valid",
    "quota": "the remote is out of space (quota exceeded)",
    "insufficient storage": "the remote is out of space",
    "no space left on device": "the remote is out of space",
    "sizes differ": "a file differs at the destination (its size)",
    "hashes differ": "a file differs at the destination (its hash)",
    "file not in": "a file is missing at the destination",
})
"""Phrases of rclone (and of Go's network errors) and what they mean in plain words."""

_PERMANENT = ("didn't find section in config file", "invalid characters",
              "401 unauthorized", "403 forbidden")
"""Reasons that another attempt cannot fix: a human must act."""


@dataclass(frozen=True)
class RcloneLine:
    """One line of rclone's stderr, read.

    Attributes:
        stats: the transfer's stats, on a stats line.
        error: the message, on an error line (JSON ``level: error`` or a plain fatal line).
        object: the file an error is about, when rclone says.
    """

    stats: UploadStats | None = None
    error: str | None = None
    object: str | None = None


def parse_line(line: str) -> RcloneLine:
    """Read one line rclone wrote; anything unknown reads as an empty :class:`RcloneLine`."""
    text = line.strip()
    if not text:
        return RcloneLine()
    if text.startswith("{"):
        try:
            entry = json.loads(text)
        except ValueError:
            return RcloneLine()
        if not isinstance(entry, dict):
            return RcloneLine()
        stats = entry.get("stats")
        if isinstance(stats, dict):
            return RcloneLine(stats=_stats(stats))
        if entry.get("level") in ("error", "critical", "fatal"):
            return RcloneLine(error=str(entry.get("msg", "")).strip(),
                              object=str(entry["object"]) if entry.get("object") else None)
        return RcloneLine()
    if _PLAIN_PREFIX.match(text):
        message = _PLAIN_PREFIX.sub("", text, count=1)
        if message.startswith(("Failed to", "ERROR", "CRITICAL")) or " : " not in message:
            return RcloneLine(error=message)
    return RcloneLine()


def _number(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _stats(stats: dict[str, object]) -> UploadStats:
    eta = stats.get("eta")
    return UploadStats(
        bytes=_number(stats.get("bytes")),
        total_bytes=_number(stats.get("totalBytes")),
        speed=_number(stats.get("speed")),
        eta_seconds=_number(eta) if isinstance(eta, int | float) else None,
    )


def plain_reason(message: str, *, hide: Iterable[str] = ()) -> str:
    """rclone's error in plain words, fit for a chat: without secrets or server paths.

    Parameters:
        message: rclone's last error message.
        hide: texts to cut out (the local folder: a path of this server).

    Returns:
        A known meaning first ("the remote refused the connection (is it up?)"), then
        rclone's own words, cut to a few hundred characters.
    """
    text = _ATTEMPT_PREFIX.sub("", message.strip())
    text = _CREDENTIALS_IN_URL.sub(r"\1", text)
    for secret in hide:
        if secret:
            text = text.replace(secret.rstrip("/") + "/", "").replace(secret, "")
    text = " ".join(text.split())
    lowered = text.lower()
    meaning = next((words for phrase, words in _PLAIN_WORDS.items() if phrase in lowered),
                   None)
    if not text:
        return meaning or "rclone gave no reason"
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 1] + "…"
    return f"{meaning} — rclone said: {text}" if meaning else f"rclone said: {text}"


def is_permanent(exit_code: int, message: str) -> bool:
    """Whether another attempt cannot help: a usage error (exit 2), a fatal one (7), or a
    reason only a human can fix (no such remote, a refused login)."""
    if exit_code in (2, 7):
        return True
    lowered = message.lower()
    return any(phrase in lowered for phrase in _PERMANENT)
