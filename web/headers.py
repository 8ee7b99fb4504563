"""The headers a served file carries: its name for saving (RFC 6266 with RFC 5987's
``filename*`` for unicode), and what kind of media a browser can play in the page."""

from __future__ import annotations

import posixpath
import unicodedata
from urllib.parse import quote

__all__ = ["MEDIA_KINDS", "content_disposition", "media_kind"]

MEDIA_KINDS = {
    ".mp4": "video", ".m4v": "video", ".webm": "video", ".ogv": "video",
    ".mp3": "audio", ".m4a": "audio", ".aac": "audio", ".ogg": "audio", ".oga": "audio",
    ".opus": "audio", ".flac": "audio", ".wav": "audio",
}
"""File endings browsers play in ``<video>``/``<audio>`` (Chromium and Firefox alike)."""

_ATTR_CHARS = "!#$&+-.^_`|~"  # RFC 5987 attr-char besides letters and digits


def media_kind(name: str) -> str | None:
    """``"video"``, ``"audio"`` or None (not something the page plays) for a file name."""
    return MEDIA_KINDS.get(posixpath.splitext(name)[1].lower())


def _ascii_fallback(name: str) -> str:
    """The name for clients without RFC 5987: accents dropped (é → e), anything else that
    is not printable ASCII, and ``"``, ``\\`` and ``%``, as ``_``."""
    characters = []
    for character in name:
        plain = unicodedata.normalize("NFKD", character).encode("ascii", "ignore").decode()
        characters.extend(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_"
                          for c in plain or "_")
    return "".join(characters).strip() or "download"


def content_disposition(path: str, *, inline: bool = False) -> str:
    """``Content-Disposition`` for a file whose path in its download is ``path``.

    Only the last component is the saved name (never a folder). Both forms are given:
    ``filename`` (quoted ASCII) for old clients, ``filename*`` (UTF-8, percent-encoded)
    which browsers, curl ``-J`` and wget prefer.
    """
    name = posixpath.basename(path) or "download"
    kind = "inline" if inline else "attachment"
    encoded = quote(name, safe=_ATTR_CHARS)
    return f"{kind}; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"
