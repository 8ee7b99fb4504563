"""ChatOrderedUpdates: updates of one chat are handled in order, different chats side by side.

PTB handles updates one at a time by default. Now that every reply waits for its chat's turn
(:mod:`bot.pacer`: about one message a second), that would let one chat that sends 20
commands hold every other chat's commands for 20 s. Plain ``concurrent_updates(True)`` would
free the other chats but answer one chat's commands out of order (``/torrent a`` then
``/torrent b`` must reply a then b). So: one lock per chat, concurrency across chats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

__all__ = ["ChatOrderedUpdates"]


class ChatOrderedUpdates(BaseUpdateProcessor):
    """An update processor that serialises per chat (see the module docstring).

    Parameters:
        max_concurrent_updates: updates handled (or waiting for their chat) at once; PTB's
            semaphore, so it is large: a flooding chat's waiting updates hold slots too.
    """

    def __init__(self, max_concurrent_updates: int = 1024) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int | None, asyncio.Lock] = {}
        self._users: dict[int | None, int] = {}

    async def do_process_update(self, update: object,
                                coroutine: Awaitable[Any]) -> None:
        """Run ``coroutine`` once the earlier updates of the same chat are done."""
        chat = update.effective_chat if isinstance(update, Update) else None
        key = chat.id if chat is not None else None
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[key] -= 1
            if not self._users[key]:  # nobody else waits: forget the chat
                del self._users[key], self._locks[key]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""
