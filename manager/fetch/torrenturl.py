"""A ``.torrent`` file fetched by URL for a chat: http(s) only, bounded in size, time and
redirects, never from the server's own network (:mod:`manager.fetch.addresses`).

Redirects are followed here, one hop at a time, so that each hop's address is checked and a
redirect to a ``magnet:`` link (trackers' "download" links often are) ends the fetch with
that link. The body is the ``.torrent`` whatever its content type says; only its first byte
is looked at here (a bencoded torrent is a dictionary: ``d``), to say "a web page" instead of
"a damaged torrent" when a login page comes back. Messages name the host only: a private
tracker's URL carries the user's passkey.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from manager.errors import TorrentUrlError
from manager.fetch.addresses import AddressGuard, AddressRefused, GuardedResolver, IpNetwork
from manager.units import human_size

__all__ = ["FetchPolicy", "TorrentFetcher"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    """How far a fetch for a chat may go.

    Attributes:
        max_bytes: the largest ``.torrent`` taken (the same cap as for an uploaded one).
        allowed_networks: private or local networks it may reach all the same.
        timeout: seconds the whole fetch may take, redirects included.
        redirects: redirects followed before it gives up (a loop ends there too).
        user_agent: what it says it is.
    """

    max_bytes: int
    allowed_networks: tuple[IpNetwork, ...] = ()
    timeout: float = 30.0
    redirects: int = 5
    user_agent: str = "ariabot"


class TorrentFetcher:
    """Fetches ``.torrent`` files by URL (one HTTP client, made at the first fetch).

    Parameters:
        policy: the limits.
        resolver: resolves host names (aiohttp's threaded resolver by default; the guard
            filters what it returns).
    """

    def __init__(self, policy: FetchPolicy, resolver: aiohttp.abc.AbstractResolver | None = None,
                 ) -> None:
        self._policy = policy
        self._guard = AddressGuard(policy.allowed_networks)
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, url: str) -> bytes | str:
        """The ``.torrent``'s bytes at ``url``, or the magnet link it redirects to.

        Raises:
            TorrentUrlError: not an http(s) URL, an address it may not reach, an error or
                no answer from the server, too large, too many redirects, not a torrent.
        """
        try:
            current = URL(url.strip())
        except ValueError:
            raise TorrentUrlError("not a valid link to a .torrent file") from None
        try:
            async with asyncio.timeout(self._policy.timeout):
                for _ in range(self._policy.redirects + 1):
                    found = await self._get(current)
                    if isinstance(found, URL):
                        current = found
                        continue
                    return found
        except TimeoutError:
            raise _failed(current, f"no answer within {self._policy.timeout:.0f} s") from None
        raise _failed(current, f"more than {self._policy.redirects} redirects")

    async def _get(self, url: URL) -> bytes | str | URL:
        """One hop: the body, a magnet link, or the URL it redirects to."""
        if url.scheme not in ("http", "https") or not url.host:
            raise TorrentUrlError("only http:// and https:// links to a .torrent file are "
                                  "fetched")
        try:
            self._guard.check_literal(url.host)
            session = self._client()
            async with session.get(url, allow_redirects=False) as response:
                if response.status in _REDIRECTS:
                    return self._redirect(url, response)
                if response.status != 200:
                    raise _failed(url, f"the server answered {response.status} "
                                       f"{response.reason or ''}".rstrip())
                return await self._body(url, response)
        except AddressRefused:
            raise _refused(url) from None
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, AddressRefused):
                raise _refused(url) from None
            raise _failed(url, "cannot connect to it") from None
        except aiohttp.InvalidURL:
            raise TorrentUrlError("not a valid link to a .torrent file") from None
        except aiohttp.ClientError as error:
            raise _failed(url, f"the transfer failed ({type(error).__name__})") from None

    def _redirect(self, url: URL, response: aiohttp.ClientResponse) -> str | URL:
        location = response.headers.get("Location", "").strip()
        if not location:
            raise _failed(url, "it redirects nowhere")
        if location[:7].lower() == "magnet:":
            return location
        try:
            return url.join(URL(location))
        except ValueError:
            raise _failed(url, "it redirects to an invalid address") from None

    async def _body(self, url: URL, response: aiohttp.ClientResponse) -> bytes:
        limit = self._policy.max_bytes
        too_large = _failed(url, f"the file is larger than {human_size(limit)}, the most a "
                                 ".torrent may be")
        if response.content_length is not None and response.content_length > limit:
            raise too_large
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > limit:
                raise too_large
        if not body.startswith(b"d"):
            kind = response.content_type or "no content type"
            what = "a web page" if "html" in kind else f"something else ({kind})"
            raise _failed(url, f"it served {what}, not a .torrent file")
        return bytes(body)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            resolver = GuardedResolver(self._guard, self._resolver or ThreadedResolver())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver, limit=8),
                headers={"User-Agent": self._policy.user_agent}, trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._policy.timeout))
        return self._session

    async def close(self) -> None:
        """Close the HTTP client (a later fetch makes a new one)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _failed(url: URL, why: str) -> TorrentUrlError:
    return TorrentUrlError(f"cannot get the .torrent from {url.host}: {why}")


def _refused(url: URL) -> TorrentUrlError:
    return TorrentUrlError(f"cannot get the .torrent from {url.host}: it is at a private or "
                           "local address, which this bot does not fetch from")
