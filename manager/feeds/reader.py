"""One read of one feed: fetch it (a conditional GET), parse it, and add what is new and
matches its filter, at most :attr:`~manager.config.FeedConfig.max_adds` per read.

An item is looked at once per feed (its GUID's entry); a torrent comes once per chat (its
info-hash: a re-post under a new GUID, the same episode in two feeds, or a download the chat
already lists is skipped quietly). Items are taken oldest first, so that a read with more
matches than it may add leaves the newest for the next read. A read that leaves something
for later (matches past the limit, a ``.torrent`` to try again) keeps no validators, so the
next read gets the whole feed: a 304 would hide them.

Before a download is added its entry is written ``adding``; a crash before the entry says
``added`` is settled at the next read by the chat's row for that torrent (adopted, and told,
when the add went through; added when it did not). A ``.torrent`` the indexer cannot serve
now is tried again at the next reads, :data:`TRIES` times in all.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from manager.actions import AddResult
from manager.config import FeedConfig
from manager.errors import (
    AlreadyDownloading,
    FeedError,
    InvalidSource,
    NotEnoughSpace,
    StoreError,
    TorrentUrlError,
)
from manager.feeds.filters import FeedFilter
from manager.feeds.items import FeedItem, ParsedFeed, read_feed
from manager.fetch import FeedFetcher, TorrentFetcher
from manager.models import TorrentState
from manager.sources import (
    MagnetLink,
    TorrentMeta,
    is_http_url,
    parse_magnet,
    parse_torrent,
)
from manager.store import FeedEntryRecord, FeedRecord, Store, entry_key
from manager.units import human_duration

__all__ = ["TRIES", "Adder", "FeedReader", "ReadOutcome", "backoff"]

log = logging.getLogger(__name__)

TRIES = 3
"""Reads that try an item whose ``.torrent`` could not be fetched before it is given up."""
_BACKOFF_MAX = 6 * 3600.0
"""The longest wait between two reads of a failing feed (s)."""
_RETRYABLE = frozenset({"adding", "retry"})


class Adder(Protocol):
    """What a feed needs of the manager: :meth:`manager.TorrentManager.add`."""

    async def add(self, source: str | bytes, chat_id: int, user_id: int,
                  message_id: int | None = None) -> AddResult: ...


class _Took(enum.Enum):
    """What became of one matching item."""

    ADDED = "added"
    """A download was added (or the one an add cut short left was adopted)."""
    NOT = "not"
    """Nothing to add: a duplicate, skipped by size, given up."""
    LATER = "later"
    """Its ``.torrent`` could not be had now: tried again at the next read."""


@dataclass(frozen=True)
class ReadOutcome:
    """What one read did."""

    items: int = 0
    added: int = 0
    not_modified: bool = False


def backoff(interval: float, failures: int) -> float:
    """Seconds until the next read of a feed that failed ``failures`` times in a row: its
    interval, doubled per failure after the first, at most six hours (or its interval)."""
    return min(interval * 2 ** max(0, failures - 1), max(interval, _BACKOFF_MAX))


def jittered(seconds: float) -> float:
    """``seconds`` ±10%, so that feeds added together do not stay in step."""
    return seconds * random.uniform(0.9, 1.1)  # noqa: S311 (not a secret)


class FeedReader:
    """Reads feeds and adds their new matches.

    Parameters:
        store: the opened store.
        feeds: fetches feed documents.
        torrents: fetches the items' ``.torrent`` files.
        adder: adds downloads (the manager).
        config: intervals and limits.
        torrent_max_bytes: the largest ``.torrent`` taken.
        clock: the time now (UTC, naive, as the store keeps it).
    """

    def __init__(self, store: Store, *, feeds: FeedFetcher, torrents: TorrentFetcher,
                 adder: Adder, config: FeedConfig, torrent_max_bytes: int,
                 clock: Callable[[], datetime]) -> None:
        self._store = store
        self._feeds = feeds
        self._torrents = torrents
        self._adder = adder
        self._config = config
        self._torrent_max_bytes = torrent_max_bytes
        self._clock = clock

    async def fetch(self, url: str, *, etag: str | None = None,
                    last_modified: str | None = None,
                    ) -> tuple[ParsedFeed | None, str | None, str | None]:
        """The feed at ``url`` parsed (None when not modified) and its new validators.

        Raises:
            FeedError: it cannot be fetched, or is not a feed of torrents.
        """
        answer = await self._feeds.fetch(url, etag=etag, last_modified=last_modified)
        if answer.body is None:
            return None, answer.etag, answer.last_modified
        parsed = await asyncio.to_thread(read_feed, answer.body)
        if not parsed.items and parsed.without_torrent:
            raise FeedError(f"none of the feed's {parsed.without_torrent} items names a "
                            "torrent (a .torrent link, a magnet link or an info-hash)")
        return parsed, answer.etag, answer.last_modified

    async def read(self, feed: FeedRecord) -> ReadOutcome:
        """Read ``feed`` once and add its new matches; its schedule and last error are
        written. Never raises for the feed's own failures (they are stored).

        Raises:
            StoreError: the store cannot be read or written (the read is tried again at
                the next turn).
        """
        now = self._clock()
        try:
            parsed, etag, last_modified = await self.fetch(
                feed.url, etag=feed.etag, last_modified=feed.last_modified)
        except FeedError as error:
            await self._failed(feed, str(error), now)
            return ReadOutcome()
        if feed.failures:
            log.info("feed %s of chat %s is read again after %d failures", feed.name,
                     feed.chat_id, feed.failures)
        if feed.last_error:  # it reads: the last problem goes (this read's items may tell one)
            await self._store.feeds.update(feed.id, {"last_error": None})
        if parsed is None:
            await self._read_ok(feed, now, {})
            return ReadOutcome(not_modified=True)
        added, again = await self.take(feed, parsed.items, limit=self._config.max_adds)
        validators = ({"etag": None, "last_modified": None} if again
                      else {"etag": etag, "last_modified": last_modified})
        await self._read_ok(feed, now, validators)
        return ReadOutcome(items=len(parsed.items), added=added)

    async def take(self, feed: FeedRecord, items: tuple[FeedItem, ...], *,
                   limit: int) -> tuple[int, bool]:
        """Add ``items`` new to ``feed`` that match its filter, oldest first, at most
        ``limit``; returns how many were added and whether some are left for a later read
        (matches past the limit, items to try again)."""
        chosen = FeedFilter.from_json(feed.filter)
        keyed = {entry_key(item.guid): item for item in reversed(items)}
        known = await self._store.feeds.entries(feed.id, keyed)
        added, again = 0, False
        for key, item in keyed.items():
            entry = known.get(key)
            if entry is not None and entry.state not in _RETRYABLE:
                continue
            if not chosen.matches(item.title, item.size):
                await self._store.feeds.mark(feed, key, "skipped", info_hash=item.info_hash,
                                             title=item.title)
                continue
            if added >= limit:
                return added, True
            outcome = await self._take_one(feed, key, item, entry, chosen)
            added += outcome is _Took.ADDED
            again |= outcome is _Took.LATER
        return added, again

    async def _take_one(self, feed: FeedRecord, key: str, item: FeedItem,
                        entry: FeedEntryRecord | None, chosen: FeedFilter) -> _Took:
        """Add one matching item (or adopt the download an earlier add left)."""
        tries = entry.tries if entry is not None else 0
        source: str | bytes = item.source
        if is_http_url(item.source):
            try:
                source = await self._torrents.fetch(item.source)
            except TorrentUrlError as error:
                if item.fallback is not None:  # the magnet the item names too
                    log.info("feed %s: %s: %s; adding its magnet link", feed.name, item.title,
                             error)
                    return await self._add_source(feed, key, item, entry, chosen,
                                                  source=item.fallback)
                later = tries + 1 < TRIES
                await self._store.feeds.mark(feed, key, "retry" if later else "failed",
                                             info_hash=item.info_hash, title=item.title,
                                             tries=tries + 1)
                await self._store.feeds.update(feed.id, {"last_error": f"{item.title}: {error}"})
                return _Took.LATER if later else _Took.NOT
        return await self._add_source(feed, key, item, entry, chosen, source=source)

    async def _add_source(self, feed: FeedRecord, key: str, item: FeedItem,
                          entry: FeedEntryRecord | None, chosen: FeedFilter, *,
                          source: str | bytes) -> _Took:
        """Add the item from ``source`` (its ``.torrent``'s bytes, or a magnet link)."""
        tries = entry.tries if entry is not None else 0
        try:
            parsed = await asyncio.to_thread(self._parse, source)
        except InvalidSource as error:
            await self._give_up(feed, key, item, str(error))
            return _Took.NOT
        info_hash = parsed.info_hash
        if (isinstance(parsed, TorrentMeta) and item.size is None
                and not chosen.matches(item.title, parsed.total_bytes)):
            await self._store.feeds.mark(feed, key, "skipped", info_hash=info_hash,
                                         title=item.title)
            return _Took.NOT
        listed = await self._store.downloads.find(info_hash, feed.chat_id)
        if entry is not None and entry.state == "adding" and listed is not None:
            if listed.state == TorrentState.CANCELLED.value:  # cancelled since: not again
                await self._store.feeds.mark(feed, key, "duplicate", info_hash=info_hash,
                                             title=item.title)
                return _Took.NOT
            await self._store.feeds.mark_added(feed, key, info_hash=info_hash,
                                               title=item.title, download_id=listed.id)
            return _Took.ADDED
        if listed is not None or await self._store.feeds.chat_took(feed, key, info_hash):
            await self._store.feeds.mark(feed, key, "duplicate", info_hash=info_hash,
                                         title=item.title)
            return _Took.NOT
        await self._store.feeds.mark(feed, key, "adding", info_hash=info_hash,
                                     title=item.title, tries=tries)
        try:
            result = await self._adder.add(source, feed.chat_id, feed.user_id, None)
        except (InvalidSource, NotEnoughSpace, AlreadyDownloading) as error:
            await self._give_up(feed, key, item, str(error), info_hash)
            return _Took.NOT
        except StoreError:
            raise
        if result.existing:
            await self._store.feeds.mark(feed, key, "duplicate", info_hash=info_hash,
                                         title=item.title)
            return _Took.NOT
        await self._store.feeds.mark_added(feed, key, info_hash=info_hash, title=item.title,
                                           download_id=result.torrent.id)
        return _Took.ADDED

    def _parse(self, source: str | bytes) -> MagnetLink | TorrentMeta:
        if isinstance(source, bytes):
            return parse_torrent(source, max_bytes=self._torrent_max_bytes)
        return parse_magnet(source)

    async def _give_up(self, feed: FeedRecord, key: str, item: FeedItem, why: str,
                       info_hash: str | None = None) -> None:
        await self._store.feeds.mark(feed, key, "failed", info_hash=info_hash or item.info_hash,
                                     title=item.title, tries=TRIES)
        await self._store.feeds.update(feed.id, {"last_error": f"{item.title}: {why}"})

    async def _read_ok(self, feed: FeedRecord, now: datetime,
                       validators: dict[str, str | None]) -> None:
        values: dict[str, object] = {
            "last_poll_at": now, "last_ok_at": now, "failures": 0, "failing_since": None,
            "failure_told": False,
            "next_poll_at": now + timedelta(seconds=jittered(self._config.interval)),
            **validators,
        }
        await self._store.feeds.update(feed.id, values)

    async def _failed(self, feed: FeedRecord, why: str, now: datetime) -> None:
        failures = feed.failures + 1
        since = feed.failing_since or now
        wait = jittered(backoff(self._config.interval, failures))
        log.info("feed %s of chat %s failed (%d in a row): %s", feed.name, feed.chat_id,
                 failures, why)
        await self._store.feeds.update(feed.id, {
            "last_poll_at": now, "failures": failures, "failing_since": since,
            "last_error": why, "next_poll_at": now + timedelta(seconds=wait)})
        failing_for = (now - since).total_seconds()
        if failing_for >= self._config.failing_after and not feed.failure_told:
            told = await self._store.feeds.tell_failing(feed, (
                f"The feed “{feed.name}” has not been read for {human_duration(failing_for)}: "
                f"{why}. It is tried again, less often each time (at least every 6 hours); "
                "the list of feeds shows how it goes."))
            if told:  # the log tells the local chat's feeds too, which have no chat to tell
                log.warning("feed %s of chat %s has not been read for %s: %s", feed.name,
                            feed.chat_id, human_duration(failing_for), why)
