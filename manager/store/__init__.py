"""The store: every row ariabot keeps, in SQLite or PostgreSQL, behind one async API.

Surface: :class:`Store` (one database and its one thread, with a small class per table
family: ``store.downloads``, ``store.notices`` (the outbox), ``store.mirrors``,
``store.sent_parts``, ``store.activity``, ``store.chats``, ``store.nodes``), the records
they return (:class:`DownloadRecord`, :class:`MirrorRecord`, :class:`PurgedDownload`,
:class:`MovedChat`, :class:`ActivityEntry`, :class:`NodeRecord`), and the copy of a whole
store into another database (:func:`copy_store`, ``ariabot db copy``). Inside: the tables
(:mod:`~manager.store.tables`), their migrations (:mod:`~manager.store.migrations`), the one
database thread (:mod:`~manager.store.dbthread`) and the only place engine-specific SQL may
live (:mod:`~manager.store.engine`).

The lowest layer of ``manager`` beside ``sources``: it imports only the shared top-level
modules (models, errors, notices' rules), and every other layer reads and writes through it.
"""

from manager.store.activity import ActivityEntry
from manager.store.chats import MovedChat
from manager.store.commands import (
    ANSWERS_CHANNEL,
    COMMANDS_CHANNEL,
    CommandRecord,
    listener_name,
)
from manager.store.dbcopy import (
    CopyFailed,
    CopyRefused,
    CopyReport,
    TableCopy,
    copy_store,
    masked_url,
)
from manager.store.downloads import DownloadRecord, PurgedDownload
from manager.store.feeds import FEEDS_CHANNEL, FeedEntryRecord, FeedRecord, entry_key
from manager.store.front import FrontLock
from manager.store.listener import Listener
from manager.store.mirrors import MirrorRecord
from manager.store.nodes import Move, NodeFigures, NodeRecord
from manager.store.paces import Pace
from manager.store.placements import CLAIMABLE, QUEUE_CHANNEL
from manager.store.store import Store

__all__ = [
    "ANSWERS_CHANNEL",
    "CLAIMABLE",
    "COMMANDS_CHANNEL",
    "FEEDS_CHANNEL",
    "QUEUE_CHANNEL",
    "ActivityEntry",
    "CommandRecord",
    "CopyFailed",
    "CopyRefused",
    "CopyReport",
    "DownloadRecord",
    "FeedEntryRecord",
    "FeedRecord",
    "FrontLock",
    "Listener",
    "MirrorRecord",
    "Move",
    "MovedChat",
    "NodeFigures",
    "NodeRecord",
    "Pace",
    "PurgedDownload",
    "Store",
    "TableCopy",
    "copy_store",
    "entry_key",
    "listener_name",
    "masked_url",
]
