"""The embedded HTTP server of signed links: a download's page and its files.

It runs on the same event loop as the bot and the manager, behind the owner's reverse proxy
(``ARIABOT_PUBLIC_URL``), on loopback by default. It asks the manager what a link opens
(:meth:`manager.TorrentManager.open_link`) at every request, so a link dies the moment its
download is cancelled, purged or its files deleted; and it serves a file only by its number
in that answer, never by a name or path taken from the URL.

A player sends a storm of Range requests: each costs the check of the link's signature
(before any query), one row read and the check on disk of the one file served (the
manager keeps the parsed metainfo). At most :data:`MAX_REQUESTS` requests are served at
once, files streaming included; beyond that the answer is 503 with ``Retry-After``, so a
storm cannot take the event loop (which the bot shares) or the disk away from everything
else.

Why aiohttp: asyncio-native (no thread per client, the loop python-telegram-bot already
runs), and its ``FileResponse`` does Range, ``If-Range`` and conditional requests and sends
with ``sendfile(2)``: the file's bytes never pass through Python.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from aiohttp import web

from manager import LinkExpired, LinkRefused, ManagerError, SharedDownload, SharedFile
from web.fileresponse import OwnFileResponse
from web.headers import content_disposition
from web.miniapp import MiniApp
from web.pages import download_page, refusal_page

__all__ = ["MAX_REQUESTS", "LinkOpener", "LinkServer", "build_app"]

log = logging.getLogger(__name__)

_COMMON = {
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never send it elsewhere
    "X-Content-Type-Options": "nosniff",
}
_PAGE = {
    **_COMMON,
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; media-src 'self'; "
                               "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
}
_FILE = {**_COMMON, "Cache-Control": "private, max-age=3600"}
MAX_REQUESTS = 16
"""Requests served at once (a file's streaming included); more get 503 Retry-After."""
_RETRY_AFTER = "1"
_T = TypeVar("_T")


class LinkOpener(Protocol):
    """What the server needs of the manager: what a link's token opens."""

    async def open_link(self, token: str) -> SharedDownload:
        """Raises LinkRefused (LinkExpired) for a link that serves nothing."""
        ...

    async def open_link_file(self, token: str, number: int) -> SharedFile | None:
        """File ``number`` of the link, None if it has none such; raises as open_link."""
        ...


def _page(status: int, title: str, text: str) -> web.Response:
    return web.Response(status=status, text=refusal_page(title, text),
                        content_type="text/html", charset="utf-8", headers=_PAGE)


async def _open(opening: Awaitable[_T]) -> _T | web.Response:
    try:
        return await opening
    except LinkExpired:
        return _page(403, "This link has expired",
                     "Ask the bot for a new one (/link with the download's number).")
    except LinkRefused as error:
        log.info("refused a link: %s", error)
        return _page(403, "This link does not work",
                     "It was never valid, or its download was cancelled, removed, or its "
                     "files deleted.")
    except ManagerError as error:
        log.warning("could not open a link: %s", error)
        return _page(503, "Try again later", "ariabot cannot answer right now.")


def _bounded(limit: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that serves at most ``limit`` requests at once, a file's whole
    streaming included (it is sent inside the bound); the others get 503 at once.

    A route whose handler is marked ``unbounded`` (the Mini App's event stream: open as long
    as its page, bounded per user by the Mini App) is not counted, or 16 open pages would
    take every slot."""
    slots = asyncio.Semaphore(limit)

    @web.middleware
    async def bounded(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                      ) -> web.StreamResponse:
        if getattr(request.match_info.handler, "unbounded", False):
            return await handler(request)
        if slots.locked():
            response = _page(503, "Busy", "Too many requests at once; try again in a moment.")
            response.headers["Retry-After"] = _RETRY_AFTER
            return response
        async with slots:
            response = await handler(request)
            if isinstance(response, OwnFileResponse):
                await response.prepare(request)
                await response.write_eof()
            return response

    return bounded


def build_app(opener: LinkOpener, *, max_requests: int = MAX_REQUESTS,
              miniapp: MiniApp | None = None) -> web.Application:
    """The aiohttp application: ``/d/<token>`` (the page) and ``/d/<token>/<n>[/<name>]``
    (file ``n`` of that download), and the Mini App under ``/app/`` when there is one;
    everything else is 404. At most ``max_requests`` are served at once."""

    async def page(request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        shared = await _open(opener.open_link(token))
        if isinstance(shared, web.Response):
            return shared
        return web.Response(text=download_page(token, shared), content_type="text/html",
                            charset="utf-8", headers=_PAGE)

    async def file(request: web.Request) -> web.StreamResponse:
        number = request.match_info["number"]
        if len(number) > 6:
            served: SharedFile | web.Response | None = None
        else:
            served = await _open(opener.open_link_file(request.match_info["token"],
                                                        int(number)))
        if isinstance(served, web.Response):
            return served
        if served is None:
            return _page(404, "No such file", "This download has no file with that number.")
        log.debug("serving file %d", served.number)
        return OwnFileResponse(served.path, headers={
            **_FILE, "Content-Disposition": content_disposition(served.name)})

    async def not_found(_request: web.Request) -> web.StreamResponse:
        return _page(404, "Not found", "There is nothing here.")

    app = web.Application(middlewares=[_bounded(max_requests)])
    app.router.add_get("/d/{token}", page)
    app.router.add_get(r"/d/{token}/{number:[0-9]+}", file)
    app.router.add_get(r"/d/{token}/{number:[0-9]+}/{name}", file)
    if miniapp is not None:
        miniapp.add_routes(app.router)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


class LinkServer:
    """The HTTP server, started and stopped by the composition root.

    Parameters:
        opener: the manager (what a link opens).
        host: the address to listen on (loopback by default, behind a reverse proxy).
        port: the port; 0 picks a free one (see :attr:`port` once started).
        max_requests: requests served at once (more get 503 with ``Retry-After``).
        miniapp: the Mini App, served under ``/app/`` (None: no Mini App).
    """

    def __init__(self, opener: LinkOpener, host: str, port: int, *,
                 max_requests: int = MAX_REQUESTS, miniapp: MiniApp | None = None) -> None:
        self._runner = web.AppRunner(build_app(opener, max_requests=max_requests,
                                               miniapp=miniapp),
                                     access_log=None,
                                     handle_signals=False, shutdown_timeout=2.0)
        self._host = host
        self._requested_port = port
        self.port = port

    async def start(self) -> None:
        """Listen.

        Raises:
            OSError: the address cannot be bound (in use, not this machine's).
        """
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        self.port = int(self._runner.addresses[0][1])
        log.info("links are served on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Stop listening; downloads under way get two seconds to end."""
        await self._runner.cleanup()
