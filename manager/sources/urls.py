"""Links to ``.torrent`` files: which strings are URLs ariabot fetches, and finding them in a
chat message.

Only ``http`` and ``https`` are fetched. In free text (a message pasted in a chat) only a URL
whose path ends in ``.torrent`` is taken: a group's members paste links of every kind, and
the server must not fetch each one. Any other URL is given on purpose (``/torrent <url>``,
``ariabot add <url>``).
"""

from __future__ import annotations

import re
import urllib.parse

from manager.sources.magnets import trim_link

__all__ = ["find_torrent_urls", "is_http_url"]

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_MAX_URLS_PER_MESSAGE = 5


def is_http_url(text: str) -> bool:
    """Whether ``text`` (stripped) is an ``http://`` or ``https://`` URL, to be fetched."""
    return bool(re.match(r"https?://", text.strip(), re.IGNORECASE))


def find_torrent_urls(text: str, *, limit: int = _MAX_URLS_PER_MESSAGE) -> list[str]:
    """The ``http(s)`` URLs in ``text`` whose path ends in ``.torrent``, in order, without
    repeats, at most ``limit``; trimmed as magnet links are (:func:`trim_link`)."""
    found: list[str] = []
    for match in _URL_IN_TEXT.finditer(text):
        url = trim_link(match.group(0))
        path = urllib.parse.urlsplit(url).path
        if path.lower().endswith(".torrent") and url not in found:
            found.append(url)
            if len(found) >= limit:
                break
    return found
