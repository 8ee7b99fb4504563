"""Groups Telegram upgraded to supergroups, as the bot follows them.

When Telegram upgrades a group, the group's id stops working and the supergroup's takes its
place. Users expect their group to go on working, so where the old id was allowed (in
``ARIABOT_ALLOWED_CHATS``) the new one is served, and an admin chat that moved gets the
alerts in its new place. Only Telegram's word counts (its service messages
``migrate_to_chat_id``/``migrate_from_chat_id``, or its ``ChatMigrated`` answer to a request
naming the old id), never what a user writes, and only a move *from* an allowed chat lets a
new chat in: the owner's list stays the root of every permission. The manager stores each move
(:meth:`manager.TorrentManager.move_chat`), so it outlives restarts; this object is its copy
in memory, filled at start and after each stored move.
"""

from __future__ import annotations

from collections.abc import Container, Mapping

__all__ = ["MovedChats"]


class MovedChats:
    """Old chat id → new chat id, for every chat Telegram moved (as stored)."""

    def __init__(self) -> None:
        self._to: dict[int, int] = {}
        self._from: dict[int, int] = {}

    def load(self, moves: Mapping[int, int]) -> None:
        """Take the stored moves (at start)."""
        for old, new in moves.items():
            self.learn(old, new)

    def learn(self, old_chat_id: int, new_chat_id: int) -> bool:
        """Record a stored move; True when it was not known yet (say it once)."""
        if old_chat_id == new_chat_id or self._to.get(old_chat_id) == new_chat_id:
            return False
        self._to[old_chat_id] = new_chat_id
        self._from[new_chat_id] = old_chat_id
        return True

    def current(self, chat_id: int) -> int:
        """Where the chat ``chat_id`` is now (itself when it never moved)."""
        seen = {chat_id}
        while (moved := self._to.get(chat_id)) is not None and moved not in seen:
            seen.add(moved)
            chat_id = moved
        return chat_id

    def came_from(self, chat_id: int, chats: Container[int]) -> bool:
        """Whether ``chat_id`` is one of ``chats``, or where one of them moved."""
        seen: set[int] = set()
        while chat_id not in seen:
            if chat_id in chats:
                return True
            seen.add(chat_id)
            previous = self._from.get(chat_id)
            if previous is None:
                return False
            chat_id = previous
        return False
