"""A feed in a few lines, the same in ``ariabot rss list`` and a chat's ``/rss list``: its
name and host (never its URL, which may hold an API key), its filter, what it added, when
it is read next, and why it fails when it does."""

from __future__ import annotations

from datetime import datetime

from manager.feeds.service import FeedView
from manager.units import human_duration

__all__ = ["feed_text"]


def feed_text(feed: FeedView, now: datetime) -> str:
    """``nyaa (nyaa.si): include "1080p" · 3 added, the last 2h 05m ago · next read in
    14m 10s``, then ``failing for 3h 00m: <reason>`` on a second line when it fails."""
    added = f"{feed.added} added"
    if feed.last_added_at is not None:
        added += f", the last {human_duration((now - feed.last_added_at).total_seconds())} ago"
    if feed.paused:
        when = "paused"
    else:
        wait = (feed.next_poll_at - now).total_seconds()
        when = f"next read in {human_duration(wait)}" if wait >= 1 else "being read"
    line = f"{feed.name} ({feed.host}): {feed.filter} · {added} · {when}"
    if feed.failing_since is not None:
        failing = human_duration((now - feed.failing_since).total_seconds())
        line += f"\n  failing for {failing}: {feed.last_error}"
    elif feed.last_error:
        line += f"\n  last problem: {feed.last_error}"
    return line
