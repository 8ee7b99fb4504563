"""The front's duties: while this node holds the front lock, it runs the Telegram bot, reads
the feeds and follows the other nodes' downloads (their progress messages); when it loses
the lock, it stops them at once and waits to be the front again
(:class:`~manager.store.front.FrontLock`). Each round of being the front gets a new
bot: python-telegram-bot's Application does not start again after it stopped.

Nodes sharing one PostgreSQL database are one bot: only the front receives the updates and
sends the news, so nothing is answered or told twice. The Mini App of this node asks the
front's bot for a chat's rules through :class:`FrontDuty`; while another node is the front,
it refuses with a sentence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from telegram.error import TelegramError

from bot import BotApiUnusable, EmbeddedBot, WebhookUnavailable
from manager import FrontLock, TorrentManager
from supervisor.exits import EXIT_ERROR, EXIT_USAGE
from web.miniapp import ChatRights, ChatSender

__all__ = ["FrontDuty"]

log = logging.getLogger(__name__)

_TRY_AGAIN_S = 5.0
"""Seconds before a node that took over as the front, but could not start its bot, tries
to be the front again (another node may take it meanwhile)."""

_ELSEWHERE = "the bot runs on another node just now: open the app again from the bot"


class FrontDuty:
    """Runs the bot (when there is one) and the feeds while this node is the front.

    Parameters:
        lock: the database's front lock.
        manager: reads the feeds.
        make_bot: a new bot, ready to start; None in local mode (no token: feeds only).
    """

    def __init__(self, lock: FrontLock, manager: TorrentManager,
                 make_bot: Callable[[], EmbeddedBot] | None) -> None:
        self._lock = lock
        self._manager = manager
        self._make_bot = make_bot
        self._bot: EmbeddedBot | None = None
        self._rights: ChatRights | None = None
        self._sender: ChatSender | None = None
        self.settled = asyncio.Event()
        """Set once the first try is over: this node is the front (its bot running), or
        another node is."""

    async def run(self) -> int:
        """Be the front whenever the lock allows, until cancelled.

        Returns:
            An exit code, only when the bot cannot start: at all (the token refused), or at
            the first try (see :mod:`supervisor.exits`). A node that takes over as the front
            and cannot reach Telegram lets the lock go and tries again: its downloads go on.
        """
        at_start = True
        while True:
            if not await self._lock.try_acquire():
                self.settled.set()
                at_start = False
                await self._lock.acquire()
            log.info("this node is the front: it talks to Telegram and reads the feeds")
            if self._make_bot is not None:
                code = await self._start_bot(self._make_bot())
                if code == EXIT_USAGE or (code is not None and at_start):
                    return code
                if code is not None:
                    at_start = False
                    await self._lock.release()
                    await asyncio.sleep(_TRY_AGAIN_S)  # Telegram says nothing of its return
                    continue
            at_start = False
            self._manager.read_feeds()
            if self._make_bot is not None:  # their progress messages; none without a bot
                self._manager.follow_other_nodes()
            self.settled.set()
            await self._lock.lost(self._manager.notices_stored_elsewhere)
            await self._step_down(flush=False)  # another node may be the front already

    async def _start_bot(self, bot: EmbeddedBot) -> int | None:
        try:
            await bot.start()
        except (BotApiUnusable, WebhookUnavailable) as error:
            log.critical("the Telegram bot cannot start: %s; ariabot exits %d "
                         "(restarting cannot help)", error, EXIT_USAGE)
            return EXIT_USAGE
        except TelegramError as error:
            log.critical("the Telegram bot cannot start (%s: %s); check "
                         "ARIABOT_TELEGRAM_TOKEN and ARIABOT_TELEGRAM_API_URL",
                         type(error).__name__, error)
            return EXIT_ERROR
        self._bot, self._rights, self._sender = bot, bot.web_rights(), bot.web_sender()
        return None

    async def _step_down(self, *, flush: bool = True) -> None:
        bot, self._bot, self._rights, self._sender = self._bot, None, None, None
        if bot is not None:
            await bot.stop(flush=flush)
            log.info("this node no longer talks to Telegram")
        await self._manager.stop_reading_feeds()
        await self._manager.stop_following_other_nodes()

    async def stop(self) -> None:
        """Stop the bot and the feeds, and let go of the lock (another node takes over)."""
        await self._step_down()
        await self._lock.release()

    # --- what the Mini App asks of the bot (web.miniapp.rights) ------------------------------

    async def open_chat(self, user_id: int, chat_id: int) -> str:
        """The front's answer (:class:`~web.miniapp.rights.ChatRights`).

        Raises:
            PermissionError: the user may not see the chat, or this node is not the front.
        """
        if self._rights is None:
            raise PermissionError(_ELSEWHERE)
        return await self._rights.open_chat(user_id, chat_id)

    async def may_act(self, user_id: int, chat_id: int, adder_id: int) -> bool:
        """The front's answer; no while this node is not the front."""
        return self._rights is not None and await self._rights.may_act(user_id, chat_id,
                                                                         adder_id)

    async def send_to_chat(self, chat_id: int, download_id: int) -> str:
        """Send through the front's bot (:class:`~web.miniapp.rights.ChatSender`).

        Raises:
            ValueError: nothing can be sent now (or this node is not the front).
            manager.DownloadNotFound: no such download in the chat.
        """
        if self._sender is None:
            raise ValueError(_ELSEWHERE)
        return await self._sender.send_to_chat(chat_id, download_id)
