"""What the running aria2c can download: the refusals that depend on its version.

:mod:`manager.sources.magnets` and :mod:`manager.sources.metainfo` say what a source *is*;
this module says whether the aria2c that ariabot runs can download it, so that a download that
cannot work is refused at once with a plain reason instead of sitting at "no peers" until the
dead-torrent timeout.

One such case today: **hybrid (BitTorrent v1+v2) torrents need aria2 1.37**. aria2 1.36
(Debian 12's) drops dictionary keys of length 0 when it reads bencode, and every file of a
v2 ``file tree`` is such a key; it names the torrent by the SHA-1 of what it read, so it
announces an info-hash no other peer uses (aria2 issue #1903, fixed in 1.37.0 by pull
request #1905; checked on the local swarm with aria2 1.36.0 and 1.37.0). A magnet link with
both ``xt=urn:btih:`` and ``xt=urn:btmh:`` names a hybrid too: aria2 1.36 fetches its
metadata under the right hash, then switches to the wrong one.
"""

from __future__ import annotations

from manager.errors import InvalidMagnet, InvalidTorrent
from manager.sources import MagnetLink, TorrentMeta

__all__ = [
    "HYBRID_FIX",
    "HYBRID_MIN_VERSION",
    "check_downloadable",
    "hybrid_limitation",
    "version_text",
]

HYBRID_MIN_VERSION = (1, 37, 0)
"""The first aria2 that computes a hybrid torrent's v1 info-hash right."""

HYBRID_FIX = "install aria2 1.37 or newer (Debian 13 ships it) and set ARIABOT_ARIA2C to it"
"""What an admin does about :func:`hybrid_limitation`."""

Version = tuple[int, ...]


def version_text(version: Version) -> str:
    """``(1, 36, 0)`` → ``"1.36.0"``."""
    return ".".join(str(part) for part in version)


def hybrid_limitation(aria2_version: Version | None) -> str | None:
    """Why this aria2c cannot download hybrid torrents; None when it can (or is not known).

    Parameters:
        aria2_version: the running aria2c's version, None when not known.
    """
    if aria2_version is None or tuple(aria2_version) >= HYBRID_MIN_VERSION:
        return None
    return (f"aria2c {version_text(aria2_version)} looks for hybrid torrents under a wrong "
            f"info-hash and finds no peers (fixed in aria2 "
            f"{version_text(HYBRID_MIN_VERSION[:2])})")


def check_downloadable(parsed: MagnetLink | TorrentMeta,
                       aria2_version: Version | None) -> None:
    """Refuse a checked source that this aria2c cannot download.

    Parameters:
        parsed: what :func:`~manager.sources.magnets.parse_magnet` or
            :func:`~manager.sources.metainfo.parse_torrent` returned.
        aria2_version: the running aria2c's version; None (not known) refuses nothing.

    Raises:
        InvalidTorrent: a hybrid .torrent and an aria2c older than 1.37.
        InvalidMagnet: a hybrid magnet link (``btih`` and ``btmh``) and such an aria2c.
    """
    limitation = hybrid_limitation(aria2_version) if parsed.hybrid else None
    if limitation is None:
        return
    fix = f"To download it, ariabot's admin can {HYBRID_FIX}."
    if isinstance(parsed, TorrentMeta):
        raise InvalidTorrent(f"torrent file refused: it is a hybrid (v1+v2) torrent, and "
                             f"{limitation}. {fix}")
    raise InvalidMagnet(f"magnet link refused: it names a hybrid (v1+v2) torrent (xt=urn:btmh "
                        f"next to xt=urn:btih), and {limitation}. {fix}")
