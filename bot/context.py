"""BotContext: the handlers' typed access to the manager, the settings and the board."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from telegram.ext import CallbackContext, ExtBot

from bot.config import BotConfig
from manager import TorrentManager

if TYPE_CHECKING:
    from bot.chatmoves import MovedChats
    from bot.delivery import Deliveries
    from bot.progress import ProgressBoard
    from bot.rights import GroupRights

__all__ = ["BOARD", "CONFIG", "DELIVERIES", "MANAGER", "MOVED", "RIGHTS", "BotContext"]

MANAGER = "manager"
CONFIG = "config"
BOARD = "board"
RIGHTS = "rights"
DELIVERIES = "deliveries"
MOVED = "moved"
"""Keys of ``bot_data``; :func:`bot.app.build_application` fills them."""


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[str, Any]]):
    """The context every handler gets (set through ``ContextTypes``)."""

    @property
    def manager(self) -> TorrentManager:
        """The torrent manager: the only way to downloads."""
        return cast(TorrentManager, self.bot_data[MANAGER])

    @property
    def config(self) -> BotConfig:
        """The bot's settings."""
        return cast(BotConfig, self.bot_data[CONFIG])

    @property
    def board(self) -> ProgressBoard:
        """The live progress messages."""
        return cast("ProgressBoard", self.bot_data[BOARD])

    @property
    def moved(self) -> MovedChats:
        """The chats Telegram moved to a supergroup (the gate and the news share them)."""
        return cast("MovedChats", self.bot_data[MOVED])

    @property
    def rights(self) -> GroupRights:
        """Who may act on a download in a group (the adder and the chat's admins)."""
        return cast("GroupRights", self.bot_data[RIGHTS])

    @property
    def deliveries(self) -> Deliveries:
        """The jobs that send finished files into chats."""
        return cast("Deliveries", self.bot_data[DELIVERIES])
