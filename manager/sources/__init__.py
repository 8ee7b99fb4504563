"""What a source is: magnet links, ``.torrent`` files and links to them, parsed and checked
before use.

Pure parsing and validation, no aria2, no disk, no rows: hostile paths and sizes, a strict
bencode scan, tracker lists. The lowest layer of the manager; it imports only the shared
modules at the top of ``manager`` (errors, models, units, usertext).
"""

from manager.sources.magnets import MagnetLink, find_magnets, parse_magnet
from manager.sources.metainfo import TorrentMeta, parse_torrent
from manager.sources.urls import find_torrent_urls, is_http_url

__all__ = ["MagnetLink", "TorrentMeta", "find_magnets", "find_torrent_urls", "is_http_url",
           "parse_magnet", "parse_torrent"]
