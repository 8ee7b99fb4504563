"""Files sent to a chat by the node that has them.

A download's files are on the disk of the node that holds it, and only that node can send
them into a chat; the front, which receives the press of "Send", asks it (the ``send`` and
``stop-send`` commands of :mod:`manager.nodes.routing`). The manager knows nothing of
Telegram: the node's sends are a :class:`SendDesk` the supervisor gives it (the bot's, see
:mod:`bot.senddesk`), or none on a node without a token.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["SendDesk"]


class SendDesk(Protocol):
    """Sends this node's finished downloads into chats."""

    async def send(self, download_id: int, chat_id: int, number: int | None,
                   reply_to: int | None) -> str:
        """Start sending a download's files into its chat: every chosen file whole on disk,
        or only file ``number`` (1-based, as the chat lists them); the sentence for the
        user.

        Raises:
            InvalidState: nothing can be sent now (not finished, not on disk, already
                being sent); ``str()`` says why.
            DownloadNotFound: no such download in the chat.
        """
        ...

    def stop(self, chat_id: int, download_id: int) -> bool:
        """Stop this download's send to the chat; False when none is under way."""
        ...
