"""How the bot's background messages reach Telegram, and how Telegram's refusals are read.

:class:`Sender` is the one seam between the progress board / news and the Bot API, so unit
tests drive both with a fake. The helpers classify PTB's errors the same way everywhere:
"not modified" is a success, a vanished message or chat is given up, ``RetryAfter`` is read
in seconds whichever type PTB gives. :class:`BotSender` tags each request with its
:class:`~bot.pacing.Priority` (news are new messages, the board's are edits) for the
:class:`~bot.pacer.ChatPacer` that paces every chat.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

import httpx
from telegram import InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ExtBot

from bot.pacing import Priority

__all__ = ["BotSender", "Sender", "answer_lost", "is_gone", "is_not_modified", "retry_seconds"]

_GONE = (
    "message to edit not found",
    "message can't be edited",
    "message_id_invalid",
    "chat not found",
    "have no rights to send",
    "not enough rights",
)
"""Telegram's words for a message or chat the bot can no longer write to."""


def is_not_modified(error: BadRequest) -> bool:
    """Telegram's answer to an edit that changes nothing (a success for us)."""
    return "message is not modified" in error.message.lower()


def is_gone(error: BadRequest) -> bool:
    """The message was deleted or the chat closed to the bot: retrying cannot help."""
    text = error.message.lower()
    return any(needle in text for needle in _GONE)


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors that happen before a request leaves: Telegram cannot have it."""


def answer_lost(error: TelegramError) -> bool:
    """The request may have reached Telegram but its answer did not come back (a time-out,
    a connection dropped after sending): what it asked may have been done. ariabot sends it
    again (at least once) and logs that it may be duplicated."""
    if not isinstance(error, NetworkError) or isinstance(error, BadRequest):
        return False
    cause = error.__cause__
    if isinstance(cause, _NOT_SENT):
        return False
    return isinstance(error, TimedOut) or isinstance(cause, httpx.TransportError)


def retry_seconds(error: RetryAfter) -> float:
    """``retry_after`` in seconds, whether PTB gives an int or a timedelta."""
    value: Any = error.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class Sender(Protocol):
    """How the board and the news talk to Telegram (a fake in unit tests)."""

    async def send(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
                   reply_to: int | None = None) -> int:
        """Send an HTML message; return its message id."""
        ...

    async def edit(self, chat_id: int, message_id: int, text: str,
                   markup: InlineKeyboardMarkup | None) -> None:
        """Replace an HTML message's text and keyboard."""
        ...


class BotSender:
    """:class:`Sender` on a real bot (HTML, no link previews): new messages are news (sent
    first), edits are progress (sent last); see :mod:`bot.pacing`."""

    _NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

    def __init__(self, bot: ExtBot[Any]) -> None:
        self._bot = bot

    async def send(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
                   reply_to: int | None = None) -> int:
        """Send an HTML message; return its message id."""
        reply = (ReplyParameters(reply_to, allow_sending_without_reply=True)
                 if reply_to is not None else None)
        message = await self._bot.send_message(
            chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup,
            link_preview_options=self._NO_PREVIEW, reply_parameters=reply,
            rate_limit_args=Priority.NEWS,
        )
        return message.message_id

    async def edit(self, chat_id: int, message_id: int, text: str,
                   markup: InlineKeyboardMarkup | None) -> None:
        """Replace an HTML message's text and keyboard."""
        await self._bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML,
            reply_markup=markup, link_preview_options=self._NO_PREVIEW,
            rate_limit_args=Priority.EDIT,
        )
