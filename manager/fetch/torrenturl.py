"""A ``.torrent`` file fetched by URL for a chat, through the guarded client
(:mod:`manager.fetch.client`: http(s) only, bounded, never the server's own network).

The body is the ``.torrent`` whatever its content type says; only its first byte is looked
at here (a bencoded torrent is a dictionary: ``d``), to say "a web page" instead of "a
damaged torrent" when a login page comes back. Messages name the host only: a private
tracker's URL carries the user's passkey.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from manager.errors import TorrentUrlError
from manager.fetch.client import FetchFailed, FetchPolicy, GuardedClient
from manager.units import human_size

__all__ = ["TorrentFetcher"]


class TorrentFetcher:
    """Fetches ``.torrent`` files by URL.

    Parameters:
        policy: the limits.
        resolver: resolves host names (aiohttp's threaded resolver by default; the guard
            filters what it returns).
    """

    def __init__(self, policy: FetchPolicy, resolver: aiohttp.abc.AbstractResolver | None = None,
                 ) -> None:
        self._client = GuardedClient(policy, resolver)

    @property
    def client(self) -> GuardedClient:
        """The guarded client, shared with the feeds."""
        return self._client

    async def fetch(self, url: str) -> bytes | str:
        """The ``.torrent``'s bytes at ``url``, or the magnet link it redirects to.

        Raises:
            TorrentUrlError: not an http(s) URL, an address it may not reach, an error or
                no answer from the server, too large, too many redirects, not a torrent.
        """
        try:
            found = await self._client.get(url)
        except FetchFailed as failure:
            raise _error(failure, self._client.policy.max_bytes) from None
        if isinstance(found, str):
            return found
        if not found.body.startswith(b"d"):
            kind = found.content_type or "no content type"
            what = "a web page" if "html" in kind else f"something else ({kind})"
            raise TorrentUrlError(f"cannot get the .torrent from {_host(url)}: it served "
                                  f"{what}, not a .torrent file")
        return found.body

    async def close(self) -> None:
        """Close the HTTP client (a later fetch makes a new one)."""
        await self._client.close()


def _error(failure: FetchFailed, max_bytes: int) -> TorrentUrlError:
    if failure.invalid and failure.why.startswith("only"):
        return TorrentUrlError("only http:// and https:// links to a .torrent file are fetched")
    if failure.invalid:
        return TorrentUrlError("not a valid link to a .torrent file")
    why = failure.why
    if why.startswith("it is larger than"):
        why = f"the file is larger than {human_size(max_bytes)}, the most a .torrent may be"
    return TorrentUrlError(f"cannot get the .torrent from {failure.host}: {why}")


def _host(url: str) -> str:
    return URL(url.strip()).host or "?"
