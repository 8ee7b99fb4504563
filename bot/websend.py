"""The Mini App's "Send to chat": the bot sends a finished download's files to its chat,
as the Send button of its completion message does (:mod:`bot.sendable`), with the same
status message, part by part, and the same Stop button."""

from __future__ import annotations

from bot.delivery import Deliveries
from bot.sendable import NothingToSend, files_to_send
from manager import TorrentManager

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
                being sent); ``str()`` says why.
            DownloadNotFound: no such download in the chat.
        """
        try:
            torrent, outs = await files_to_send(self._manager, download_id, chat_id)
        except NothingToSend as refused:
            raise ValueError(str(refused)) from None
        title = torrent.name or torrent.info_hash[:16]
        if not self._deliveries.start(chat_id, torrent.id, title, outs, torrent.message_id):
            raise ValueError(f"#{torrent.id} is already being sent here; its status message "
                             "shows how far.")
        count = f"{len(outs)} file" + ("s" if len(outs) != 1 else "")
        return f"Sending #{torrent.id} ({count}) to the chat."
