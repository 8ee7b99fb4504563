"""The HTTP client that fetches for a chat: http(s) only, bounded in size, time and
redirects, never from the server's own network (:mod:`manager.fetch.addresses`).

Redirects are followed here, one hop at a time, so that each hop's address is checked (a
literal address before the hop; a name as it is resolved for the connection, so DNS
rebinding finds no gap), and a redirect to a ``magnet:`` link (trackers' "download" links
often are) ends the fetch with that link. What a body must be is the caller's business
(:mod:`manager.fetch.torrenturl`, :mod:`manager.fetch.feedurl`); failures come back as
:class:`FetchFailed`, worded by the caller, naming the host only: a private tracker's URL
carries the user's passkey.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from manager.fetch.addresses import AddressGuard, AddressRefused, GuardedResolver, IpNetwork
from manager.units import human_size

__all__ = ["FetchFailed", "FetchPolicy", "Fetched", "GuardedClient"]

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


@dataclass(frozen=True)
class Fetched:
    """One answer at the end of the redirects: 200 with its body, or 304 Not Modified."""

    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str]


class FetchFailed(Exception):
    """A fetch that did not get an answer it can use.

    Attributes:
        host: the host of the hop that failed (never the whole URL).
        why: what went wrong, in a few words for a chat.
        refused: the address is one this bot does not fetch from.
        invalid: the URL is not an http(s) URL at all.
    """

    def __init__(self, host: str | None, why: str, *, refused: bool = False,
                 invalid: bool = False) -> None:
        super().__init__(f"{host}: {why}")
        self.host = host or "?"
        self.why = why
        self.refused = refused
        self.invalid = invalid


class GuardedClient:
    """One aiohttp client (made at the first fetch) behind the address guard.

    Parameters:
        policy: the limits (``max_bytes`` is the default body cap).
        resolver: resolves host names (aiohttp's threaded resolver by default; the guard
            filters what it returns).
    """

    def __init__(self, policy: FetchPolicy,
                 resolver: aiohttp.abc.AbstractResolver | None = None) -> None:
        self._policy = policy
        self._guard = AddressGuard(policy.allowed_networks)
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    @property
    def policy(self) -> FetchPolicy:
        return self._policy

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None,
                  max_bytes: int | None = None, not_modified: bool = False,
                  ) -> Fetched | str:
        """The answer at ``url`` after redirects, or the magnet link it redirects to.

        Parameters:
            headers: sent with every hop (conditional GET headers, ``Accept``).
            max_bytes: the body cap (the policy's by default).
            not_modified: a 304 is an answer (a conditional GET), not a failure.

        Raises:
            FetchFailed: not an http(s) URL, an address it may not reach, an error or no
                answer from the server, a body too large, too many redirects.
        """
        try:
            current = URL(url.strip())
        except ValueError:
            raise FetchFailed(None, "not a valid link", invalid=True) from None
        limit = self._policy.max_bytes if max_bytes is None else max_bytes
        try:
            async with asyncio.timeout(self._policy.timeout):
                for _ in range(self._policy.redirects + 1):
                    found = await self._hop(current, headers or {}, limit, not_modified)
                    if isinstance(found, URL):
                        current = found
                        continue
                    return found
        except TimeoutError:
            raise FetchFailed(current.host,
                              f"no answer within {self._policy.timeout:.0f} s") from None
        raise FetchFailed(current.host, f"more than {self._policy.redirects} redirects")

    async def _hop(self, url: URL, headers: Mapping[str, str], limit: int,
                   not_modified: bool) -> Fetched | str | URL:
        """One hop: the answer, a magnet link, or the URL it redirects to."""
        if url.scheme not in ("http", "https") or not url.host:
            raise FetchFailed(url.host, "only http:// and https:// links are fetched",
                              invalid=True)
        try:
            self._guard.check_literal(url.host)
            session = self._client()
            async with session.get(url, allow_redirects=False, headers=headers) as response:
                if response.status in _REDIRECTS:
                    return self._redirect(url, response)
                if response.status == 304 and not_modified:
                    return Fetched(304, b"", response.content_type or "",
                                   dict(response.headers))
                if response.status != 200:
                    raise FetchFailed(url.host, f"the server answered {response.status} "
                                                f"{response.reason or ''}".rstrip())
                body = await _body(url, response, limit)
                return Fetched(200, body, response.content_type or "", dict(response.headers))
        except AddressRefused:
            raise _refused(url) from None
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, AddressRefused):
                raise _refused(url) from None
            raise FetchFailed(url.host, "cannot connect to it") from None
        except aiohttp.InvalidURL:
            raise FetchFailed(url.host, "not a valid link", invalid=True) from None
        except aiohttp.ClientError as error:
            raise FetchFailed(url.host,
                              f"the transfer failed ({type(error).__name__})") from None

    @staticmethod
    def _redirect(url: URL, response: aiohttp.ClientResponse) -> str | URL:
        location = response.headers.get("Location", "").strip()
        if not location:
            raise FetchFailed(url.host, "it redirects nowhere")
        if location[:7].lower() == "magnet:":
            return location
        try:
            return url.join(URL(location))
        except ValueError:
            raise FetchFailed(url.host, "it redirects to an invalid address") from None

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


async def _body(url: URL, response: aiohttp.ClientResponse, limit: int) -> bytes:
    too_large = FetchFailed(url.host, f"it is larger than {human_size(limit)}")
    if response.content_length is not None and response.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _refused(url: URL) -> FetchFailed:
    return FetchFailed(url.host, "it is at a private or local address, which this bot does "
                                 "not fetch from", refused=True)
