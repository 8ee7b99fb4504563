"""One page's live view: the chat's downloads as Server-Sent Events.

Each open page holds one stream (a ``fetch`` on the page's side, because ``EventSource``
cannot send the ``Authorization`` header). The stream starts with a snapshot of the chat's
downloads, then sends a download each time the manager says it changed: the manager's
events are pushed, nothing is polled. Changes that come faster than the page reads are
merged per download (the latest wins), so a slow phone costs memory for one view per
download at most, never a growing queue; what a wake-up found is sent in one write. A
download's frame is encoded once for every open page (:class:`Frames`): twenty pages
watching fifty downloads cost fifty encodings a poll, not a thousand. A comment every
:data:`PING_SECONDS` keeps proxies from closing an idle stream and finds a page that went
away; before it, the request's checks run again, so a stream outlives neither its
initData nor its user's place in the group by more than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from manager import (
    DownloadsPurged,
    Event,
    Torrent,
    TorrentCancelled,
    TorrentEvent,
    TorrentState,
)
from web.miniapp.views import download_json

__all__ = ["PING_SECONDS", "ChatStream", "Frames"]

PING_SECONDS = 15.0
_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}

MayAct = Callable[[Torrent], Awaitable[bool]]
StillAllowed = Callable[[], Awaitable[bool]]
_FRAMES_KEPT = 4096


def frame(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event (JSON has no raw newline, so one ``data:`` line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Frames:
    """The ``download`` frames of the latest snapshots, shared by every open page.

    A snapshot is the manager's event's own object, the same for every subscriber, so it
    is known by its identity (kept alive with its frame, so the identity is not reused);
    the user's rights are the only other input. The oldest of :data:`_FRAMES_KEPT` go.
    """

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[int, bool], tuple[Torrent, bytes]] = OrderedDict()

    def download(self, torrent: Torrent, *, may_act: bool) -> bytes:
        """The frame of ``torrent`` for a user who may (or may not) change it."""
        key = (id(torrent), may_act)
        kept = self._kept.get(key)
        if kept is not None and kept[0] is torrent:
            return kept[1]
        chunk = frame("download", download_json(torrent, may_act=may_act))
        self._kept[key] = (torrent, chunk)
        self._kept.move_to_end(key)
        if len(self._kept) > _FRAMES_KEPT:
            self._kept.popitem(last=False)
        return chunk


class ChatStream:
    """The changes of one chat's downloads, waiting for one page to read them.

    Parameters:
        chat_id: the chat whose downloads the page shows.
        may_act: whether this page's user may change a download.
        frames: the frames shared by all pages.
        still_allowed: the request's checks again (its initData's age, the user's place
            in the chat), at every ping: a page whose user left the group, or whose
            initData expired, is ended (it reconnects, and is refused).
    """

    def __init__(self, chat_id: int, may_act: MayAct, frames: Frames,
                 still_allowed: StillAllowed) -> None:
        self._chat_id = chat_id
        self._may_act = may_act
        self._frames = frames
        self._still_allowed = still_allowed
        self._changed: dict[int, Torrent | None] = {}  # None: gone from the chat
        self._wake = asyncio.Event()
        self._stopped = False

    def stop(self) -> None:
        """End the stream (the page is told nothing: it reconnects if it is still open)."""
        self._stopped = True
        self._wake.set()

    def __call__(self, event: Event) -> None:
        """A manager subscriber: remember the latest state of this chat's downloads."""
        if isinstance(event, DownloadsPurged):
            gone = [download_id for download_id, chat_id in event.purged
                    if chat_id == self._chat_id]
            self._changed.update(dict.fromkeys(gone))
            if gone:
                self._wake.set()
            return
        if not isinstance(event, TorrentEvent) or event.torrent.chat_id != self._chat_id:
            return
        gone = isinstance(event, TorrentCancelled)
        self._changed[event.torrent.id] = None if gone else event.torrent
        self._wake.set()

    async def _changes(self) -> bytes:
        """The frames of what changed since the last write, in one piece."""
        changed, self._changed = self._changed, {}
        chunks = []
        for download_id, torrent in sorted(changed.items()):
            if torrent is None or torrent.state is TorrentState.CANCELLED:
                chunks.append(frame("removed", {"id": download_id}))
            else:
                chunks.append(self._frames.download(torrent,
                                                    may_act=await self._may_act(torrent)))
        return b"".join(chunks)

    async def serve(self, request: web.Request, snapshot: list[Torrent]) -> web.StreamResponse:
        """Send the snapshot, then the changes, until the page goes away, the stream is
        stopped, or the server stops."""
        response = web.StreamResponse(headers=_HEADERS)
        await response.prepare(request)
        views = [download_json(t, may_act=await self._may_act(t))
                 for t in snapshot if t.state is not TorrentState.CANCELLED]
        loop = asyncio.get_running_loop()
        check_at = loop.time() + PING_SECONDS
        try:
            await response.write(frame("snapshot", {"downloads": views}))
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, check_at - loop.time())):
                        await self._wake.wait()
                if loop.time() >= check_at:  # however busy the stream is
                    if not await self._still_allowed():
                        break
                    check_at = loop.time() + PING_SECONDS
                    if not self._wake.is_set():
                        await response.write(b": ping\n\n")
                        continue
                if self._stopped:
                    break
                self._wake.clear()
                await response.write(await self._changes())
        except ConnectionResetError:
            pass  # the page was closed
        return response
