"""A chat's feeds: subscribe, list, pause, resume, change the filter, remove (the surface
``/rss`` and ``ariabot rss`` use), and the schedule that reads each feed when it is due.

A new feed is read once at once, so that a link that is not a feed of torrents is refused
with its reason and nothing stored. Its backlog is marked seen, not downloaded: only the
newest ``newest:N`` matches are added, if asked. From then on each feed is read every
:attr:`~manager.config.FeedConfig.interval` seconds (±10%), on its own schedule, by
:meth:`FeedService.run`; :class:`~manager.feeds.reader.FeedReader` does one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from yarl import URL

from manager.config import FeedConfig
from manager.errors import FeedError, FeedNotFound, StoreError
from manager.feeds.filters import FeedFilter, parse_feed_options
from manager.feeds.items import FeedItem
from manager.feeds.reader import FeedReader, jittered
from manager.store import FEEDS_CHANNEL, FeedRecord, Listener, Store, entry_key

__all__ = ["MAX_FEEDS", "FeedService", "FeedView", "Subscribed"]

log = logging.getLogger(__name__)

MAX_FEEDS = 50
"""Feeds one chat may have."""
_PARALLEL = 4
"""Feeds read at the same time."""
_IDLE = 60.0
"""Longest nap of the schedule (s): a feed stored by another process is read by then."""
_STORE_RETRY = 5.0
_NAME = re.compile(r"[\w.-]{1,32}")


@dataclass(frozen=True)
class FeedView:
    """A feed as a chat sees it: its host, never its URL (which may hold an API key)."""

    name: str
    host: str
    filter: str
    paused: bool
    user_id: int
    """Who subscribed (in a group, they and its admins may change it)."""
    added: int
    last_added_at: datetime | None
    last_ok_at: datetime | None
    next_poll_at: datetime
    last_error: str | None
    failing_since: datetime | None


@dataclass(frozen=True)
class Subscribed:
    """What :meth:`FeedService.subscribe` did."""

    feed: FeedView
    items: int
    """Items in the feed when it was read."""
    added: int
    """Of its newest matches, how many were added (``newest:N``)."""


def view(record: FeedRecord) -> FeedView:
    """What a chat is shown of a stored feed."""
    return FeedView(name=record.name, host=URL(record.url).host or "?",
                    filter=FeedFilter.from_json(record.filter).describe(),
                    paused=record.paused, user_id=record.user_id, added=record.added,
                    last_added_at=record.last_added_at, last_ok_at=record.last_ok_at,
                    next_poll_at=record.next_poll_at, last_error=record.last_error,
                    failing_since=record.failing_since)


class FeedService:
    """The chats' feeds.

    Parameters:
        store: the opened store.
        reader: reads one feed.
        config: the interval.
        clock: the time now (UTC, naive, as the store keeps it).
    """

    def __init__(self, store: Store, reader: FeedReader, config: FeedConfig,
                 clock: Callable[[], datetime]) -> None:
        self._store = store
        self._reader = reader
        self._config = config
        self._clock = clock
        self._wake = asyncio.Event()

    async def subscribe(self, chat_id: int, user_id: int, url: str, name: str | None = None,
                        options: Sequence[str] = ()) -> Subscribed:
        """Subscribe the chat to the feed at ``url``.

        Parameters:
            name: what the chat calls it (from the feed's title when None).
            options: ``include:``, ``exclude:``, ``min:``, ``max:``, ``newest:`` words.

        Raises:
            FeedError: a bad option or name, a name or URL the chat has already, too many
                feeds, or a link that is not a feed of torrents (nothing is stored).
        """
        chosen = parse_feed_options(options)
        if name is not None and not _NAME.fullmatch(name):
            raise FeedError("a feed's name is 1 to 32 letters, digits, '.', '-' or '_'")
        have = await self._store.feeds.of_chat(chat_id)
        if len(have) >= MAX_FEEDS:
            raise FeedError(f"this chat has {MAX_FEEDS} feeds, the most it may have: remove "
                            "one first")
        same = next((record for record in have if _same_url(record.url, url)), None)
        if same is not None:
            raise FeedError(f"this chat has that feed already: {same.name}")
        parsed, etag, last_modified = await self._reader.fetch(url.strip())
        assert parsed is not None  # no validators were sent: a whole answer
        taken = {record.name.lower() for record in have}
        if name is None:
            name = _free_name(_slug(parsed.title) or URL(url.strip()).host or "feed", taken)
        elif name.lower() in taken:
            raise FeedError(f"this chat already has a feed named {name!r}")
        newest = _newest(parsed.items, chosen.filter, chosen.newest)
        wanted = {entry_key(item.guid) for item in newest}
        now = self._clock()
        record = await self._store.feeds.create(
            chat_id=chat_id, user_id=user_id, name=name, url=url.strip(),
            filter_json=chosen.filter.to_json(),
            next_poll_at=now + timedelta(seconds=jittered(self._config.interval)),
            seen=[(entry_key(item.guid), item.info_hash, item.title)
                  for item in parsed.items if entry_key(item.guid) not in wanted])
        added, again = 0, False
        if newest:
            added, again = await self._reader.take(record, newest, limit=len(newest))
        read: dict[str, object] = {"last_poll_at": now, "last_ok_at": now}
        if not again:  # an item to try again needs the whole feed at the next read
            read.update(etag=etag, last_modified=last_modified)
        await self._store.feeds.update(record.id, read)
        self.wake()  # its first read is due sooner than the schedule's nap may end
        stored = await self._store.feeds.get(record.id)
        return Subscribed(view(stored or record), len(parsed.items), added)

    async def list(self, chat_id: int) -> list[FeedView]:
        """The chat's feeds, by name."""
        return [view(record) for record in await self._store.feeds.of_chat(chat_id)]

    async def remove(self, chat_id: int, name: str) -> FeedView:
        """Unsubscribe: the feed and what it saw are forgotten; its downloads stay.

        Raises:
            FeedNotFound: the chat has no feed of that name.
        """
        record = await self._named(chat_id, name)
        await self._store.feeds.remove(record.id)
        return view(record)

    async def pause(self, chat_id: int, name: str) -> FeedView:
        """Stop reading the feed until it is resumed.

        Raises:
            FeedNotFound: the chat has no feed of that name.
        """
        record = await self._named(chat_id, name)
        await self._store.feeds.update(record.id, {"paused": True})
        return await self._view(record)

    async def resume(self, chat_id: int, name: str) -> FeedView:
        """Read the feed again, now; what it listed meanwhile is new to it and is added
        if it matches (at most the per-read limit at a time).

        Raises:
            FeedNotFound: the chat has no feed of that name.
        """
        record = await self._named(chat_id, name)
        await self._store.feeds.update(record.id, {
            "paused": False, "next_poll_at": self._clock(), "failures": 0,
            "failing_since": None, "failure_told": False}, rescheduled=True)
        self.wake()
        return await self._view(record)

    async def set_filter(self, chat_id: int, name: str, options: Sequence[str]) -> FeedView:
        """Replace the feed's filter with the one ``options`` give (none: everything). It
        applies to the items the feed lists from now on.

        Raises:
            FeedNotFound: the chat has no feed of that name.
            FeedError: a bad option, or ``newest:`` (only for a new feed).
        """
        chosen = parse_feed_options(options)
        if "newest" in chosen.given:
            raise FeedError("newest:N is for a new feed only: it adds that many of its "
                            "backlog when it is added")
        record = await self._named(chat_id, name)
        await self._store.feeds.update(record.id, {"filter": chosen.filter.to_json()})
        return await self._view(record)

    def wake(self) -> None:
        """Look at the schedule now (a feed was resumed)."""
        self._wake.set()

    async def run(self) -> None:
        """Read each feed when it is due, :data:`_PARALLEL` at a time, until cancelled. A
        feed stored or resumed by another node (nodes sharing a database) wakes the
        schedule through the store's announcement."""
        listener = Listener(self._store.url, (FEEDS_CHANNEL,),
                            lambda _channel, _payload: self.wake(), self.wake)
        hearing = asyncio.create_task(listener.run(), name="feeds stored elsewhere")
        try:
            await self._read_when_due()
        finally:
            hearing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hearing

    async def _read_when_due(self) -> None:
        gate = asyncio.Semaphore(_PARALLEL)
        troubled = False

        async def read(feed: FeedRecord) -> None:
            nonlocal troubled
            async with gate:
                try:
                    await self._reader.read(feed)
                except StoreError as error:
                    troubled = True  # its schedule was not written: not again at once
                    log.warning("feed %s of chat %s not read: %s", feed.name, feed.chat_id,
                                error)
                except Exception:  # a defect: logged, and the other feeds are read on
                    troubled = True
                    log.exception("feed %s of chat %s: the read failed", feed.name,
                                  feed.chat_id)

        while True:
            self._wake.clear()
            troubled = False
            try:
                due, later = await self._store.feeds.due(self._clock())
            except StoreError as error:
                log.warning("feeds not looked at: %s; trying again", error)
                due, later, troubled = [], None, True
            if due:
                await asyncio.gather(*(read(feed) for feed in due))
                if not troubled:
                    continue  # their next reads are written: look again (more came due)
            nap = _IDLE if later is None else (later - self._clock()).total_seconds()
            if troubled:
                nap = _STORE_RETRY
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.05, min(_IDLE, nap))):
                    await self._wake.wait()

    async def _named(self, chat_id: int, name: str) -> FeedRecord:
        record = await self._store.feeds.named(chat_id, name)
        if record is None:
            raise FeedNotFound(f"this chat has no feed named {name!r}")
        return record

    async def _view(self, record: FeedRecord) -> FeedView:
        stored = await self._store.feeds.get(record.id)
        if stored is None:
            raise FeedNotFound(f"the feed {record.name!r} was just removed")
        return view(stored)


def _newest(items: tuple[FeedItem, ...], chosen: FeedFilter, count: int) -> tuple[FeedItem, ...]:
    """The ``count`` newest items that match (by date when the feed gives one, else in the
    feed's order, which lists the newest first)."""
    if count == 0:
        return ()
    order = sorted(range(len(items)), key=lambda i: (-(items[i].published or 0.0), i))
    matching = [items[i] for i in order if chosen.matches(items[i].title, items[i].size)]
    return tuple(matching[:count])


def _same_url(stored: str, given: str) -> bool:
    """Whether two feed URLs are one feed: yarl's normal form (scheme and host in lower case,
    the default port dropped), without a fragment, which never reaches the server."""
    try:
        return URL(stored.strip()).with_fragment(None) == URL(given.strip()).with_fragment(None)
    except ValueError:
        return stored.strip() == given.strip()


def _slug(title: str) -> str:
    """A name made of a feed's title: ``"Nyaa - Home"`` → ``"nyaa-home"``."""
    return re.sub(r"[^\w.]+", "-", title.lower()).strip("-._")[:32].strip("-._")


def _free_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate.lower() in taken:
        suffix = f"-{number}"
        candidate, number = name[:32 - len(suffix)] + suffix, number + 1
    return candidate
