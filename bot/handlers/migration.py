"""A group upgraded to a supergroup: Telegram's service message says so in both chats.

Telegram then refuses every request naming the old chat id; following the move as soon as
the service message arrives means the chat's news and edits never meet that refusal (the
news follows it anyway when a request meets it first: :mod:`bot.news`).
"""

from __future__ import annotations

from telegram import Update

from bot.context import BotContext

__all__ = ["on_migration"]


async def on_migration(update: Update, context: BotContext) -> None:
    """``migrate_to_chat_id`` (in the old group) or ``migrate_from_chat_id`` (in the new
    supergroup): the chat's downloads and news move to the new id."""
    message = update.effective_message
    if message is None:
        return
    if message.migrate_to_chat_id is not None:
        old, new = message.chat_id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id is not None:
        old, new = message.migrate_from_chat_id, message.chat_id
    else:
        return
    await context.board.follow_migration(old, new)
