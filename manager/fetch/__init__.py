"""Fetching on behalf of a chat: a ``.torrent`` file by URL, never from the server's own
network.

``addresses`` says which addresses a chat may make the server reach (public ones, and the
networks a setting allows) and enforces it at name resolution; ``torrenturl`` fetches a
``.torrent`` (bounded size, time and redirects; a redirect to a magnet link is followed).
Imports aiohttp and the shared top-level modules only.
"""

from manager.fetch.addresses import AddressGuard, AddressRefused
from manager.fetch.torrenturl import FetchPolicy, TorrentFetcher

__all__ = ["AddressGuard", "AddressRefused", "FetchPolicy", "TorrentFetcher"]
