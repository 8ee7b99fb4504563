"""One page's live view: the chat's downloads as Server-Sent Events.

Each open page holds one stream (a ``fetch`` on the page's side, because ``EventSource``
cannot send the ``Authorization`` header). The stream starts with a snapshot of the chat's
downloads, then sends a download each time the manager says it changed: the manager's
events are pushed, nothing is polled. Changes that come faster than the page reads are
merged per download (the latest wins), so a slow phone costs memory for one view per
download at most, never a growing queue. A comment every :data:`PING_SECONDS` keeps proxies
from closing an idle stream and finds a page that went away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from manager import Event, Torrent, TorrentCancelled, TorrentEvent, TorrentState

__all__ = ["PING_SECONDS", "ChatStream"]

PING_SECONDS = 15.0
_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}

ViewOf = Callable[[Torrent], Awaitable[dict[str, Any]]]


def frame(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event (JSON has no raw newline, so one ``data:`` line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class ChatStream:
    """The changes of one chat's downloads, waiting for one page to read them.

    Parameters:
        chat_id: the chat whose downloads the page shows.
        view_of: a download as this page's user sees it (their rights included).
    """

    def __init__(self, chat_id: int, view_of: ViewOf) -> None:
        self._chat_id = chat_id
        self._view_of = view_of
        self._changed: dict[int, Torrent | None] = {}  # None: gone from the chat
        self._wake = asyncio.Event()
        self._stopped = False

    def stop(self) -> None:
        """End the stream (the page is told nothing: it reconnects if it is still open)."""
        self._stopped = True
        self._wake.set()

    def __call__(self, event: Event) -> None:
        """A manager subscriber: remember the latest state of this chat's downloads."""
        if not isinstance(event, TorrentEvent) or event.torrent.chat_id != self._chat_id:
            return
        gone = isinstance(event, TorrentCancelled)
        self._changed[event.torrent.id] = None if gone else event.torrent
        self._wake.set()

    async def serve(self, request: web.Request, snapshot: list[Torrent]) -> web.StreamResponse:
        """Send the snapshot, then the changes, until the page goes away, the stream is
        stopped, or the server stops."""
        response = web.StreamResponse(headers=_HEADERS)
        await response.prepare(request)
        views = [await self._view_of(t) for t in snapshot if t.state is not TorrentState.CANCELLED]
        try:
            await response.write(frame("snapshot", {"downloads": views}))
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), PING_SECONDS)
                except TimeoutError:
                    await response.write(b": ping\n\n")
                    continue
                if self._stopped:
                    break
                self._wake.clear()
                changed, self._changed = self._changed, {}
                for download_id, torrent in sorted(changed.items()):
                    if torrent is None or torrent.state is TorrentState.CANCELLED:
                        chunk = frame("removed", {"id": download_id})
                    else:
                        chunk = frame("download", await self._view_of(torrent))
                    await response.write(chunk)
        except ConnectionResetError:
            pass  # the page was closed
        return response
