"""A node's own sends: the files of its downloads, sent into a chat when the front asks.

With several nodes, a finished download's files are on the disk of the node that holds it,
and the front (the one node that receives Telegram's updates) cannot read them. When a user
presses "Send" on the front, the front asks that node
(:meth:`manager.TorrentManager.send_on_owner`), and the node sends them with this desk: a
bot of its own that receives nothing (no updates, no handlers), with the same
:class:`~bot.delivery.Deliveries` as the front's (parts, retries, the status message and
its Stop button, whose press the front passes back here) and the same pacing, whose turns
every node shares (:mod:`bot.pacer`).

Its bot is started at its first send (``getMe``), so that a node that cannot reach
Telegram still downloads and seeds, and says so only to the user who asks for a send.
"""

from __future__ import annotations

import asyncio
import logging

from telegram.error import InvalidToken, TelegramError
from telegram.ext import ExtBot

from bot.config import BotConfig
from bot.delivery import Deliveries
from bot.pacer import ChatPacer
from bot.pacing import Priority
from bot.sendable import NothingToSend, SentByItsNode, files_for_send, start_send
from bot.uploads import bot_request
from manager import InvalidState, TorrentManager

__all__ = ["NodeSendDesk"]

log = logging.getLogger(__name__)


class NodeSendDesk:
    """Sends this node's finished downloads into chats (:class:`manager.SendDesk`).

    Parameters:
        config: the bot's settings (the token, the Bot API server, the upload limit).
        manager: this node's downloads.
    """

    def __init__(self, config: BotConfig, manager: TorrentManager) -> None:
        self._manager = manager
        self._bot: ExtBot[Priority] = ExtBot(
            config.token, base_url=f"{config.api_url}/bot",
            base_file_url=f"{config.api_url}/file/bot", request=bot_request(),
            local_mode=config.local_mode, rate_limiter=ChatPacer(take_turn=manager.take_turn))
        self._deliveries = Deliveries(
            self._bot, manager, limit=config.upload_limit, local_mode=config.local_mode,
            edit_interval=config.edit_interval, attempts=config.send_attempts,
            retry_delay=config.send_retry_delay)
        self._ready = asyncio.Lock()
        self._started = False

    async def send(self, download_id: int, chat_id: int, number: int | None,
                   reply_to: int | None) -> str:
        """Start sending the download's files (all, or file ``number``) into the chat, in
        reply to ``reply_to`` (its progress message when None); the sentence for the user.

        Raises:
            InvalidState: nothing can be sent now, or Telegram cannot be reached from here;
                ``str()`` says why.
            DownloadNotFound: no such download in the chat.
        """
        try:
            torrent, outs = await files_for_send(self._manager, download_id, chat_id, number)
            await self._start()
            return start_send(self._deliveries, chat_id, torrent, outs,
                              reply_to if reply_to is not None else torrent.message_id)
        except NothingToSend as refused:
            raise InvalidState(str(refused)) from None
        except SentByItsNode as moved:  # taken over by another node meanwhile
            raise InvalidState(f"#{download_id} is {moved} now; press Send again") from None

    def stop(self, chat_id: int, download_id: int) -> bool:
        """Stop this download's send to the chat; False when none is under way here."""
        return self._deliveries.cancel(chat_id, download_id)

    async def close(self) -> None:
        """Stop the sends under way (their status messages say so) and close the bot's
        connections."""
        await self._deliveries.close()
        if self._started:
            self._started = False
            await self._bot.shutdown()

    async def _start(self) -> None:
        """Start the bot once (``getMe``).

        Raises:
            NothingToSend: Telegram cannot be reached from this node, or refuses the token.
        """
        async with self._ready:
            if self._started:
                return
            try:
                await self._bot.initialize()
            except InvalidToken:
                log.warning("Telegram refuses this node's bot token: it cannot send files")
                raise NothingToSend("This node's bot token is refused, so it cannot send "
                                    "files; ask for a link instead.") from None
            except TelegramError as error:
                log.warning("this node cannot reach Telegram to send files (%s: %s)",
                            type(error).__name__, error.message)
                raise NothingToSend("The node that has these files cannot reach Telegram "
                                    "just now; try again in a moment.") from None
            self._started = True
