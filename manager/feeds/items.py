"""A feed document read into the torrents it lists: what to add for each item, and the facts
(info-hash, size, date) that let a chat filter items and never add one twice.

Trackers and indexers put the torrent in different places, so each item's source is chosen
in this order (as Sonarr's ``TorrentRssParser`` and ``TorznabRssParser`` do):

1. an enclosure with an http(s) URL that is a torrent (type ``application/x-bittorrent``, a
   path ending ``.torrent``, or any enclosure of a Torznab feed: Jackett's and Prowlarr's
   download links end in ``?…&file=Name``);
2. ``<link>`` when its path ends ``.torrent`` (nyaa's "Torrent File RSS");
3. a magnet link: Torznab's ``magneturl`` attribute, ezRSS's ``torrent:magnetURI``, or an
   enclosure or ``<link>`` that is one (showRSS);
4. only an info-hash (``nyaa:infoHash``, ``torrent:infoHash``, Torznab's ``infohash``): a
   magnet link is made of it and the title.

A ``<link>`` to an ordinary web page is never a source: it is the tracker's page about the
torrent, and adding it would fetch HTML. Items with no source are counted, not returned.

Feeds come from anywhere, so the document is read defensively: one that declares XML
entities in its DTD is refused before any parser sees it (the "billion laughs" expansion and
external entities that read the server's files, as defusedxml refuses them), and feedparser
runs without network, sanitising or URI resolution, on bytes the caller fetched within its
own limits. feedparser keeps only the last ``torznab:attr`` of an item, so a Torznab
document's attributes are read again with ElementTree, which is safe once entities are
refused.
"""

from __future__ import annotations

import calendar
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import feedparser

from manager.errors import FeedError, InvalidMagnet
from manager.feeds.filters import parse_size
from manager.sources import parse_magnet

__all__ = ["TORZNAB_NS", "FeedItem", "ParsedFeed", "read_feed"]

TORZNAB_NS = "http://torznab.com/schemas/2015/feed"
"""The Torznab namespace (Jackett, Prowlarr, NZBHydra): its ``attr`` elements name the
size, info-hash and magnet link."""

_TORRENT_TYPE = "application/x-bittorrent"
_HASH = re.compile(r"[0-9a-fA-F]{40}|[A-Za-z2-7]{32}")
_INTEGER = re.compile(r"[0-9]{1,20}")
_HTML = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_ENCODINGS = (  # how the document starts → how to read its prolog (XML 1.0, appendix F)
    (b"\xef\xbb\xbf", "utf-8"), (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
    (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"), (b"<\x00?\x00", "utf-16-le"), (b"Lo\xa7\x94", "cp500"),
)
_ENTITY = re.compile(r"<!ENTITY", re.IGNORECASE)
_MISC = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_BLANK = re.compile(r"\s*")
_ROOT = re.compile(r"<[A-Za-z_:\u00c0-\uffff]")
_LITERAL = r"""(?:"[^"]*"|'[^']*')"""
_DOCTYPE = re.compile(
    rf"<!DOCTYPE\s+[^\s\[>]+(?:\s+(?:SYSTEM\s+{_LITERAL}|PUBLIC\s+{_LITERAL}\s+{_LITERAL}))?\s*",
    re.IGNORECASE,
)
_SUBSET = re.compile(  # the internal subset's markup, entity declarations excepted
    rf"\s+|<\?.*?\?>|<!--.*?-->|%[^\s;]+;|<!(?:ELEMENT|ATTLIST|NOTATION)\s(?:[^\"'>]|{_LITERAL})*>",
    re.DOTALL | re.IGNORECASE,
)


@dataclass(frozen=True)
class FeedItem:
    """One torrent a feed lists.

    Attributes:
        guid: the item's stable key: its guid (RSS) or id (Atom); else its source.
        title: its title, stripped; its guid when it has none.
        source: what to add: an http(s) URL of a ``.torrent`` (possibly one that redirects to
            a magnet link), or a magnet link. Not checked further: the adding path does that.
        info_hash: 40 lower-case hex characters when the feed says it (directly or in a
            magnet link), else None.
        size: in bytes when the feed says it, else None.
        published: POSIX seconds when the feed dates the item, else None.
        fallback: the magnet link the item names too (or one made of its info-hash) when
            its source is a ``.torrent`` link: what is added when that link fails (an
            indexer's download links expire).
    """

    guid: str
    title: str
    source: str
    info_hash: str | None
    size: int | None
    published: float | None
    fallback: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """A feed document, read.

    Attributes:
        title: the feed's title, stripped (may be empty).
        items: the items that name a torrent, in the feed's order (usually newest first).
        without_torrent: how many items named no torrent at all and were skipped.
    """

    title: str
    items: tuple[FeedItem, ...]
    without_torrent: int


def read_feed(body: bytes) -> ParsedFeed:
    """Read an RSS or Atom document into the torrents it lists.

    Parameters:
        body: the document as fetched (any encoding XML allows); nothing is fetched here.

    Returns:
        The feed; a feed with no items, or none naming a torrent, is not an error (the caller
        words that).

    Raises:
        FeedError: the document declares XML entities, or it is not an RSS or Atom feed (a
            web page, JSON, garbage).
    """
    if _declares_entities(body):
        raise FeedError("the feed declares XML entities, which this bot does not read")
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    entries: Sequence[Mapping[str, Any]] = parsed.get("entries") or ()
    if not parsed.get("version") and not entries:
        if _HTML.search(body[:4096]):
            raise FeedError("it is a web page, not an RSS or Atom feed")
        raise FeedError("it is not an RSS or Atom feed")
    torznab = TORZNAB_NS in (parsed.get("namespaces") or {}).values()
    attrs = _torznab_attrs(body, entries) if torznab else [{} for _ in entries]
    items = []
    for entry, entry_attrs in zip(entries, attrs, strict=True):
        item = _read_item(entry, entry_attrs, torznab=torznab)
        if item is not None:
            items.append(item)
    title = (parsed.get("feed") or {}).get("title")
    return ParsedFeed(title=_text(title), items=tuple(items),
                      without_torrent=len(entries) - len(items))


def _read_item(entry: Mapping[str, Any], attrs: Mapping[str, str], *, torznab: bool,
               ) -> FeedItem | None:
    """One entry as a :class:`FeedItem`; None when it names no torrent."""
    title = _text(entry.get("title"))
    link = _text(entry.get("link"))
    enclosures = [item for item in entry.get("links") or ()
                  if isinstance(item, Mapping) and item.get("rel") == "enclosure"]
    magnet = next((m for m in (attrs.get("magneturl"), entry.get("torrent_magneturi"),
                               entry.get("magneturi"),
                               *(e.get("href") for e in enclosures), link)
                   if _magnet_hash(m) is not None), None)
    info_hash = next((h for h in map(_hex_hash, (
        attrs.get("infohash"), entry.get("nyaa_infohash"), entry.get("torrent_infohash"),
        entry.get("infohash"), entry.get("tv_info_hash"))) if h is not None), None)
    if info_hash is None and magnet is not None:
        info_hash = _magnet_hash(magnet)

    source = next((_text(e.get("href")) for e in enclosures if _is_torrent_enclosure(e, torznab)),
                  None)
    if source is None and _is_http(link) and _path_is_torrent(link):
        source = link
    named = _text(magnet) if magnet is not None else None
    if named is None and info_hash is not None:
        named = f"magnet:?xt=urn:btih:{info_hash}"
        if title:
            named += "&dn=" + urllib.parse.quote(title, safe="")
    if source is None:
        source, named = named, None
    if source is None:
        return None

    guid = _text(entry.get("id")) or source
    size = next((s for s in (
        _integer(attrs.get("size")), _integer(entry.get("size")),
        _words_size(entry.get("nyaa_size")), _integer(entry.get("torrent_contentlength")),
        _integer(entry.get("contentlength")),
        *(_integer(e.get("length")) for e in enclosures)) if s is not None), None)
    return FeedItem(guid=guid, title=title or guid, source=source, info_hash=info_hash,
                    size=size, published=_published(entry), fallback=named)


def _declares_entities(body: bytes) -> bool:
    """Whether the document's prolog declares an entity, or might (then it is refused too).

    Only a document that spells ``<!ENTITY`` somewhere is looked at closer: its prolog is
    walked token by token (comments, processing instructions, the DOCTYPE and its internal
    subset) up to the root element. A prolog that cannot be walked is taken as declaring one:
    a comment or literal holding ``<a`` must not hide a declaration behind it.
    """
    text = _decoded(body)
    if not _ENTITY.search(text):
        return False
    pos = 1 if text.startswith("\ufeff") else 0
    while True:
        if (match := _MISC.match(text, pos)) is not None:
            pos = match.end()
            continue
        if _ROOT.match(text, pos):
            return False
        if (match := _DOCTYPE.match(text, pos)) is None:
            return True
        pos = match.end()
        if text.startswith("[", pos):
            pos += 1
            while (match := _SUBSET.match(text, pos)) is not None:
                pos = match.end()
            if not text.startswith("]", pos):
                return True  # an entity declaration, or markup this walk does not know
            pos = _BLANK.match(text, pos + 1).end()
        if not text.startswith(">", pos):
            return True
        pos += 1


def _decoded(body: bytes) -> str:
    """The document as text, enough to find its markup (latin-1 keeps ASCII where it is)."""
    for start, encoding in _ENCODINGS:
        if body.startswith(start):
            return body.decode(encoding, errors="replace")
    return body.decode("latin-1")


def _torznab_attrs(body: bytes, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Every ``torznab:attr`` of each entry (name → first value), read with ElementTree.

    Matched to feedparser's entries by position when both saw the same items (the same
    count, guids agreeing), else by guid; an entry matched to none, or every entry when
    ElementTree cannot parse a document feedparser's loose parser coped with, keeps the one
    attribute feedparser kept.
    """
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 (entities were refused above)
    except (ElementTree.ParseError, ValueError, LookupError):
        return [_feedparser_attr(entry) for entry in entries]
    found: list[tuple[str, dict[str, str]]] = []
    for element in root.iter("item"):
        attrs: dict[str, str] = {}
        for attr in element.findall(f"{{{TORZNAB_NS}}}attr"):
            name, value = (attr.get("name") or "").strip().lower(), attr.get("value")
            if name and value is not None:
                attrs.setdefault(name, value.strip())
        found.append(((element.findtext("guid") or "").strip(), attrs))
    by_guid: dict[str, dict[str, str]] = {}
    for guid, attrs in found:
        if guid:
            by_guid.setdefault(guid, attrs)
    matched = []
    for index, entry in enumerate(entries):
        guid = _text(entry.get("id"))
        if len(found) == len(entries) and (not guid or not found[index][0]
                                           or guid == found[index][0]):
            matched.append(found[index][1])
        elif guid in by_guid:
            matched.append(by_guid[guid])
        else:
            matched.append(_feedparser_attr(entry))
    return matched


def _feedparser_attr(entry: Mapping[str, Any]) -> dict[str, str]:
    attr = entry.get("torznab_attr")
    if not isinstance(attr, Mapping):
        return {}
    name, value = _text(attr.get("name")).lower(), attr.get("value")
    return {name: value.strip()} if name and isinstance(value, str) else {}


def _is_torrent_enclosure(enclosure: Mapping[str, Any], torznab: bool) -> bool:
    href = _text(enclosure.get("href"))
    if not _is_http(href):
        return False
    kind = _text(enclosure.get("type")).lower()
    return torznab or kind == _TORRENT_TYPE or _path_is_torrent(href)


def _is_http(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _path_is_torrent(url: str) -> bool:
    try:
        return urllib.parse.urlsplit(url).path.lower().endswith(".torrent")
    except ValueError:
        return False


def _hex_hash(value: object) -> str | None:
    """An info-hash as 40 lower-case hex, from 40 hex or 32 base32 characters; else None."""
    text = _text(value)
    if not _HASH.fullmatch(text):
        return None
    return parse_magnet(f"magnet:?xt=urn:btih:{text}").info_hash


def _magnet_hash(value: object) -> str | None:
    """The info-hash of a magnet link ariabot accepts; None for anything else."""
    text = _text(value)
    if not text.lower().startswith("magnet:"):
        return None
    try:
        return parse_magnet(text).info_hash
    except InvalidMagnet:
        return None


def _integer(value: object) -> int | None:
    """A positive whole number of bytes; None for anything else (0 is "unknown" in feeds)."""
    text = _text(value)
    return (int(text) or None) if _INTEGER.fullmatch(text) else None


def _words_size(value: object) -> int | None:
    """nyaa's size in words ("1.4 GiB"); None for anything else."""
    text = _text(value)
    return (parse_size(text) or None) if text else None


def _published(entry: Mapping[str, Any]) -> float | None:
    moment = entry.get("published_parsed") or entry.get("updated_parsed")
    if moment is None:
        return None
    try:
        return float(calendar.timegm(moment))
    except (TypeError, ValueError, OverflowError):
        return None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
