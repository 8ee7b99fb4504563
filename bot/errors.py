"""The one place where errors become what a user reads.

:func:`user_text` maps the manager's :class:`~manager.ManagerError` tree to short sentences;
:class:`ActionRefused` is the bot's own refusal (e.g. not this user's download);
:func:`answers_manager_errors` turns both into the answer of a handler; :func:`on_error` is
the application's error handler for everything else: it logs the exception and tells the
user only that something went wrong (no stack trace, no secret, no path). Telegram being
unreachable (a network error, a lost answer, a 5xx, a 429 the pacer gave up on) is expected,
not a bug: one warning line, no traceback, and no "something went wrong" sent after it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import CallbackQuery, Update
from telegram.error import BadRequest, ChatMigrated, NetworkError, RetryAfter, TelegramError

from bot.context import BotContext
from manager import DownloadNotFound, ManagerError
from manager import user_text as manager_user_text

__all__ = [
    "SOMETHING_WENT_WRONG",
    "ActionRefused",
    "answer",
    "answers_manager_errors",
    "on_error",
    "user_text",
]

log = logging.getLogger(__name__)

SOMETHING_WENT_WRONG = "Sorry, something went wrong. Please try again later."


class ActionRefused(Exception):
    """The bot refuses what a user asked (the manager was not asked); ``str()`` says why,
    in words for that user."""


_Handler = TypeVar("_Handler", bound=Callable[[Update, BotContext], Awaitable[None]])


def user_text(error: ManagerError) -> str:
    """What to tell the user about a manager error (:func:`manager.user_text`); a missing
    download also points to the command that lists the chat's."""
    if isinstance(error, DownloadNotFound):
        text = f"{error} in this chat; /status lists this chat's downloads."
        return text[:1].upper() + text[1:]
    return manager_user_text(error)


def answers_manager_errors(handler: _Handler) -> _Handler:
    """Wrap a handler: a :class:`ManagerError` or :class:`ActionRefused` it raises becomes a
    one-line answer.

    A message gets a reply; a button press gets an alert on the query.
    """

    @functools.wraps(handler)
    async def wrapper(update: Update, context: BotContext) -> None:
        try:
            await handler(update, context)
        except ManagerError as error:
            await tell(update, user_text(error))
        except ActionRefused as error:
            await tell(update, str(error))

    return wrapper  # type: ignore[return-value]


async def answer(query: CallbackQuery, text: str | None = None, *, alert: bool = False) -> None:
    """Answer a button press. Telegram takes one answer per press, and only for a short
    while: a press that waited through a restart, or was answered before a crash and comes
    again, is refused with 400 "query is too old". The press itself was done all the same,
    so that refusal is one log line, not a handler's error."""
    try:
        await query.answer(text, show_alert=alert)
    except BadRequest as error:
        if not _query_gone(error):
            raise
        log.info("a button press could not be answered: %s", error.message)


def _query_gone(error: BadRequest) -> bool:
    """Whether Telegram refused an answer because the press is too old or answered."""
    message = error.message.lower()
    return "query is too old" in message or "query id is invalid" in message


async def tell(update: Update, text: str) -> None:
    """Answer ``update`` with one line: a reply to a message, an alert for a button press."""
    query = update.callback_query
    if query is not None:
        with contextlib.suppress(TelegramError):  # already answered, or too old
            await query.answer(text, show_alert=True)
        return
    message = update.effective_message
    if message is not None:
        await message.reply_text(text)


def _unreachable(error: BaseException | None) -> bool:
    """Whether ``error`` says Telegram did not take a call (timed out, answer lost, 5xx,
    429): expected when Telegram is away. A 400 (``BadRequest``, a NetworkError in PTB)
    means the bot sent something wrong: a bug."""
    return isinstance(error, RetryAfter) or (
        isinstance(error, NetworkError) and not isinstance(error, BadRequest))


def _what(update: object) -> str:
    """What the failed update asked, for the log: its command, or its kind."""
    if not isinstance(update, Update):
        return "an update"
    if update.callback_query is not None:
        return "a button press"
    message = update.effective_message
    text = (message.text or "") if message is not None else ""
    if text.startswith("/"):
        return text.split(maxsplit=1)[0]
    return "a message"


async def on_error(update: object, context: BotContext) -> None:
    """The application's error handler: log the exception, answer "something went wrong";
    Telegram unreachable gets one warning line and no answer (it would not get through); a
    group upgraded meanwhile is followed to its supergroup."""
    error = context.error
    chat = update.effective_chat if isinstance(update, Update) else None
    if isinstance(error, ChatMigrated) and chat is not None:
        # Sent in the group before Telegram upgraded it, answered after: the answer cannot
        # go there any more. The bot follows the group (its downloads and news go to the
        # supergroup); what the handler did stays done.
        log.info("could not answer %s in chat %s: Telegram upgraded it to the supergroup "
                 "%s, which the bot follows", _what(update), chat.id, error.new_chat_id)
        await context.board.follow_migration(chat.id, error.new_chat_id)
        return
    if _unreachable(error):
        log.warning("could not answer %s in chat %s, Telegram did not take it: %s: %s",
                    _what(update), chat.id if chat is not None else "-",
                    type(error).__name__, error)
        return
    log.error("error while handling an update: %s", type(error).__name__,
              exc_info=error if error is not None else None)
    if not isinstance(update, Update):
        return
    with contextlib.suppress(TelegramError):
        await tell(update, SOMETHING_WENT_WRONG)
