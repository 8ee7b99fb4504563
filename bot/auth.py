"""The allow-list gate, run before every handler (``TypeHandler(Update, gate)``, group -1).

An allowed user in an allowed chat passes through: the chats of ``allowed_chats`` when it is
set, else the user's private chat only (a group must be listed to be served). Anyone else
gets one refusal that shows their user id (or the chat's id), at most once per
``refusal_interval`` per user, and then :class:`~telegram.ext.ApplicationHandlerStop` ends
the update: no other handler runs, whatever it was (command, text, document, button press).
A button press is always answered (with the refusal as its alert), so the client does not
spin. Who may act on which download inside an allowed group is :mod:`bot.rights`' job.

A group Telegram upgraded to a supergroup is served under its new id where the old one was
allowed (:mod:`bot.chatmoves`). Telegram's service messages of the upgrade pass the gate when
the group was allowed (or is the admin chat), whoever upgraded it, so that the move is
followed; in any other chat they end silently (nobody talked to the bot there).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.chatmoves import MovedChats
from bot.config import BotConfig
from bot.context import BotContext
from bot.views import refusal_text

__all__ = ["AuthGate"]

log = logging.getLogger(__name__)

_MAX_REMEMBERED = 10_000


class AuthGate:
    """Lets allowed users in allowed chats through; refuses everyone else once in a while.

    Parameters:
        config: the allow-lists and the refusal interval.
        clock: monotonic clock (injected by tests).
        moved: the chats Telegram moved (shared with the news, which learns them).
    """

    def __init__(self, config: BotConfig, clock: Callable[[], float] = time.monotonic, *,
                 moved: MovedChats | None = None) -> None:
        self._users = config.allowed_users
        self._chats = config.allowed_chats
        self._followed = self._chats | (frozenset() if config.admin_chat is None
                                        else {config.admin_chat})
        """Chats whose upgrade to a supergroup the bot follows."""
        self._moved = moved if moved is not None else MovedChats()
        self._interval = config.refusal_interval
        self._clock = clock
        self._refused_at: dict[int, float] = {}
        self.refusals = 0
        """Refusal messages (or alerts) sent, for tests."""

    def allows(self, user_id: int, chat_id: int | None, *, private: bool) -> bool:
        """Whether this user may use the bot in this chat.

        With an allowed-chats list, only its chats (and the supergroup Telegram upgraded one
        of them to, :mod:`bot.chatmoves`); without one, only private chats: a
        group's members all see what the bot posts there (names, progress, files), so a
        group is the owner's choice to make (by listing it), not any allowed member's.
        """
        if user_id not in self._users:
            return False
        if chat_id is None:
            return True  # nothing is posted anywhere but to this user
        if self._chats:
            return self._moved.came_from(chat_id, self._chats)
        return private

    def log_startup(self) -> None:
        """Say at start who may use the bot, and how to allow the first user."""
        if not self._users:
            log.warning("ARIABOT_ALLOWED_USERS is empty: the bot refuses everyone. Send it a "
                        "message; its answer shows your Telegram user id. Then set "
                        "ARIABOT_ALLOWED_USERS=<that id> and restart ariabot.")
        else:
            log.info("the bot answers %d allowed user(s)%s", len(self._users),
                     f" in {len(self._chats)} allowed chat(s)" if self._chats
                     else " in their private chats (ARIABOT_ALLOWED_CHATS lists groups)")

    async def __call__(self, update: Update, context: BotContext) -> None:
        """The gate. Raises ApplicationHandlerStop for everyone not allowed."""
        user = update.effective_user
        chat = update.effective_chat
        chat_id = chat.id if chat is not None else None
        if (old := _upgraded_from(update.effective_message, chat_id)) is not None:
            if self._moved.came_from(old, self._followed):
                return  # Telegram's word: bot.handlers.migration follows it
            raise ApplicationHandlerStop
        if user is None:
            raise ApplicationHandlerStop  # channel posts and the like: nobody to answer
        private = chat is None or chat.type == ChatType.PRIVATE
        if self.allows(user.id, chat_id, private=private):
            return
        due = self._due(user.id)
        if due:
            log.info("refused Telegram user %s in chat %s (not in the allow-list)", user.id,
                     chat_id)
        text = refusal_text(user.id, chat_id, chat_refused=user.id in self._users)
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text if due else None, show_alert=due)
                self.refusals += due
            elif due and update.effective_message is not None:
                await update.effective_message.reply_text(text)
                self.refusals += 1
        except TelegramError as error:
            log.info("could not refuse user %s: %s", user.id, error.message)
        raise ApplicationHandlerStop

    def _due(self, user_id: int) -> bool:
        now = self._clock()
        last = self._refused_at.get(user_id)
        if last is not None and now - last < self._interval:
            return False
        if len(self._refused_at) >= _MAX_REMEMBERED:
            horizon = now - self._interval
            self._refused_at = {k: v for k, v in self._refused_at.items() if v >= horizon}
        self._refused_at[user_id] = now
        return True


def _upgraded_from(message: Message | None, chat_id: int | None) -> int | None:
    """The old id of the group a service message (in ``chat_id``) says was upgraded."""
    if message is None:
        return None
    if message.migrate_to_chat_id is not None:
        return chat_id
    return message.migrate_from_chat_id
