"""The bot's first call, ``getMe``: answers that no restart can fix become one clear error.

``Application.initialize()`` calls ``getMe``. Two of its failures need a human, not a retry:
the token is refused (PTB's InvalidToken: Telegram answers 401 for a token of the right shape
that it does not know), or the server at ``ARIABOT_TELEGRAM_API_URL`` answers, but not like a
Bot API server (not JSON, or JSON without the bot's fields: PTB then fails deep inside
``User.de_json`` with a TypeError or KeyError). Both become :class:`BotApiUnusable` with a
line that says what to fix; network trouble stays a :class:`telegram.error.NetworkError`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

__all__ = ["BotApiUnusable", "initialize"]

TELEGRAM_API = "https://api.telegram.org"
_PAYLOAD_LOGGER = "telegram.request.BaseRequest"
_PAYLOAD_DUMP = "Can not load invalid JSON data"


class BotApiUnusable(RuntimeError):
    """``getMe`` showed that the bot cannot work as configured; the message says what to fix.

    It never contains the token.
    """


class _NoPayloadDump(logging.Filter):
    """PTB logs a non-JSON answer whole, with a traceback; :func:`initialize` says it in one
    line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_PAYLOAD_DUMP)


@contextlib.contextmanager
def _quiet_payload_dump() -> Iterator[None]:
    logger = logging.getLogger(_PAYLOAD_LOGGER)
    quiet = _NoPayloadDump()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


async def initialize(application: Application[Any, Any, Any, Any, Any, Any],
                     api_url: str) -> None:
    """``application.initialize()``, with the answers that need a human made clear.

    Parameters:
        application: the bot's Application, not initialised yet.
        api_url: the configured Bot API root, named in the messages.

    Raises:
        BotApiUnusable: the token was refused, or the answer to ``getMe`` is not a bot.
        telegram.error.TelegramError: anything else (a NetworkError may pass).
    """
    try:
        with _quiet_payload_dump():
            await application.initialize()
    except InvalidToken as error:
        # PTB's own message repeats the token; the server's words are in its cause.
        cause = error.__cause__
        said = cause.message if isinstance(cause, TelegramError) else "refused"
        where = "" if api_url == TELEGRAM_API else " (and check ARIABOT_TELEGRAM_API_URL)"
        raise BotApiUnusable(
            f"Telegram rejected the token ({said}): copy it again from @BotFather "
            f"(/mybots → API Token) into ARIABOT_TELEGRAM_TOKEN{where}") from None
    except KeyError:
        raise _malformed(api_url, "no result") from None
    except (TypeError, ValueError, AttributeError):
        raise _malformed(api_url, "its result is not a bot") from None
    except TelegramError as error:
        if type(error) is not TelegramError:
            raise
        # A bare TelegramError is PTB's "Invalid server response": a 2xx that is not JSON.
        raise _malformed(api_url, "not JSON") from None


def _malformed(api_url: str, what: str) -> BotApiUnusable:
    return BotApiUnusable(
        f"the Bot API server at {api_url} answered getMe with something that is not a Bot "
        f"API answer ({what}): check ARIABOT_TELEGRAM_API_URL (the server root, such as "
        f"{TELEGRAM_API})")
