"""Uploads read from disk off the event loop.

httpx encodes a multipart upload synchronously: while a part goes out, its encoder calls the
file's ``read`` on the event loop, 64 KiB at a time (800 reads for a 50 MiB part), and a
slow disk then stalls every chat's updates, edits and the link server, which share that
loop. :class:`OffLoopUploads` wraps the transport of the Bot's requests: the body of a
multipart request is pulled from httpx's encoder in a worker thread, about
:data:`BATCH_BYTES` at a time, and the loop only hands the bytes to the socket. Other
requests (JSON, no file) go through untouched. The request's ``Content-Length`` was
computed before (from the part's length), so the bytes sent are the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator

import httpx
from telegram.request import HTTPXRequest

__all__ = ["BATCH_BYTES", "OffLoopUploads", "bot_request"]

BATCH_BYTES = 256 * 1024
"""Bytes read in one trip to a worker thread (the memory one upload holds at a time)."""
_POOL_SIZE = 256
"""Connections of the Bot's requests (python-telegram-bot's default for them)."""


def _take(chunks: Iterator[bytes], limit: int) -> list[bytes]:
    """The next chunks from ``chunks``, about ``limit`` bytes (in a worker thread); none
    at the end."""
    taken: list[bytes] = []
    size = 0
    for chunk in chunks:
        taken.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return taken


class _OffLoopBody(httpx.AsyncByteStream):
    """A synchronous request body read in a worker thread, batch after batch."""

    def __init__(self, body: Iterable[bytes], batch: int) -> None:
        self._body = body
        self._batch = batch

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = iter(self._body)
        while batch := await asyncio.to_thread(_take, chunks, self._batch):
            for chunk in batch:
                yield chunk


class OffLoopUploads(httpx.AsyncBaseTransport):
    """A transport that reads multipart bodies (file uploads) in a worker thread.

    Parameters:
        batch: bytes read per trip to the thread.
        pool_size: the most connections at once.
    """

    def __init__(self, *, batch: int = BATCH_BYTES, pool_size: int = _POOL_SIZE) -> None:
        self._batch = batch
        self._pool_size = pool_size
        self._inner: httpx.AsyncHTTPTransport | None = None

    def _transport(self) -> httpx.AsyncHTTPTransport:
        # Made on first use, and again after aclose: python-telegram-bot rebuilds its client
        # when the Bot is initialised again, with this same transport.
        if self._inner is None:
            self._inner = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=self._pool_size), http1=True, http2=False)
        return self._inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; a multipart body is read off the loop."""
        multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
        if multipart and isinstance(request.stream, httpx.SyncByteStream):
            request.stream = _OffLoopBody(request.stream, self._batch)
        return await self._transport().handle_async_request(request)

    async def aclose(self) -> None:
        """Close the connections (a later request opens new ones)."""
        if self._inner is not None:
            inner, self._inner = self._inner, None
            await inner.aclose()


def bot_request() -> HTTPXRequest:
    """The request object of the Bot's calls (not ``getUpdates``): python-telegram-bot's
    defaults, with uploads read off the event loop."""
    return HTTPXRequest(connection_pool_size=_POOL_SIZE,
                        httpx_kwargs={"transport": OffLoopUploads()})
