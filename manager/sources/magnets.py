"""Magnet links: checking one a user sent, and finding them in a chat message.

:func:`parse_magnet` rebuilds the link from its info-hash, name and trackers only
(:attr:`MagnetLink.uri`): no other parameter of the user's string reaches aria2. Every refusal
is an :class:`~manager.errors.InvalidMagnet` whose message can be shown to the user as is.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from dataclasses import dataclass
from types import MappingProxyType

from manager.errors import InvalidMagnet
from manager.sources.trackers import collect_trackers
from manager.usertext import MAX_NAME_BYTES, has_control, is_encodable, show, truncate_utf8

__all__ = ["MAX_MAGNET_CHARS", "MagnetLink", "find_magnets", "parse_magnet", "trim_link"]

MAX_MAGNET_CHARS = 8192
"""Longest magnet link accepted, in characters (after stripping surrounding blanks)."""

_MAX_MAGNETS_PER_MESSAGE = 5
_MAX_QUERY_FIELDS = 256

_HEX_HASH = re.compile(r"[0-9a-fA-F]{40}")
_BASE32_HASH = re.compile(r"[A-Za-z2-7]{32}")
_XT_KEY = re.compile(r"xt(?:\.[0-9]{1,3})?")
_TR_KEY = re.compile(r"tr(?:\.[0-9]{1,3})?")
_MAGNET_IN_TEXT = re.compile(r"magnet:\?[^\s<>\"'`]+", re.IGNORECASE)
_CLOSING = MappingProxyType({")": "(", "]": "["})  # a bracket a link may end with, its opener


@dataclass(frozen=True)
class MagnetLink:
    """A magnet link that passed :func:`parse_magnet`.

    Attributes:
        info_hash: BitTorrent v1 info-hash, 40 lower-case hex characters.
        name: the display name (``dn``), cleaned and at most 255 bytes; None when absent.
        trackers: http, https and udp tracker URLs, deduplicated, in the link's order.
        uri: a canonical magnet link rebuilt from ``xt`` (hex), ``dn`` and ``tr`` only; this,
            not the user's text, is what goes to aria2.
        hybrid: the link names a hybrid (v1+v2) torrent: it has ``xt=urn:btmh:`` next to
            ``xt=urn:btih:``. Whether aria2 can download it depends on its version
            (:mod:`manager.aria2.compat`).
    """

    info_hash: str
    name: str | None
    trackers: tuple[str, ...]
    uri: str
    hybrid: bool = False


def parse_magnet(text: str) -> MagnetLink:
    """Check a magnet link and rebuild it from the parts aria2 needs.

    Accepted: ``xt=urn:btih:`` with 40 hex (any case) or 32 base32 characters; more ``xt``
    (``xt.1``, ``urn:btmh:`` of a hybrid torrent, which sets :attr:`MagnetLink.hybrid`,
    other networks' URNs) as long as the ``btih`` ones agree; ``tr`` and ``tr.N`` trackers;
    any other parameter (``x.pe``, ``so``, ``ws``, ``xl``, ``kt``…), which is ignored.
    HTML-escaped ``&amp;`` separators are undone.

    Refused: other schemes, more than :data:`MAX_MAGNET_CHARS` characters, control characters,
    a missing or malformed ``btih``, a v2-only link (``btmh`` without ``btih``: aria2 cannot
    download it), a ``dn`` containing ``/`` or ``\\`` or being ``.``/``..``, and a tracker
    whose scheme is not http, https or udp (WebTorrent ``ws``/``wss`` and Vuze ``dht``
    trackers are dropped instead, since real clients add them to ordinary links).

    Parameters:
        text: the link as the user sent it; surrounding blanks are ignored.

    Returns:
        The checked :class:`MagnetLink`.

    Raises:
        InvalidMagnet: with a message fit for the user.
    """
    if not isinstance(text, str):
        raise InvalidMagnet("not a magnet link: expected text")
    text = text.strip()
    if len(text) > MAX_MAGNET_CHARS:
        raise InvalidMagnet(
            f"not a magnet link: too long ({len(text)} characters, limit {MAX_MAGNET_CHARS})"
        )
    if not is_encodable(text):
        raise InvalidMagnet("not a magnet link: it is not valid text")
    if has_control(text):
        raise InvalidMagnet("not a magnet link: it contains control characters")
    head, question, query = text.partition("?")
    if head.lower() != "magnet:" or not question:
        raise InvalidMagnet("not a magnet link: it must start with magnet:?")
    query = query.replace("&amp;", "&")
    try:
        pairs = urllib.parse.parse_qsl(
            query, keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS
        )
    except ValueError as exc:  # too many fields
        raise InvalidMagnet("not a magnet link: it has too many parameters") from exc

    hashes: list[str] = []
    has_btmh = False
    names: list[str] = []
    tracker_values: list[str] = []
    for raw_key, value in pairs:
        key = raw_key.lower()
        if _XT_KEY.fullmatch(key):
            urn = value.strip()
            prefix = urn[:9].lower()
            if prefix == "urn:btih:":
                hashes.append(_hex_info_hash(urn[9:]))
            elif prefix == "urn:btmh:":
                has_btmh = True
            # Other URNs (sha1, ed2k, tree:tiger…) are for other networks: ignored.
        elif key == "dn":
            names.append(value)
        elif _TR_KEY.fullmatch(key):
            tracker_values.append(value)

    if not hashes:
        if has_btmh:
            raise InvalidMagnet(
                "aria2 cannot download BitTorrent v2-only magnet links: this one has "
                "xt=urn:btmh but no xt=urn:btih"
            )
        raise InvalidMagnet("not a magnet link: missing xt=urn:btih")
    if len(set(hashes)) > 1:
        raise InvalidMagnet("not a magnet link: it names more than one info-hash")
    info_hash = hashes[0]
    name = _magnet_name(names[0]) if names else None
    trackers = collect_trackers(tracker_values, InvalidMagnet, "magnet link refused")

    parts = [f"xt=urn:btih:{info_hash}"]
    if name is not None:
        parts.append("dn=" + urllib.parse.quote(name, safe=""))
    parts.extend("tr=" + urllib.parse.quote(url, safe="") for url in trackers)
    return MagnetLink(
        info_hash=info_hash, name=name, trackers=trackers, uri="magnet:?" + "&".join(parts),
        hybrid=has_btmh,
    )


def find_magnets(text: str, *, limit: int = _MAX_MAGNETS_PER_MESSAGE) -> list[str]:
    """Pick the magnet links out of free text, such as a chat message.

    A link ends at white space, a quote or an angle bracket; trailing sentence punctuation
    and an unbalanced closing bracket are not part of it. The strings are not checked: give
    each to :func:`parse_magnet`.

    Parameters:
        text: the message.
        limit: at most this many links are returned (the first ones, without repeats).

    Returns:
        The links in the order they appear, possibly empty.
    """
    found: list[str] = []
    if not isinstance(text, str) or limit <= 0:
        return found
    for match in _MAGNET_IN_TEXT.finditer(text):
        link = trim_link(match.group(0))
        if link not in found:
            found.append(link)
            if len(found) >= limit:
                break
    return found


def trim_link(link: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets from the end of a link."""
    while link:
        last = link[-1]
        unbalanced = last in _CLOSING and link.count(last) > link.count(_CLOSING[last])
        if last not in ".,;:!?" and not unbalanced:
            break
        link = link[:-1]
    return link


def _hex_info_hash(value: str) -> str:
    """Return a btih value as 40 lower-case hex characters, from hex or base32."""
    if _HEX_HASH.fullmatch(value):
        return value.lower()
    if _BASE32_HASH.fullmatch(value):
        return base64.b32decode(value.upper()).hex()
    raise InvalidMagnet("not a magnet link: info-hash must be 40 hex or 32 base32 characters")


def _magnet_name(value: str) -> str | None:
    """Check and clean a ``dn`` value; None when it is blank."""
    value = value.strip()
    if not value:
        return None
    if has_control(value):
        raise InvalidMagnet("magnet link refused: its name (dn) contains control characters")
    if "/" in value or "\\" in value or value in (".", ".."):
        raise InvalidMagnet(
            f"magnet link refused: its name (dn) must not be a path: {show(value)}"
        )
    return truncate_utf8(value, MAX_NAME_BYTES)
