"""The torrent manager: validation, aria2, tracking, storage, events. Knows no Telegram.

The surface the bot and the supervisor use: :class:`TorrentManager` (the façade, built
from an :class:`Aria2Rpc`, a :class:`Store` and a :class:`ManagerConfig`), the snapshots it
returns (:class:`Torrent`, :class:`FileEntry`, :class:`AddResult`), the events it emits,
the stored notices the bot must send (:class:`Notice`, :class:`NoticeKind`: the outbox),
the errors it raises, the :class:`Uploader` protocol that mirroring to the cloud is done
through (with :class:`UploadJob`, :class:`UploadStats`, :class:`UploadError`), signed
links to finished downloads (:class:`LinkConfig`, :class:`DownloadLink`, and what a link
serves: :class:`SharedDownload` of :class:`SharedFile`),
:func:`find_magnets`, :func:`find_torrent_urls`, :func:`is_http_url` (what a chat
message holds to add), :func:`human_size` and :func:`human_duration` (in words, the same
everywhere),
what the running aria2c can download (:func:`hybrid_limitation`, :func:`version_text`,
:data:`HYBRID_FIX`, for ``ariabot status`` and ``doctor``), :func:`copy_store` (the
store into another, empty database: ``ariabot db copy``) and :func:`masked_url` (a
database URL fit to show), and the nodes sharing a database (:class:`NodeConfig`, what
``ariabot nodes`` shows: :class:`NodeStatus` with its :class:`NodeFigures`,
:class:`NodeState`, :func:`node_text`). The sub-packages behind
the façade (``sources``, ``fetch``, ``aria2``, ``downloads``, ``nodes``, ``tracking``, ``actions``,
``delivery``) are its own: nothing outside ``manager`` imports them (tests aside).
"""

from manager.actions import AddResult, Cancellation
from manager.aria2 import (
    HYBRID_FIX,
    Aria2Endpoint,
    Aria2Rpc,
    hybrid_limitation,
    version_text,
)
from manager.clock import utcnow
from manager.config import FeedConfig, LinkConfig, ManagerConfig, MirrorConfig
from manager.core import TorrentManager
from manager.delivery import (
    DownloadLink,
    SharedDownload,
    SharedFile,
    Uploader,
    UploadError,
    UploadJob,
    UploadStats,
)
from manager.downloads import LIST_PAGE_MAX, StatusPage
from manager.errors import (
    AlreadyDownloading,
    Aria2Error,
    Aria2RpcError,
    Aria2Unavailable,
    DownloadNotFound,
    FeedError,
    FeedNotFound,
    InvalidMagnet,
    InvalidSource,
    InvalidState,
    InvalidTorrent,
    LinkExpired,
    LinkRefused,
    LinksOff,
    ManagerError,
    MirrorOff,
    NodeConflict,
    NotEnoughSpace,
    OnAnotherNode,
    StoreError,
    TorrentUrlError,
    user_text,
)
from manager.events import (
    Aria2Down,
    Aria2Fatal,
    Aria2Restarted,
    EngineEvent,
    Event,
    MetadataReceived,
    MirrorChanged,
    MirrorDone,
    MirrorFailed,
    Subscriber,
    TorrentAdded,
    TorrentCancelled,
    TorrentCompleted,
    TorrentEvent,
    TorrentFailed,
    TorrentPaused,
    TorrentProgress,
    TorrentResumed,
    TorrentStateChanged,
)
from manager.feeds import FeedView, Subscribed, feed_text
from manager.models import (
    FileEntry,
    FilePlan,
    Mirror,
    MirrorState,
    SourceKind,
    Torrent,
    TorrentState,
)
from manager.nodes import NodeConfig, NodeState, NodeStatus, node_text
from manager.notices import Notice, NoticeKind
from manager.sources import find_magnets, find_torrent_urls, is_http_url
from manager.store import (
    CopyFailed,
    CopyRefused,
    CopyReport,
    NodeFigures,
    Store,
    TableCopy,
    copy_store,
    masked_url,
)
from manager.units import human_duration, human_size

__all__ = [
    "HYBRID_FIX",
    "LIST_PAGE_MAX",
    "AddResult",
    "AlreadyDownloading",
    "Aria2Down",
    "Aria2Endpoint",
    "Aria2Error",
    "Aria2Fatal",
    "Aria2Restarted",
    "Aria2Rpc",
    "Aria2RpcError",
    "Aria2Unavailable",
    "Cancellation",
    "CopyFailed",
    "CopyRefused",
    "CopyReport",
    "DownloadLink",
    "DownloadNotFound",
    "EngineEvent",
    "Event",
    "FeedConfig",
    "FeedError",
    "FeedNotFound",
    "FeedView",
    "FileEntry",
    "FilePlan",
    "InvalidMagnet",
    "InvalidSource",
    "InvalidState",
    "InvalidTorrent",
    "LinkConfig",
    "LinkExpired",
    "LinkRefused",
    "LinksOff",
    "ManagerConfig",
    "ManagerError",
    "MetadataReceived",
    "Mirror",
    "MirrorChanged",
    "MirrorConfig",
    "MirrorDone",
    "MirrorFailed",
    "MirrorOff",
    "MirrorState",
    "NodeConfig",
    "NodeConflict",
    "NodeFigures",
    "NodeState",
    "NodeStatus",
    "NotEnoughSpace",
    "Notice",
    "NoticeKind",
    "OnAnotherNode",
    "SharedDownload",
    "SharedFile",
    "SourceKind",
    "StatusPage",
    "Store",
    "StoreError",
    "Subscribed",
    "Subscriber",
    "TableCopy",
    "Torrent",
    "TorrentAdded",
    "TorrentCancelled",
    "TorrentCompleted",
    "TorrentEvent",
    "TorrentFailed",
    "TorrentManager",
    "TorrentPaused",
    "TorrentProgress",
    "TorrentResumed",
    "TorrentState",
    "TorrentStateChanged",
    "TorrentUrlError",
    "UploadError",
    "UploadJob",
    "UploadStats",
    "Uploader",
    "copy_store",
    "feed_text",
    "find_magnets",
    "find_torrent_urls",
    "human_duration",
    "human_size",
    "hybrid_limitation",
    "is_http_url",
    "masked_url",
    "node_text",
    "user_text",
    "utcnow",
    "version_text",
]
