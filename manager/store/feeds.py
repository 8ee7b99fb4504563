"""The feeds chats subscribe to, and the items each one looked at (``store.feeds``).

An item is added at most once: its row (one per feed and GUID) is written ``adding`` before
the download is, and ``added`` with the download's id and the chat's notice in ONE
transaction after. A crash between the two leaves ``adding``, which the next poll settles by
the download the chat lists (or not) for that torrent, so nothing is added twice and no
announcement is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import peewee

from manager.errors import FeedError
from manager.notices import NoticeKind
from manager.store.database import StoreDatabase, utc_now
from manager.store.engine import engine_of
from manager.store.outbox import Notices

__all__ = ["FEEDS_CHANNEL", "FeedEntryRecord", "FeedRecord", "Feeds", "entry_key"]

FEEDS_CHANNEL = "ariabot_feeds"
"""Announced when a feed is stored or resumed: the node that reads the feeds (the front)
looks at its schedule again, whichever node's ``ariabot rss`` wrote it."""


def entry_key(guid: str) -> str:
    """The stored key of an item's GUID (GUIDs are URLs of any length)."""
    return hashlib.sha1(guid.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class FeedRecord:
    """A stored feed."""

    id: int
    chat_id: int
    user_id: int
    name: str
    url: str
    filter: str
    paused: bool
    created_at: datetime
    next_poll_at: datetime
    last_poll_at: datetime | None
    last_ok_at: datetime | None
    failing_since: datetime | None
    failures: int
    last_error: str | None
    failure_told: bool
    etag: str | None
    last_modified: str | None
    added: int
    last_added_at: datetime | None


@dataclass(frozen=True)
class FeedEntryRecord:
    """What is stored of an item a feed listed."""

    key: str
    state: str
    info_hash: str | None
    tries: int
    download_id: int | None


_FEED_FIELDS = tuple(FeedRecord.__dataclass_fields__)


def _feed(row: Any) -> FeedRecord:
    return FeedRecord(**{name: getattr(row, name) for name in _FEED_FIELDS})


class Feeds:
    """The feeds and feed entries of one store, used from asyncio.

    Parameters:
        database: the store's database and thread.
        notices: the outbox, written with the entries that call for news.
    """

    def __init__(self, database: StoreDatabase, notices: Notices) -> None:
        self._database = database
        self._notices = notices

    async def create(self, *, chat_id: int, user_id: int, name: str, url: str,
                     filter_json: str, next_poll_at: datetime,
                     seen: Iterable[tuple[str, str | None, str]]) -> FeedRecord:
        """Store a new feed and the items of its backlog it will not add (``seen``: key,
        info-hash, title), in one transaction.

        Raises:
            FeedError: the chat has a feed of that name.
        """
        def write() -> FeedRecord:
            feed, entry = self._database.tables.feed, self._database.tables.feed_entry
            now = utc_now()
            with self._database.db.atomic():
                if feed.select().where((feed.chat_id == chat_id) & (feed.name == name)).exists():
                    raise FeedError(f"this chat already has a feed named {name!r}")
                feed_id = feed.insert(chat_id=chat_id, user_id=user_id, name=name, url=url,
                                      filter=filter_json, created_at=now,
                                      next_poll_at=next_poll_at).execute()
                rows = [dict(feed_id=feed_id, chat_id=chat_id, key=key, info_hash=info_hash,
                             title=title[:500], state="seen", seen_at=now)
                        for key, info_hash, title in dict.fromkeys(seen)]
                for start in range(0, len(rows), 200):
                    (entry.insert_many(rows[start:start + 200])
                     .on_conflict_ignore().execute())
                engine_of(self._database.db).announce(self._database.db, FEEDS_CHANNEL)
                return _feed(feed.get_by_id(feed_id))

        return await self._database.run(write)

    async def of_chat(self, chat_id: int) -> list[FeedRecord]:
        """The chat's feeds, by name."""
        def query() -> list[FeedRecord]:
            feed = self._database.tables.feed
            return [_feed(row) for row in
                    feed.select().where(feed.chat_id == chat_id).order_by(feed.name)]

        return await self._database.run(query)

    async def named(self, chat_id: int, name: str) -> FeedRecord | None:
        """The chat's feed called ``name`` (case-insensitive), if any."""
        def query() -> FeedRecord | None:
            feed = self._database.tables.feed
            row = feed.select().where((feed.chat_id == chat_id) & (
                peewee.fn.LOWER(feed.name) == name.lower())).first()
            return _feed(row) if row is not None else None

        return await self._database.run(query)

    async def get(self, feed_id: int) -> FeedRecord | None:
        """The feed ``feed_id``, if it is still stored."""
        def query() -> FeedRecord | None:
            feed = self._database.tables.feed
            row = feed.select().where(feed.id == feed_id).first()
            return _feed(row) if row is not None else None

        return await self._database.run(query)

    async def due(self, now: datetime) -> tuple[list[FeedRecord], datetime | None]:
        """The feeds to read now (not paused, due), and when the next one is due after."""
        def query() -> tuple[list[FeedRecord], datetime | None]:
            feed = self._database.tables.feed
            active = feed.paused == False  # noqa: E712 (peewee builds SQL from ==)
            due = [_feed(row) for row in feed.select().where(
                active & (feed.next_poll_at <= now)).order_by(feed.next_poll_at)]
            later = (feed.select(peewee.fn.MIN(feed.next_poll_at))
                     .where(active & (feed.next_poll_at > now)).scalar())
            return due, later

        return await self._database.run(query)

    async def update(self, feed_id: int, values: Mapping[str, Any], *,
                     rescheduled: bool = False) -> None:
        """Write ``values`` of the feed; ``rescheduled``: its next read is sooner than the
        schedule knew (announced on :data:`FEEDS_CHANNEL`)."""
        def write() -> None:
            database, feed = self._database.db, self._database.tables.feed
            with database.atomic():
                feed.update(**values).where(feed.id == feed_id).execute()
                if rescheduled:
                    engine_of(database).announce(database, FEEDS_CHANNEL)

        await self._database.run(write)

    async def remove(self, feed_id: int) -> None:
        """Forget the feed and its items (the downloads it added stay)."""
        def write() -> None:
            feed, entry = self._database.tables.feed, self._database.tables.feed_entry
            with self._database.db.atomic():
                entry.delete().where(entry.feed_id == feed_id).execute()
                feed.delete().where(feed.id == feed_id).execute()

        await self._database.run(write)

    async def entries(self, feed_id: int, keys: Iterable[str]) -> dict[str, FeedEntryRecord]:
        """The stored entries of ``feed_id`` among ``keys``."""
        wanted = list(dict.fromkeys(keys))

        def query() -> dict[str, FeedEntryRecord]:
            entry = self._database.tables.feed_entry
            found: dict[str, FeedEntryRecord] = {}
            for start in range(0, len(wanted), 500):
                for row in entry.select().where((entry.feed_id == feed_id) & (
                        entry.key.in_(wanted[start:start + 500]))):
                    found[row.key] = FeedEntryRecord(row.key, row.state, row.info_hash,
                                                     row.tries, row.download_id)
            return found

        return await self._database.run(query)

    async def chat_took(self, feed: FeedRecord, key: str, info_hash: str) -> bool:
        """Whether the feed's chat took this torrent already, from this feed or another,
        under another GUID: added, being added, or seen in a backlog. (The item's own entry
        is not counted: an add cut short left it "adding".)"""
        def query() -> bool:
            entry = self._database.tables.feed_entry
            return entry.select().where(
                (entry.chat_id == feed.chat_id) & (entry.info_hash == info_hash)
                & entry.state.in_(("adding", "added", "seen"))
                & ~((entry.feed_id == feed.id) & (entry.key == key))).exists()

        return await self._database.run(query)

    async def mark(self, feed: FeedRecord, key: str, state: str, *, info_hash: str | None,
                   title: str, tries: int = 0) -> None:
        """Store the item's state (written or overwritten)."""
        def write() -> None:
            self._upsert(feed, key, dict(state=state, info_hash=info_hash, title=title[:500],
                                         tries=tries))

        await self._database.run(write)

    async def mark_added(self, feed: FeedRecord, key: str, *, info_hash: str, title: str,
                         download_id: int) -> None:
        """The item's download is stored: the entry, the feed's count and the chat's notice
        (``feed_added``, its detail the feed's name) in one transaction."""
        def write() -> None:
            table = self._database.tables.feed
            now = utc_now()
            with self._database.db.atomic():
                self._upsert(feed, key, dict(state="added", info_hash=info_hash,
                                             title=title[:500], download_id=download_id))
                table.update(added=table.added + 1, last_added_at=now).where(
                    table.id == feed.id).execute()
                self._notices.write(download_id, NoticeKind.FEED_ADDED, now, detail=feed.name)

        await self._database.run(write)
        self._notices.stored()

    async def tell_failing(self, feed: FeedRecord, text: str) -> bool:
        """Store the chat's one notice that the feed has failed for a while; False when it
        was told already (in this run of failures)."""
        def write() -> bool:
            table = self._database.tables.feed
            with self._database.db.atomic():
                changed = table.update(failure_told=True).where(
                    (table.id == feed.id) & (table.failure_told == False)  # noqa: E712
                ).execute()
                if changed:
                    self._notices.write_chat(feed.chat_id, NoticeKind.FEED_FAILING, text,
                                             utc_now())
                return bool(changed)

        told = await self._database.run(write)
        if told:
            self._notices.stored()
        return told

    def _upsert(self, feed: FeedRecord, key: str, values: dict[str, Any]) -> None:
        """Write the entry; none for a feed removed meanwhile (a read it outlived)."""
        entry, table = self._database.tables.feed_entry, self._database.tables.feed
        changed = entry.update(**values).where(
            (entry.feed_id == feed.id) & (entry.key == key)).execute()
        if not changed and table.select().where(table.id == feed.id).exists():
            entry.insert(feed_id=feed.id, chat_id=feed.chat_id, key=key, seen_at=utc_now(),
                         **values).execute()

    def follow_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """Inside a chat move's transaction: the chat's feeds go to its new id (a name the
        new chat has already keeps the old chat's feed where it was)."""
        feed, entry = self._database.tables.feed, self._database.tables.feed_entry
        taken = feed.select(feed.name).where(feed.chat_id == new_chat_id)
        feed.update(chat_id=new_chat_id).where(
            (feed.chat_id == old_chat_id) & feed.name.not_in(taken)).execute()
        moved = feed.select(feed.id).where(feed.chat_id == new_chat_id)
        entry.update(chat_id=new_chat_id).where(
            (entry.chat_id == old_chat_id) & entry.feed_id.in_(moved)).execute()
