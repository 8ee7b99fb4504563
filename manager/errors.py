"""The manager's exception tree; every error the bot or the CLI may show a user is here.

::

    ManagerError
    ├── Aria2Error                  aria2 could not do what was asked
    │   ├── Aria2Unavailable        no answer: aria2c restarting, hung or gone
    │   └── Aria2RpcError           aria2 answered with a JSON-RPC error (``.code``)
    ├── DownloadNotFound            no such download id (in this chat)
    ├── AlreadyDownloading          the same torrent is active for another chat
    ├── InvalidState                e.g. resume of a download that is not paused
    ├── NotEnoughSpace              the download does not fit on the disk
    ├── StoreError                  the database cannot be opened or written
    ├── MirrorOff                   mirroring is not configured
    ├── LinksOff                    links are not configured
    ├── LinkRefused                 a forged, damaged or revoked link
    │   └── LinkExpired             a genuine link past its time
    ├── FeedError                   a feed that cannot be read, or a bad feed command
    │   └── FeedNotFound            no feed of that name in this chat
    └── InvalidSource (ValueError)  a magnet or .torrent that we refuse
        ├── InvalidMagnet
        └── InvalidTorrent

Foreign errors (requests, aria2p, peewee) are mapped into this tree at the edge, so callers
never match on another library's exceptions or on message prefixes.
"""

from __future__ import annotations

__all__ = [
    "AlreadyDownloading",
    "Aria2Error",
    "Aria2RpcError",
    "Aria2Unavailable",
    "DownloadNotFound",
    "FeedError",
    "FeedNotFound",
    "InvalidMagnet",
    "InvalidSource",
    "InvalidState",
    "InvalidTorrent",
    "LinkExpired",
    "LinkRefused",
    "LinksOff",
    "ManagerError",
    "MirrorOff",
    "NodeConflict",
    "NodeReplaced",
    "NotEnoughSpace",
    "OnAnotherNode",
    "StoreError",
    "TorrentUrlError",
    "user_text",
]


class ManagerError(Exception):
    """Base of every error the manager raises on purpose; ``str()`` is fit for a user."""


class Aria2Error(ManagerError):
    """aria2 could not do what was asked."""


class Aria2Unavailable(Aria2Error):
    """aria2c did not answer (restarting, hung, or not running)."""

    def __init__(self, message: str = "the downloader is restarting, try again in a few seconds"):
        super().__init__(message)


class Aria2RpcError(Aria2Error):
    """aria2 answered a call with a JSON-RPC error.

    Attributes:
        code: aria2's error code (1 for most failures; see aria2's EXIT STATUS list).
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class DownloadNotFound(ManagerError):
    """No download with that id (in the asking chat)."""


class AlreadyDownloading(ManagerError):
    """aria2 holds one download per info-hash: another chat's copy must finish first."""


class InvalidState(ManagerError):
    """The download is not in a state that allows the action."""


class NotEnoughSpace(ManagerError):
    """The download would not fit in the free space of the download directory."""


class NodeConflict(ManagerError):
    """This node cannot join its database: its name, or the database, is another's."""


class OnAnotherNode(ManagerError):
    """The download is held by another node (its aria2c, its disk): only that node may
    change it. ``node`` names it; ``online`` says whether it is heard from (an action may
    then be asked of it: :mod:`manager.nodes.routing`)."""

    def __init__(self, message: str, *, node: str = "", online: bool = False) -> None:
        super().__init__(message)
        self.node = node
        self.online = online


class StoreError(ManagerError):
    """The database cannot be opened, migrated or written."""


class NodeReplaced(StoreError):
    """This node's downloads are no longer its own: it was not heard from past the limit and
    another node took them (failover), or another start took its name. It writes nothing more
    and stops at its next heartbeat."""

    def __init__(self, message: str = "this node was not heard from for too long and another "
                 "node took its place; it stops") -> None:
        super().__init__(message)


class MirrorOff(ManagerError):
    """Mirroring to a cloud destination is not configured (``ARIABOT_RCLONE_REMOTE``)."""

    def __init__(self, message: str = "mirroring is not set up on this ariabot "
                 "(the owner sets ARIABOT_RCLONE_REMOTE)") -> None:
        super().__init__(message)


class LinksOff(ManagerError):
    """Links to downloads are not set up (``ARIABOT_PUBLIC_URL`` is empty)."""

    def __init__(self, message: str = "links are not set up on this ariabot "
                 "(the owner sets ARIABOT_PUBLIC_URL)") -> None:
        super().__init__(message)


class LinkRefused(ManagerError):
    """A link that serves nothing: forged, damaged, or revoked (its download was cancelled,
    purged or its files deleted). One error for all of them: which one it was is no one's
    business but the owner's log."""


class LinkExpired(LinkRefused):
    """A genuine link whose time is up."""


class FeedError(ManagerError):
    """A feed that cannot be fetched or read, or a feed command the bot refuses; the message
    is one line for the chat and names the feed's host only (its URL may hold a passkey)."""


class FeedNotFound(FeedError):
    """No feed of that name in this chat."""


class InvalidSource(ManagerError, ValueError):
    """A magnet link or .torrent file that ariabot refuses; the message says why."""


class InvalidMagnet(InvalidSource):
    """Not a magnet link ariabot accepts."""


class TorrentUrlError(InvalidSource):
    """A link to a .torrent file that could not be fetched or may not be (a private address);
    the message names its host only, never the whole URL (it may hold a passkey)."""


class InvalidTorrent(InvalidSource):
    """A .torrent file that is damaged, too large, or has unsafe file names."""


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def user_text(error: ManagerError) -> str:
    """What to tell a user about a manager error, as one sentence (the bot, the Mini App).

    The manager's messages are written for users, except those of aria2 itself (they may
    hold paths) and of the database, which are replaced by a general sentence.
    """
    if isinstance(error, Aria2Unavailable):
        return "The downloader is restarting, try again in a few seconds."
    if isinstance(error, DownloadNotFound):
        return _sentence(f"{error} in this chat")
    if isinstance(error, StoreError):
        return "ariabot cannot reach its database right now; please try again later."
    if isinstance(error, Aria2Error):
        return "The downloader could not do that; please try again later."
    return _sentence(str(error))
