"""The /log screen: a chat's own activity log, newest first, as escaped HTML.

The manager records who did what to which download (added, paused, chose files, deleted
files...). A chat sees only its own lines: the handler asks the manager for that chat's
entries, and this module only renders them. Every field is escaped; the details the manager
writes are names, info hashes and counts, never a path on the server.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

__all__ = ["LOG_DEFAULT", "LOG_MAX", "ActivityLine", "activity_text"]

LOG_DEFAULT = 10
"""Entries /log shows without a number."""

LOG_MAX = 50
"""Most entries one /log shows (they must fit one message)."""

_DETAIL_LIMIT = 120
_MAX_MESSAGE = 4096


class ActivityLine(Protocol):
    """What /log reads of one activity entry (the manager's ``ActivityEntry``; ``at`` is a
    naive UTC time)."""

    @property
    def at(self) -> datetime: ...
    @property
    def user_id(self) -> int: ...
    @property
    def action(self) -> str: ...
    @property
    def download_id(self) -> int | None: ...
    @property
    def detail(self) -> str: ...


def _line(entry: ActivityLine) -> str:
    parts = [f"{entry.at:%Y-%m-%d %H:%M}", html.escape(entry.action)]
    if entry.download_id is not None:
        parts[1] += f" #{entry.download_id}"
    parts.append(f"by {entry.user_id}" if entry.user_id else "by the server's owner")
    detail = entry.detail
    if len(detail) > _DETAIL_LIMIT:
        detail = detail[: _DETAIL_LIMIT - 1] + "…"
    if detail:
        parts.append(html.escape(detail))
    return " · ".join(parts)


def activity_text(entries: Sequence[ActivityLine]) -> str:
    """The /log answer: one line per entry, newest first (cut to fit one message)."""
    if not entries:
        return "<b>Activity</b>\nNothing has been done in this chat yet."
    lines = [f"<b>Activity</b> (latest {len(entries)}, times in UTC)"]
    used = len(lines[0]) + 1
    for number, entry in enumerate(entries):
        line = _line(entry)
        if used + len(line) + 1 > _MAX_MESSAGE - 100:
            lines.append(f"… and {len(entries) - number} more")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)
