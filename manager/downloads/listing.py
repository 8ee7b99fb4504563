"""Listing downloads a page at a time, straight from the store.

With 100,000 stored downloads a whole list is seconds of work (rows read, snapshots made,
JSON written) and megabytes held at once; done on the event loop it stops the bot and the
poll meanwhile. So every listing is paged: the store reads one page through an index (on its
own thread), and only that page becomes snapshots on the loop. ``ariabot list`` walks the
pages with a cursor (:meth:`Listing.page`); the bot's ``/status`` asks for page *n* of its
own order with the totals from one count (:meth:`Listing.status_page`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from manager.downloads.live import LIVE_STATES, LiveDownloads
from manager.models import Torrent, TorrentState
from manager.store import Store

__all__ = ["LIST_PAGE_MAX", "Listing", "StatusPage"]

LIST_PAGE_MAX = 500
"""Most downloads one page holds: a page's snapshots are made on the event loop."""

_UNFINISHED = tuple(sorted(s.value for s in LIVE_STATES))
_FINISHED = (TorrentState.COMPLETE.value, TorrentState.ERROR.value)
"""What /status shows after the unfinished ones (cancelled downloads are left out)."""


@dataclass(frozen=True)
class StatusPage:
    """One page of a chat's ``/status`` overview.

    Attributes:
        torrents: this page's downloads: unfinished ones first, then finished ones, newest
            first within each group; cancelled ones are left out.
        total: how many downloads the whole overview shows.
        page: this page's number (0-based; a page asked past the end is the last one).
        pages: how many pages there are (at least 1).
    """

    torrents: tuple[Torrent, ...]
    total: int
    page: int
    pages: int


class Listing:
    """Paged reads of the downloads list.

    Parameters:
        live: the tracked downloads (their queue position and stuck reason).
        store: the opened store.
        attach: adds each snapshot's mirror (:meth:`manager.mirrors.Mirrors.attach`).
    """

    def __init__(self, live: LiveDownloads, store: Store,
                 attach: Callable[[list[Torrent]], Awaitable[list[Torrent]]]) -> None:
        self._live = live
        self._store = store
        self._attach = attach

    async def page(self, chat_id: int | None = None, *, before_id: int | None = None,
                   limit: int = LIST_PAGE_MAX) -> list[Torrent]:
        """Up to ``limit`` downloads (of one chat, or all), newest first, with ids below
        ``before_id``: pass the last id of a page to get the next one; an empty page is
        the end."""
        records = await self._store.page(chat_id=chat_id, before_id=before_id,
                                         limit=max(1, min(limit, LIST_PAGE_MAX)))
        return await self._attach([self._live.snapshot(record) for record in records])

    async def status_page(self, chat_id: int, page: int, page_size: int) -> StatusPage:
        """Page ``page`` of the chat's ``/status`` overview (see :class:`StatusPage`)."""
        counts = await self._store.state_counts(chat_id=chat_id)
        unfinished = sum(counts.get(state, 0) for state in _UNFINISHED)
        total = unfinished + sum(counts.get(state, 0) for state in _FINISHED)
        pages = max(1, math.ceil(total / page_size))
        page = min(max(0, page), pages - 1)
        start = page * page_size
        records = []
        if start < unfinished:
            records += await self._store.page(chat_id=chat_id, states=_UNFINISHED,
                                              offset=start, limit=page_size)
        if len(records) < page_size:
            records += await self._store.page(chat_id=chat_id, states=_FINISHED,
                                              offset=max(0, start - unfinished),
                                              limit=page_size - len(records))
        torrents: Sequence[Torrent] = await self._attach(
            [self._live.snapshot(record) for record in records])
        return StatusPage(tuple(torrents), total, page, pages)
