"""The Store: one database, its one worker thread, and the table families over them.

Each family is a small class over the same :class:`~manager.store.database.StoreDatabase`
(so a change and what goes with it are one transaction on one connection), reached as an
attribute: ``store.downloads.update_many(...)``, ``store.notices.pending()``,
``store.mirrors.get(id)``. SQLite (WAL) in the data dir by default, or PostgreSQL
(``postgresql://``); what differs between the two is in :mod:`manager.store.engine` only.
The schema is created or migrated at :meth:`Store.open` (:mod:`manager.store.migrations`).
"""

from __future__ import annotations

from manager.store.activity import Activity
from manager.store.chats import Chats
from manager.store.commands import Commands
from manager.store.database import StoreDatabase
from manager.store.downloads import Downloads
from manager.store.engine import engine_for
from manager.store.feeds import Feeds
from manager.store.mirrors import Mirrors
from manager.store.nodes import Nodes
from manager.store.outbox import Notices
from manager.store.paces import Paces
from manager.store.placements import Placements
from manager.store.sentparts import SentParts

__all__ = ["Store"]


class Store:
    """The downloads and everything stored about them, used from asyncio.

    Parameters:
        url: ``sqlite:////var/lib/ariabot/ariabot.db``, ``sqlite:///:memory:`` or
            ``postgresql://user:password@host:port/database``.

    Raises:
        ValueError: the URL names another engine.

    Attributes:
        database: the connection, bound tables and thread every family shares.
        downloads: the downloads table (:class:`~manager.store.downloads.Downloads`).
        notices: the outbox (:class:`~manager.store.outbox.Notices`).
        mirrors: uploads to the rclone destination (:class:`~manager.store.mirrors.Mirrors`).
        sent_parts: parts of files Telegram confirmed
            (:class:`~manager.store.sentparts.SentParts`).
        activity: the activity log (:class:`~manager.store.activity.Activity`).
        chats: chat views and chat moves (:class:`~manager.store.chats.Chats`).
        nodes: the nodes sharing the database (:class:`~manager.store.nodes.Nodes`).
        feeds: the chats' feeds and their items (:class:`~manager.store.feeds.Feeds`).
        commands: actions asked of the node that holds a download
            (:class:`~manager.store.commands.Commands`).
        placements: the downloads no node claimed yet
            (:class:`~manager.store.placements.Placements`).
        paces: turns every node shares (:class:`~manager.store.paces.Paces`).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.database = StoreDatabase(url)
        self.notices = Notices(self.database)
        self.mirrors = Mirrors(self.database, self.notices)
        self.sent_parts = SentParts(self.database)
        self.downloads = Downloads(self.database, self.notices,
                                   dependents=(self.mirrors, self.notices, self.sent_parts))
        self.activity = Activity(self.database)
        self.feeds = Feeds(self.database, self.notices)
        self.commands = Commands(self.database)
        self.chats = Chats(self.database, downloads=self.downloads, mirrors=self.mirrors,
                           notices=self.notices, feeds=self.feeds)
        self.nodes = Nodes(self.database)
        self.placements = Placements(self.database, self.downloads)
        self.paces = Paces(self.database)

    @property
    def shared(self) -> bool:
        """Several nodes may run on this database at once (PostgreSQL)."""
        return engine_for(self.url).shared

    @property
    def statements(self) -> int:
        """SQL statements sent so far, on either engine: how benchmarks and tests see the
        write cost (:mod:`manager.store.engine` says how each counts)."""
        return self.database.statements

    async def open(self) -> None:
        """Connect, and create or migrate the schema.

        Raises:
            StoreError: the database cannot be opened or migrated.
        """
        await self.database.open()

    async def close(self) -> None:
        """Close the connection and stop the store's thread."""
        await self.database.close()
