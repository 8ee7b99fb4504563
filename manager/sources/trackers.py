"""Tracker URLs from magnet links and .torrent files: which reach aria2, which are refused.

aria2 announces over http, https and udp only. WebTorrent (``ws``, ``wss``) and Vuze
(``dht://<hash>.dht``) trackers are common in real links, useless to aria2 and harmless: they
are dropped quietly. Any other scheme (``file``, ``javascript``…) refuses the whole source.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

from manager.errors import InvalidSource
from manager.usertext import has_control, show

__all__ = ["MAX_TRACKERS", "collect_trackers"]

MAX_TRACKERS = 50
"""Most trackers kept from one source; more are dropped, in order."""

_TRACKER_SCHEMES = frozenset({"http", "https", "udp"})
_DROPPED_TRACKER_SCHEMES = frozenset({"ws", "wss", "dht"})


def collect_trackers(
    urls: Iterable[str], error: type[InvalidSource], prefix: str
) -> tuple[str, ...]:
    """Check tracker URLs; keep http/https/udp ones, deduplicated, at most :data:`MAX_TRACKERS`.

    Parameters:
        urls: the URLs in the source's order.
        error: what to raise (``InvalidMagnet`` or ``InvalidTorrent``).
        prefix: the start of a refusal's message (``"magnet link refused"``…).

    Returns:
        The usable URLs, in order.

    Raises:
        InvalidSource: ``error``, for a malformed URL or a scheme that is not allowed.
    """
    kept: list[str] = []
    for url in urls:
        checked = _check_tracker(url, error, prefix)
        if checked is not None and checked not in kept:
            kept.append(checked)
    return tuple(kept[:MAX_TRACKERS])


def _check_tracker(url: str, error: type[InvalidSource], prefix: str) -> str | None:
    """Return a usable tracker URL, None for one to drop quietly, or raise ``error``."""
    url = url.strip()
    if not url:
        return None
    if has_control(url) or any(ch.isspace() for ch in url):
        raise error(f"{prefix}: a tracker URL contains blanks or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        _ = parts.port  # raises ValueError when the port is not a number in range
    except ValueError as exc:
        raise error(f"{prefix}: malformed tracker URL {show(url)}") from exc
    if scheme in _DROPPED_TRACKER_SCHEMES:
        return None
    if scheme not in _TRACKER_SCHEMES:
        shown = show(scheme) if scheme else "(none)"
        raise error(
            f"{prefix}: tracker scheme {shown} is not allowed (only http, https and udp)"
        )
    if not host:
        raise error(f"{prefix}: malformed tracker URL {show(url)}")
    return url
