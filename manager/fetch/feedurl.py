"""A feed fetched for a chat, politely: a conditional GET (``If-None-Match`` with the ETag,
``If-Modified-Since`` with the Last-Modified of the last answer), so that an unchanged feed
costs its server a 304 and no body, through the guarded client (:mod:`manager.fetch.client`).
Messages name the host only: an indexer's feed URL carries the user's API key or passkey.
"""

from __future__ import annotations

from dataclasses import dataclass

from manager.errors import FeedError
from manager.fetch.client import FetchFailed, GuardedClient
from manager.units import human_size

__all__ = ["FeedAnswer", "FeedFetcher"]

_ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, "
           "text/xml;q=0.9, */*;q=0.1")


@dataclass(frozen=True)
class FeedAnswer:
    """A feed's answer: its body (None when not modified) and the validators to send next."""

    body: bytes | None
    etag: str | None
    last_modified: str | None


class FeedFetcher:
    """Fetches feeds through the chat's guarded client.

    Parameters:
        client: the guarded client (shared with the ``.torrent`` fetches).
        max_bytes: the largest feed read.
    """

    def __init__(self, client: GuardedClient, max_bytes: int) -> None:
        self._client = client
        self._max_bytes = max_bytes

    async def fetch(self, url: str, *, etag: str | None = None,
                    last_modified: str | None = None) -> FeedAnswer:
        """The feed at ``url``; ``body`` is None when the server says it has not changed
        since the answer that gave ``etag`` and ``last_modified``.

        Raises:
            FeedError: not an http(s) URL, an address it may not reach, an error or no
                answer from the server, too large, too many redirects, a magnet link.
        """
        headers = {"Accept": _ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            found = await self._client.get(url, headers=headers, max_bytes=self._max_bytes,
                                           not_modified=bool(etag or last_modified))
        except FetchFailed as failure:
            raise _error(failure, self._max_bytes) from None
        if isinstance(found, str):
            raise FeedError("that link leads to a magnet link, not a feed: send the magnet "
                            "link itself to add it")
        if found.status == 304:
            return FeedAnswer(None, etag, last_modified)
        return FeedAnswer(found.body, found.headers.get("ETag"),
                          found.headers.get("Last-Modified"))


def _error(failure: FetchFailed, max_bytes: int) -> FeedError:
    if failure.invalid and failure.why.startswith("only"):
        return FeedError("only http:// and https:// feeds are read")
    if failure.invalid:
        return FeedError("not a valid link to a feed")
    why = failure.why
    if why.startswith("it is larger than"):
        why = f"it is larger than {human_size(max_bytes)}, the most a feed may be"
    return FeedError(f"cannot read the feed at {failure.host}: {why}")
