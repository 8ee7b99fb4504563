"""The bot's rules, told to the Mini App: who sees a chat's downloads, who may change one.

The Mini App shows a user exactly what the bot would show them in that chat, so it asks the
bot's own gate (:class:`bot.auth.AuthGate`: the allowed users, and the allowed groups) and
group rule (:class:`bot.rights.GroupRights`: a download's adder and the chat's admins may
act). One thing the bot never needs to ask: whether the user is in the group. In a group,
Telegram only delivers messages from its members; a page may be opened by anyone who
writes the link, so membership is asked of Telegram (``getChatMember``), remembered for a
minute, and refused when Telegram cannot say (fail closed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from telegram import Bot
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot.auth import AuthGate
from bot.rights import GroupRights

__all__ = ["MEMBERS_TTL", "WebAppRights"]

log = logging.getLogger(__name__)

MEMBERS_TTL = 60.0
"""Seconds a user's membership of a group is trusted before Telegram is asked again."""

_MAX_REMEMBERED = 10_000
_IN_CHAT = (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER)


class WebAppRights:
    """The chat rules of :class:`web.miniapp.ChatRights`, answered by the bot.

    Parameters:
        bot: asks Telegram for a group's title and a user's membership.
        gate: the allowed users and chats.
        rights: a group's admins.
        clock: monotonic clock (injected by tests).
    """

    def __init__(self, bot: Bot, gate: AuthGate, rights: GroupRights, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._bot = bot
        self._gate = gate
        self._rights = rights
        self._clock = clock
        self._members: dict[tuple[int, int], float] = {}

    async def open_chat(self, user_id: int, chat_id: int) -> str:
        """The chat's title, when ``user_id`` may see its downloads.

        Raises:
            PermissionError: not an allowed user, not a chat the bot serves, or (in a
                group) not one of its members; the message says which.
        """
        private = chat_id == user_id
        if not self._gate.allows(user_id, chat_id, private=private):
            raise PermissionError(f"You may not use this bot here (your id is {user_id}); "
                                  "ask its owner to allow you.")
        if private:
            return "Your downloads"
        if not await self._is_member(user_id, chat_id):
            raise PermissionError("Only the members of that group see its downloads.")
        return "The group's downloads"

    async def may_act(self, user_id: int, chat_id: int, adder_id: int) -> bool:
        """The bot's group rule (:mod:`bot.rights`): in a private chat always; in a group,
        the download's adder and the chat's admins (nobody else when Telegram cannot say)."""
        if user_id in (chat_id, adder_id):  # their private chat, or their download
            return True
        admins = await self._rights.admins(chat_id)
        return admins is not None and user_id in admins

    async def _is_member(self, user_id: int, chat_id: int) -> bool:
        """Whether the user is in the group; False when Telegram cannot say (only a
        yes is remembered: a refusal is asked again, so a new member gets in at once)."""
        now = self._clock()
        until = self._members.get((chat_id, user_id))
        if until is not None and now < until:
            return True
        try:
            member = await self._bot.get_chat_member(chat_id, user_id)
        except TelegramError as error:
            log.info("could not check that user %s is in chat %s: %s", user_id, chat_id,
                     error.message)
            return False
        if member.status not in _IN_CHAT and not getattr(member, "is_member", False):
            return False
        if len(self._members) >= _MAX_REMEMBERED:
            self._members.clear()
        self._members[(chat_id, user_id)] = now + MEMBERS_TTL
        return True
