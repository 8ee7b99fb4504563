"""Who asks: Telegram's signed ``initData``, checked on every request of the Mini App.

Telegram signs what it hands a Mini App (the user, when it was opened, the ``startapp``
parameter) with a key derived from the bot's token; the page sends it back as
``Authorization: tma <initData>``. The check (HMAC-SHA256 with the ``WebAppData`` key over
the sorted fields, compared in constant time, then the age from ``auth_date``) is
init-data-py's: it hashes the pairs exactly as received, so a field Telegram adds later does
not break it. The header, not a cookie: a third site cannot make a browser send it.

A ``/web`` login link (for a browser outside Telegram) carries the same kind of data, signed
by the bot with the same key, with a ``login`` nonce: it is good once, for
:data:`LOGIN_MAX_AGE`, and only to be exchanged (:meth:`InitDataCheck.redeem`) for a
session: initData for the same user and chat, newly signed, which the page then sends as
Telegram's. Whoever opens the link after its user finds it used. The used nonces are
remembered in memory, as long as their links would live; a restart forgets them, so a link
made before this process started is refused (its user sends ``/web`` again).

Which chat the page shows is decided here too: the user's private chat, or the group named
by the signed ``startapp`` parameter ``c<chat id>``. Being signed only proves that Telegram
opened a link with that parameter, which anyone can write, so the group's rules are checked
afterwards (:class:`web.miniapp.rights.ChatRights`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from init_data_py import InitData, errors, sign, strip_auth_header, validate_by_hash

__all__ = ["CHAT_PARAM", "LOGIN_FIELD", "LOGIN_MAX_AGE", "InitDataCheck", "NotSigned",
           "Signed"]

CHAT_PARAM = re.compile(r"c(-?[0-9]{1,19})")
"""The ``startapp`` parameter that opens a group's downloads: ``c`` and the chat's id."""

LOGIN_FIELD = "login"
"""The field that makes signed data a one-time login link (its value: a random nonce)."""
LOGIN_MAX_AGE = 600.0
"""Seconds a ``/web`` login link works, at most once."""
_MAX_HEADER = 8192
"""Longer than any initData Telegram sends (a few hundred bytes to ~2 KB with a photo URL)."""


class NotSigned(Exception):
    """The request does not carry valid initData; ``str()`` is the sentence for the page."""


@dataclass(frozen=True, slots=True)
class Signed:
    """What Telegram vouches for: the user, and the chat the page is about."""

    user_id: int
    first_name: str
    chat_id: int

    @property
    def private(self) -> bool:
        """The user's own chat with the bot (its id is the user's)."""
        return self.chat_id == self.user_id


class InitDataCheck:
    """Checks the ``Authorization: tma …`` header of a request.

    Parameters:
        token: the bot's token (the key is derived from it; it never leaves this object).
        max_age: seconds an initData is accepted after Telegram issued it.
        clock: the time now, in seconds since the epoch (injected by tests).
    """

    def __init__(self, token: str, max_age: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._token = token
        self._max_age = max_age
        self._clock = clock
        self._redeemed: dict[str, float] = {}  # a used login's nonce -> when it expires
        self._started = int(clock())  # login links from an earlier process are refused

    def __repr__(self) -> str:
        return f"InitDataCheck(max_age={self._max_age:g})"  # never the token

    def check(self, header: str | None) -> Signed:
        """The signed user and chat of a request's ``Authorization`` header.

        Raises:
            NotSigned: missing, malformed, forged, expired, or without a user.
        """
        if not header or header.strip().lower() == "tma":
            raise NotSigned("This page works only when opened from Telegram.")
        if len(header) > _MAX_HEADER:
            raise NotSigned("This request is not from Telegram.")
        try:
            credential = strip_auth_header(header)
        except errors.InvalidInitDataError:
            raise NotSigned("This request is not from Telegram.") from None
        data = self._validate(credential, self._max_age, expired=(
            "This page was opened too long ago: close it and open it again from the bot."))
        if data.get(LOGIN_FIELD) is not None:
            raise NotSigned("A login link works only once, to open the page.")
        return self._signed(data)

    def redeem(self, login: str) -> str:
        """A session for the page opened by a ``/web`` login link: initData for the same
        user and chat, signed now. The link is used up.

        Raises:
            NotSigned: not a login link, forged, expired, or already used.
        """
        if len(login) > _MAX_HEADER:
            raise NotSigned("This is not a login link.")
        data = self._validate(login, LOGIN_MAX_AGE, expired=(
            "This login link has expired: send /web to the bot for a new one."))
        nonce = data.get(LOGIN_FIELD)
        if not nonce:
            raise NotSigned("This is not a login link.")
        self._signed(data)  # it names a user
        if data.auth_date < self._started:
            raise NotSigned("This login link is from before ariabot restarted: send /web to "
                            "the bot for a new one.")
        now = self._clock()
        self._redeemed = {n: until for n, until in self._redeemed.items() if until > now}
        if nonce in self._redeemed:
            raise NotSigned("This login link was already used: send /web to the bot for a "
                            "new one.")
        self._redeemed[nonce] = data.auth_date + LOGIN_MAX_AGE
        kept = [(key, value) for key, value in data.pairs
                if key not in ("hash", "auth_date", "signature", LOGIN_FIELD)]
        return sign(kept, self._token, auth_date=int(now))

    def _validate(self, credential: str, max_age: float, *, expired: str) -> InitData:
        now = datetime.fromtimestamp(self._clock(), UTC)
        try:
            return validate_by_hash(credential, self._token, expires_in=max_age, now=now)
        except errors.ExpiredError:
            raise NotSigned(expired) from None
        except (errors.InvalidInitDataError, UnicodeError):
            raise NotSigned("This request is not from Telegram.") from None

    @staticmethod
    def _signed(data: InitData) -> Signed:
        if data.user is None:
            raise NotSigned("Telegram did not say who you are: open the page from the "
                            "bot's chat.")
        chat_id = data.user.id
        if data.start_param and (named := CHAT_PARAM.fullmatch(data.start_param)):
            chat_id = int(named.group(1))
        return Signed(user_id=data.user.id, first_name=data.user.first_name or "",
                      chat_id=chat_id)
