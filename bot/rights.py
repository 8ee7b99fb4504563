"""Who may act on a download in a group: the user who added it, and the chat's administrators.

In a private chat there is only its user, so nothing is checked. In a group, pausing,
resuming, cancelling (with or without its files) and choosing files are for the user who
added the download and for the chat's administrators (its creator included): members share
the chat's downloads, not the right to stop each other's. Everyone may still look (/status,
/files <id>, Refresh) and fetch a finished file.

The administrators come from Telegram (``getChatAdministrators``), remembered per chat for
:data:`ADMINS_TTL` seconds, so a burst of button presses costs one lookup. When Telegram
cannot be asked, only the adder may act (fail closed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from telegram import Bot, Chat
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError

from bot.context import BotContext
from bot.errors import ActionRefused
from manager import Torrent

__all__ = ["ADMINS_TTL", "GroupRights", "ensure_may_act"]

log = logging.getLogger(__name__)

ADMINS_TTL = 60.0
"""Seconds a chat's administrator list is trusted before Telegram is asked again."""

_MAX_CHATS = 1000
_ADMIN_STATUSES = (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)


class GroupRights:
    """Checks that a user may act on a download, asking Telegram for a group's admins.

    Parameters:
        bot: the bot that asks ``getChatAdministrators``.
        ttl: seconds an administrator list is kept.
        clock: monotonic clock (injected by tests).
    """

    def __init__(self, bot: Bot, *, ttl: float = ADMINS_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._bot = bot
        self._ttl = ttl
        self._clock = clock
        self._admins: dict[int, tuple[float, frozenset[int]]] = {}

    async def check(self, chat: Chat, user_id: int, torrent: Torrent) -> None:
        """Return when ``user_id`` may change ``torrent`` in ``chat``.

        Raises:
            ActionRefused: a group member who neither added it nor administers the chat
                (the message says who may).
        """
        if chat.type == ChatType.PRIVATE or user_id == torrent.user_id:
            return
        admins = await self.admins(chat.id)
        if admins is None:
            raise ActionRefused(f"Only the user who added #{torrent.id} or an admin of this "
                                "chat can do that, and Telegram did not say who the admins "
                                "are just now; try again in a moment.")
        if user_id not in admins:
            raise ActionRefused(f"Only the user who added #{torrent.id} or an admin of this "
                                "chat can do that.")

    async def admins(self, chat_id: int) -> frozenset[int] | None:
        """The user ids of a group's creator and administrators; None if Telegram failed."""
        now = self._clock()
        cached = self._admins.get(chat_id)
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            members = await self._bot.get_chat_administrators(chat_id)
        except TelegramError as error:
            log.warning("could not get the administrators of chat %s: %s", chat_id,
                        error.message)
            return None
        admins = frozenset(m.user.id for m in members if m.status in _ADMIN_STATUSES)
        if len(self._admins) >= _MAX_CHATS:
            self._admins = {k: v for k, v in self._admins.items() if v[0] > now}
            if len(self._admins) >= _MAX_CHATS:
                self._admins.clear()
        self._admins[chat_id] = (now + self._ttl, admins)
        return admins


async def ensure_may_act(context: BotContext, chat: Chat, user_id: int,
                         download_id: int) -> None:
    """Return when ``user_id`` may pause, resume, cancel or choose the files of
    ``download_id`` in ``chat`` (see the module's rule).

    Raises:
        ActionRefused: in a group, neither its adder nor an admin.
        DownloadNotFound: no such download in this chat.
    """
    if chat.type == ChatType.PRIVATE:
        return
    torrent = await context.manager.get(download_id, chat.id)
    await context.rights.check(chat, user_id, torrent)
