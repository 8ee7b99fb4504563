"""RSS and Atom feeds shaped like the ones trackers and indexers really serve, and a web site
on 127.0.0.1 that serves them the way feed hosts do (conditional GET, errors, web pages).

The renderers copy the real element names and namespaces: nyaa.si (the ``.torrent`` URL in
``<link>``, ``nyaa:infoHash``, ``nyaa:size`` in words), showRSS and EZTV's ezRSS elements
(a magnet in ``<link>`` and the enclosure, ``torrent:magnetURI``), Jackett and Prowlarr's
Torznab (a download URL that does not end in ``.torrent``, many ``torznab:attr``, in their
own orders) and Atom (``rel="enclosure"``). A parser that copes with these copes with what a
user will paste.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from tests.fakes.localsite import LocalSite

__all__ = ["NYAA_NS", "TORZNAB_NS", "FakeItem", "FeedSite", "atom", "jackett", "nyaa", "prowlarr",
           "showrss"]

NYAA_NS = "https://nyaa.si/xmlns/nyaa"
TORZNAB_NS = "http://torznab.com/schemas/2015/feed"
_EZRSS_NS = "http://xmlns.ezrss.it/0.1/"
_TORRENT_TYPE = "application/x-bittorrent"
_GIB = 1024**3
_MIB = 1024**2


@dataclass(frozen=True)
class FakeItem:
    """One torrent a fake feed lists; None leaves the matching element out."""

    title: str
    guid: str
    torrent_url: str | None = None
    magnet: str | None = None
    info_hash: str | None = None
    size: int | None = None
    published: datetime | None = None


def nyaa(items: Sequence[FakeItem]) -> bytes:
    """nyaa.si's "Torrent File RSS": ``<link>`` is the ``.torrent``, the guid the web page."""
    def item(it: FakeItem) -> str:
        return "".join([
            _el("title", it.title), _el("link", it.torrent_url),
            f'<guid isPermaLink="true">{escape(it.guid)}</guid>', _date(it),
            "<nyaa:seeders>12</nyaa:seeders><nyaa:leechers>3</nyaa:leechers>",
            "<nyaa:downloads>40</nyaa:downloads>", _el("nyaa:infoHash", it.info_hash),
            "<nyaa:categoryId>1_2</nyaa:categoryId>",
            "<nyaa:category>Anime - English-translated</nyaa:category>",
            _el("nyaa:size", _words(it.size)),
            "<nyaa:comments>0</nyaa:comments><nyaa:trusted>No</nyaa:trusted>",
            "<nyaa:remake>No</nyaa:remake>",
            _el("description", f'<a href="{it.guid}">{it.title}</a>'),
        ])
    return _rss("Nyaa - Home - Torrent File RSS", items, item,
                f'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:nyaa="{NYAA_NS}"')


def showrss(items: Sequence[FakeItem]) -> bytes:
    """showRSS (ezRSS elements, as EZTV's feed has them): ``<link>`` and the enclosure are
    the magnet link."""
    def item(it: FakeItem) -> str:
        enclosure = ("" if it.magnet is None else
                     f"<enclosure url={quoteattr(it.magnet)} length=\"0\" "
                     f"type=\"{_TORRENT_TYPE}\" />")
        return "".join([
            _el("title", it.title), _el("link", it.magnet),
            f'<guid isPermaLink="false">{escape(it.guid)}</guid>', _date(it),
            _el("description", f"New episode: {it.title}"),
            "<tv:show_id>1234</tv:show_id>", _el("tv:raw_title", it.title),
            _el("torrent:contentLength", None if it.size is None else str(it.size)),
            _el("torrent:infoHash", it.info_hash), _el("torrent:magnetURI", it.magnet),
            enclosure,
        ])
    return _rss("showRSS: feed for my shows", items, item,
                f'xmlns:tv="https://showrss.info" xmlns:torrent="{_EZRSS_NS}"')


def jackett(items: Sequence[FakeItem]) -> bytes:
    """Jackett's Torznab: link and enclosure are its ``/dl/…`` URL; attrs after them."""
    def item(it: FakeItem) -> str:
        return "".join([
            _el("title", it.title), _el("guid", it.guid),
            '<jackettindexer id="tracker">Tracker</jackettindexer><type>public</type>',
            _el("comments", it.guid), _date(it),
            _el("size", None if it.size is None else str(it.size)),
            "<files>1</files><grabs>40</grabs><description />", _el("link", it.torrent_url),
            "<category>5000</category>", _enclosure(it),
            _attr("category", "5000"), _attr("seeders", "12"), _attr("peers", "15"),
            _attr("size", it.size), _attr("infohash", it.info_hash),
            _attr("magneturl", it.magnet), _attr("downloadvolumefactor", "0"),
            _attr("uploadvolumefactor", "1"),
        ])
    return _rss("Tracker", items, item, _TORZNAB_XMLNS)


def prowlarr(items: Sequence[FakeItem]) -> bytes:
    """Prowlarr's Torznab: other order, attrs mid-item; a magnet-only indexer gives no link
    and no enclosure, only ``magneturl``."""
    def item(it: FakeItem) -> str:
        return "".join([
            _el("title", it.title), "<description />", _el("guid", it.guid),
            '<prowlarrindexer id="3" type="public">Tracker</prowlarrindexer>',
            _el("comments", it.guid), _date(it),
            _el("size", None if it.size is None else str(it.size)),
            _attr("magneturl", it.magnet), _attr("infohash", it.info_hash),
            _el("link", it.torrent_url), "<category>5000</category>", _enclosure(it),
            _attr("category", "5000"), _attr("seeders", "7"), _attr("grabs", "40"),
            _attr("peers", "9"), _attr("downloadvolumefactor", "1"),
            _attr("uploadvolumefactor", "1"),
        ])
    return _rss("Tracker (Prowlarr)", items, item, _TORZNAB_XMLNS)


def atom(items: Sequence[FakeItem]) -> bytes:
    """An Atom feed: a web page as ``rel="alternate"``, the torrent as ``rel="enclosure"``."""
    entries = []
    for it in items:
        href = it.torrent_url or it.magnet
        length = "" if it.size is None else f' length="{it.size}"'
        enclosure = ("" if href is None else
                     f'<link rel="enclosure" type="{_TORRENT_TYPE}" href={quoteattr(href)}'
                     f"{length} />")
        updated = it.published or datetime.fromtimestamp(0).astimezone()
        entries.append(
            f"<entry>{_el('title', it.title)}{_el('id', it.guid)}"
            f"<updated>{updated.isoformat()}</updated>"
            f'<link rel="alternate" type="text/html" href="https://tracker.example/view/1" />'
            f"{enclosure}</entry>"
        )
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>Tracker</title>'
            "<id>urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6</id>"
            "<updated>2026-01-01T00:00:00Z</updated>"
            + "".join(entries) + "</feed>").encode()


class FeedSite(LocalSite):
    """Serves mutable feeds at ``/feeds/<name>`` with a strong ETag and Last-Modified (304 to
    a matching ``If-None-Match`` or ``If-Modified-Since``), ``.torrent`` files at
    ``/files/<name>.torrent`` and ``/dl/<indexer>/?…&file=<name>`` (Jackett's shape) or
    ``/dl/<name>``, a web page at ``/page``, a redirect loop at ``/loop``, and
    ``/huge/<megabytes>``: a feed that long, streamed without a length.

    Attributes:
        feeds: name → body; change it at will (Last-Modified follows).
        statuses: name → an HTTP error status the feed answers instead.
        torrents: name → ``.torrent`` bytes.
        requests: every path and query asked, in order.
        answers: (path, status) → how many times it was answered so.
        holds: torrent name → an event its ``.torrent`` waits for before it is served (a
            read caught in the middle).
    """

    def __init__(self) -> None:
        super().__init__()
        self.feeds: dict[str, bytes] = {}
        self.statuses: dict[str, int] = {}
        self.torrents: dict[str, bytes] = {}
        self.holds: dict[str, asyncio.Event] = {}
        self._seen: dict[str, tuple[str, float]] = {}  # name → (etag, last modified)

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/feeds/{name}", self._feed)
        router.add_get("/files/{name}.torrent", self._file)
        router.add_get("/dl/{name}", self._download)
        router.add_get("/dl/{name}/", self._download)
        router.add_get("/page", self._page)
        router.add_get("/huge/{megabytes}", self._huge)
        router.add_get("/loop", self._loop)

    async def _feed(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.statuses:
            return web.Response(status=self.statuses[name], text="the feed is down")
        body = self.feeds.get(name)
        if body is None:
            raise web.HTTPNotFound
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        previous, modified = self._seen.get(name, ("", 0.0))
        if previous != etag:  # a new body: a later second than the last, for If-Modified-Since
            self._seen[name] = (etag, max(float(int(time.time())), modified + 1))
        modified = self._seen[name][1]
        headers = {"ETag": etag, "Last-Modified": _http_date(modified)}
        match = request.headers.get("If-None-Match")
        since = request.if_modified_since
        if (match is not None and etag in (v.strip() for v in match.split(","))) or (
                match is None and since is not None and int(modified) <= since.timestamp()):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers, content_type="application/rss+xml")

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.holds:
            await self.holds[name].wait()
        data = self.torrents.get(name)
        if data is None:
            raise web.HTTPNotFound
        return web.Response(body=data, content_type=_TORRENT_TYPE)

    async def _download(self, request: web.Request) -> web.Response:
        """Jackett's ``/dl/<indexer>/?jackett_apikey=…&file=<name>``; or ``/dl/<name>``."""
        data = self.torrents.get(request.query.get("file") or request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound
        return web.Response(body=data, content_type=_TORRENT_TYPE)

    async def _loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><html><head><title>Tracker</title></head>"
                            "<body><p>Log in to see the feed.</p></body></html>",
                            content_type="text/html")

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        megabytes = int(request.match_info["megabytes"])
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Big'
                             b"</title>")
        filler = b"<!-- " + b"x" * 1013 + b" -->\n"  # 1 KiB
        for _ in range(megabytes * 1024):
            await response.write(filler)
        await response.write(b"</channel></rss>")
        await response.write_eof()
        return response


_TORZNAB_XMLNS = f'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:torznab="{TORZNAB_NS}"'


def _rss(title: str, items: Sequence[FakeItem], item: Callable[[FakeItem], str],
         namespaces: str) -> bytes:
    body = "".join(f"<item>{item(it)}</item>\n" for it in items)
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" {namespaces}>'
            f"<channel><title>{escape(title)}</title><link>https://tracker.example/</link>"
            f"<description>{escape(title)}</description>\n{body}</channel></rss>").encode()


def _el(name: str, text: str | None) -> str:
    return "" if text is None else f"<{name}>{escape(text)}</{name}>"


def _attr(name: str, value: str | int | None) -> str:
    return ("" if value is None else
            f"<torznab:attr name={quoteattr(name)} value={quoteattr(str(value))} />")


def _enclosure(it: FakeItem) -> str:
    if it.torrent_url is None:
        return ""
    length = 0 if it.size is None else it.size
    return (f"<enclosure url={quoteattr(it.torrent_url)} length=\"{length}\" "
            f"type=\"{_TORRENT_TYPE}\" />")


def _date(it: FakeItem) -> str:
    return "" if it.published is None else _el("pubDate", format_datetime(it.published))


def _words(size: int | None) -> str | None:
    """nyaa's size: "1.4 GiB", "700.0 MiB"."""
    if size is None:
        return None
    return f"{size / _GIB:.1f} GiB" if size >= _GIB else f"{size / _MIB:.1f} MiB"


def _http_date(seconds: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(seconds))
