"""A chat that changed its id: Telegram upgraded a group to a supergroup.

Telegram then answers every request to the old id with the new one
(``migrate_to_chat_id``); nothing can be sent or edited there any more. The chat's
downloads, mirrors and pending notices follow it, so that their news and edits reach the
users where they are now; the old progress messages are out of reach and forgotten.
"""

from __future__ import annotations

import logging

from manager.live import LiveDownloads
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
        """Give the downloads of ``old_chat_id`` to ``new_chat_id``; returns how many there
        are now. Moving a chat twice moves nothing the second time.

        Raises:
            StoreError: the store could not write it (nothing changed).
        """
        if old_chat_id == new_chat_id:
            return 0
        async with self._live.lock:  # no poll writes a row between the store and memory
            moved = {record.id: record for record in
                     await self._store.move_chat(old_chat_id, new_chat_id)}
            for live in self._live:
                if (record := moved.get(live.record.id)) is not None:
                    live.record = record
        log.info("chat %s is now chat %s: its %d download(s) and their news follow it",
                 old_chat_id, new_chat_id, len(moved))
        return len(moved)
