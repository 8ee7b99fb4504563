"""What the Mini App needs of the bot: a chat's rules, and sending into a chat.

The rules are the bot's (:mod:`bot.auth` for who may use it where, :mod:`bot.rights` for who
may act on a download in a group), so the page shows exactly what the bot would show that
user in that chat. Only plain values cross this line: the bot implements it without knowing
the web layer.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ChatRights", "ChatSender"]


class ChatRights(Protocol):
    """A chat's rules for one user."""

    async def open_chat(self, user_id: int, chat_id: int) -> str:
        """The chat's title for the page, when ``user_id`` may see its downloads.

        Raises:
            PermissionError: they may not; ``str()`` says why, for the user.
        """
        ...

    async def may_act(self, user_id: int, chat_id: int, adder_id: int) -> bool:
        """Whether ``user_id`` may pause, resume, cancel or choose the files of a download
        that ``adder_id`` added in the chat (its adder and a group's admins may)."""
        ...


class ChatSender(Protocol):
    """Sends a finished download's files into its chat, as the bot's Send button does."""

    async def send_to_chat(self, chat_id: int, download_id: int) -> str:
        """Start sending; returns the sentence for the user.

        Raises:
            ValueError: nothing can be sent now; ``str()`` says why.
            manager.DownloadNotFound: no such download in the chat.
        """
        ...
