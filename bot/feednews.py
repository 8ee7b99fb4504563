"""What a chat is told of its feeds: an add (as a manual add is: its live progress message,
"from feed …"), several adds of one feed at once in one message, a feed failing for long."""

from __future__ import annotations

import html
from collections.abc import Sequence

from bot.views import human_size
from manager import Torrent

__all__ = ["SUMMARY_OVER", "feed_note", "feed_summary_text"]

SUMMARY_OVER = 3
"""More adds than this of one feed, pending together, are told in one message."""
_LISTED = 20
"""Downloads named in one summary; the rest are counted."""


def feed_note(feed_name: str) -> str:
    """The note of a progress message that a feed's add opened."""
    return f"from feed “{feed_name}”"


def feed_summary_text(feed_name: str, torrents: Sequence[Torrent], gone: int = 0) -> str:
    """``Feed “nyaa” added 7 downloads:`` then one line each (``#12 Name · 1.2 GiB``), at
    most :data:`_LISTED`; ``/status`` shows their progress. ``gone``: adds whose download
    was removed meanwhile (counted, not named)."""
    count = len(torrents) + gone
    lines = [f"Feed “{html.escape(feed_name)}” added {count} download"
             f"{'s' if count != 1 else ''}:"]
    for torrent in torrents[:_LISTED]:
        size = f" · {human_size(torrent.total_bytes)}" if torrent.total_bytes else ""
        lines.append(f"#{torrent.id} {html.escape(torrent.name)}{size}")
    more = len(torrents) - _LISTED
    if more > 0:
        lines.append(f"… and {more} more")
    lines.append("/status shows their progress.")
    return "\n".join(lines)
