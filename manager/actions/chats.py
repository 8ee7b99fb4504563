"""A chat that changed its id: Telegram upgraded a group to a supergroup.

Telegram then answers every request to the old id with the new one
(``migrate_to_chat_id``); nothing can be sent or edited there any more. The chat's
downloads, mirrors and pending notices follow it, so that their news and edits reach the
users where they are now; the old progress messages are out of reach and forgotten.
"""

from __future__ import annotations

import logging

from manager.downloads import LiveDownloads
from manager.models import TorrentState
from manager.store import Store

__all__ = ["ChatMoves"]

log = logging.getLogger(__name__)


class ChatMoves:
    """Moves a chat's downloads to its new id, in the store and in memory alike.

    Parameters:
        live: the shared lock and tracked downloads.
        store: the opened store.
    """

    def __init__(self, live: LiveDownloads, store: Store) -> None:
        self._live = live
        self._store = store

    async def move(self, old_chat_id: int, new_chat_id: int) -> int:
        """Give the downloads of ``old_chat_id`` to ``new_chat_id`` and keep the move;
        returns how many moved. Moving a chat twice moves nothing the second time. A
        download whose torrent the new chat already lists stays with the old id, unless the
        new chat's row was cancelled (see :meth:`~manager.store.chats.Chats.move`).

        Raises:
            StoreError: the store could not write it (nothing changed).
        """
        if old_chat_id == new_chat_id:
            return 0
        async with self._live.lock:  # no poll writes a row between the store and memory
            # A cancelled row owns nothing: the old chat's live copy takes its place.
            done = await self._store.chats.move(old_chat_id, new_chat_id,
                                                giving_way={TorrentState.CANCELLED.value})
            changed = {record.id: record for record in done.moved + done.stayed}
            for live in self._live:
                if (record := changed.get(live.record.id)) is not None:
                    live.record = record
        if done.moved:
            log.info("chat %s is now chat %s: its %d download(s) and their news follow it",
                     old_chat_id, new_chat_id, len(done.moved))
        if done.replaced:
            log.info("chat %s's cancelled row(s) %s gave way to the same torrent(s) from chat %s",
                     new_chat_id, ", ".join(f"#{i}" for i in done.replaced), old_chat_id)
        if done.stayed:
            log.info("download(s) %s stay with chat %s: chat %s lists the same torrent(s)",
                     ", ".join(f"#{record.id}" for record in done.stayed), old_chat_id,
                     new_chat_id)
        return len(done.moved)

    async def moves(self) -> dict[int, int]:
        """Every chat Telegram moved: old chat id → new chat id.

        Raises:
            StoreError: the store could not be read.
        """
        return await self._store.chats.moves()
