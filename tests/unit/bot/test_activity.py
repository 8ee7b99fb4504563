"""The /log screen as a pure function: escaped, newest first as given, cut to one message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.activity import activity_text


@dataclass(frozen=True)
class Entry:
    at: datetime
    user_id: int
    action: str
    download_id: int | None
    detail: str


WHEN = datetime(2026, 12, 3, 7, 5, 9)


def test_lines_show_time_action_download_user_and_escaped_detail() -> None:
    text = activity_text([Entry(WHEN, 42, "add", 3, "magnet ab <i>x</i> & y"),
                          Entry(WHEN, 0, "purge", None, "")])
    head, first, second = text.splitlines()
    assert head.startswith("<b>Activity</b>") and "UTC" in head
    assert first == "2026-12-03 07:05 · add #3 · by 42 · magnet ab &lt;i&gt;x&lt;/i&gt; &amp; y"
    assert second == "2026-12-03 07:05 · purge · by the server's owner"


def test_empty_log_and_long_logs_fit_one_message() -> None:
    assert "Nothing has been done" in activity_text([])
    many = [Entry(WHEN, 1, "add", n, "d" * 500) for n in range(1, 200)]
    text = activity_text(many)
    assert len(text) < 4096 and text.endswith("more")
    assert "d" * 120 not in text and "d" * 119 + "…" in text
