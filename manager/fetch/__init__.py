"""Fetching on behalf of a chat: a ``.torrent`` file or a feed by URL, never from the
server's own network.

``addresses`` says which addresses a chat may make the server reach (public ones, and the
networks a setting allows) and enforces it at name resolution; ``client`` fetches through it
(bounded size, time and redirects; a redirect to a magnet link is followed); ``torrenturl``
takes a ``.torrent`` from it and ``feedurl`` a feed (a conditional GET). Imports aiohttp and
the shared top-level modules only.
"""

from manager.fetch.addresses import AddressGuard, AddressRefused
from manager.fetch.client import FetchPolicy, GuardedClient
from manager.fetch.feedurl import FeedAnswer, FeedFetcher
from manager.fetch.torrenturl import TorrentFetcher

__all__ = ["AddressGuard", "AddressRefused", "FeedAnswer", "FeedFetcher", "FetchPolicy",
           "GuardedClient", "TorrentFetcher"]
