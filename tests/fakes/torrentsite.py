"""A web site on 127.0.0.1 that serves ``.torrent`` files the way trackers do, and the ways
they go wrong: redirects (relative, to a magnet link, in a loop, to another address), a login
page, a file too large (announced, or streamed without a length), a 404.

It runs on the test's event loop (aiohttp's server) and counts the requests it gets, so a
test can tell a refusal made before any connection from one made after.
"""

from __future__ import annotations

from aiohttp import web

from tests.fakes.localsite import LocalSite

__all__ = ["TorrentSite"]

TORRENT_TYPE = "application/x-bittorrent"


class TorrentSite(LocalSite):
    """Serves ``torrents`` (name → bytes) at ``/<name>.torrent`` and the faulty routes.

    Parameters:
        torrents: the files it serves.
        magnet: where ``/magnet.torrent`` redirects.
        too_large: the size of ``/big.torrent`` and ``/stream.torrent``.
    """

    def __init__(self, torrents: dict[str, bytes], *, magnet: str, too_large: int) -> None:
        super().__init__()
        self._torrents = torrents
        self._magnet = magnet
        self._too_large = too_large

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/files/{name}.torrent", self._file)
        router.add_get("/relative", self._redirect("files/{first}.torrent"))
        router.add_get("/magnet.torrent", self._to_magnet)
        router.add_get("/loop", self._redirect("/loop"))
        router.add_get("/to-ipv6", self._redirect("http://[::1]:{port}/files/{first}.torrent"))
        router.add_get("/login.torrent", self._login)
        router.add_get("/big.torrent", self._big)
        router.add_get("/stream.torrent", self._stream)

    async def _file(self, request: web.Request) -> web.Response:
        data = self._torrents.get(request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound
        return web.Response(body=data, content_type=TORRENT_TYPE)

    def _redirect(self, location: str) -> web.Handler:
        async def handler(request: web.Request) -> web.Response:
            first = next(iter(self._torrents))
            raise web.HTTPFound(location.format(first=first, port=self.port))
        return handler

    async def _to_magnet(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self._magnet)

    async def _login(self, request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Log in first</body></html>",
                            content_type="text/html")

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"d" + b"0" * self._too_large, content_type=TORRENT_TYPE)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": TORRENT_TYPE})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(self._too_large // 1024 + 2):
            await response.write(b"d" + b"0" * 1023)
        await response.write_eof()
        return response
