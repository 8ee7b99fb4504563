"""A web site on 127.0.0.1 for the fakes that play trackers' and indexers' servers: an
aiohttp server on a free port, on the test's event loop, that records every request it gets
(so a test can tell a refusal made before any connection from one made after) and how each
path was answered."""

from __future__ import annotations

import collections
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["LocalSite"]


class LocalSite:
    """Serves the routes :meth:`routes` adds; an async context manager.

    Attributes:
        requests: every path and query asked, in order.
        answers: (path, status) → how many times it was answered so.
        port: its port, once entered.
    """

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.answers: collections.Counter[tuple[str, int]] = collections.Counter()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def asked(self, path: str) -> int:
        """How many times ``path`` was asked for, whatever the answer."""
        return sum(count for (where, _), count in self.answers.items() if where == path)

    def routes(self, router: web.UrlDispatcher) -> None:
        """Add the site's routes (each fake's own)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._count])
        self.routes(app.router)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _count(self, request: web.Request, handler: web.Handler) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.answers[request.path, exc.status] += 1
            raise
        self.answers[request.path, response.status] += 1
        return response
