"""The Mini App's "Send to chat": the bot sends a finished download's files to its chat,
as the Send button of its completion message does (:mod:`bot.sendable`), with the same
status message, part by part, and the same Stop button. A download another node holds is
sent by that node (:meth:`manager.TorrentManager.send_on_owner`)."""

from __future__ import annotations

from bot.delivery import Deliveries
from bot.sendable import NothingToSend, SentByItsNode, files_for_send, start_send
from manager import InvalidState, OnAnotherNode, TorrentManager

__all__ = ["WebAppSender"]


class WebAppSender:
    """Sends a chat's finished download into that chat (:class:`web.miniapp.ChatSender`).

    Parameters:
        manager: the downloads.
        deliveries: the bot's sends (one per download and chat at a time).
    """

    def __init__(self, manager: TorrentManager, deliveries: Deliveries) -> None:
        self._manager = manager
        self._deliveries = deliveries

    async def send_to_chat(self, chat_id: int, download_id: int) -> str:
        """Start sending; the sentence for the user.

        Raises:
            ValueError: nothing can be sent now (not finished, files gone, already
                being sent, the node that has them offline); ``str()`` says why.
            DownloadNotFound: no such download in the chat.
        """
        try:
            torrent, outs = await files_for_send(self._manager, download_id, chat_id)
            return start_send(self._deliveries, chat_id, torrent, outs, torrent.message_id)
        except NothingToSend as refused:
            raise ValueError(str(refused)) from None
        except SentByItsNode:
            try:
                return await self._manager.send_on_owner(download_id, chat_id, 0)
            except (InvalidState, OnAnotherNode) as refused:  # the other node's words
                raise ValueError(str(refused)) from None
