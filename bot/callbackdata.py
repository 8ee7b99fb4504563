"""The buttons' ``callback_data`` codec: built and parsed only here.

``verb:id`` or ``verb:id:arg``, at most 64 bytes (Telegram's limit, which PTB does not
check), parsed strictly: only what :func:`callback_data` makes is accepted, so a forged or
stale button press is refused before any handler acts on it. ``arg`` is a word, or for a few
verbs a number (a file's place in the /files list, a page of it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["MAX_CALLBACK_BYTES", "Action", "InvalidCallback", "callback_data", "parse_callback"]

MAX_CALLBACK_BYTES = 64
"""Telegram's limit for ``callback_data``; PTB does not check it."""

class InvalidCallback(ValueError):
    """Callback data that no button of this bot makes."""


_VERB_ARGS: MappingProxyType[str, frozenset[str | None]] = MappingProxyType({
    "pause": frozenset({None}),
    "resume": frozenset({None}),
    "refresh": frozenset({None}),
    "cancel": frozenset({None, "keep", "delete"}),
    "back": frozenset({None}),
    "send": frozenset({None}),
    "status": frozenset({None}),
    "mirror": frozenset({None, "stop"}),
    "unsend": frozenset({None}),
    "link": frozenset({None}),
})
"""Each button verb and the arguments it may carry (None: no argument)."""
_NUMBER_VERBS: MappingProxyType[str, int] = MappingProxyType({
    "sendfile": 1,
    "files": 0,
})
"""Verbs whose argument is a number, with its least value: ``sendfile:<id>:<file number>``
(1-based, as /files shows them) and ``files:<id>:<page>`` (0-based)."""
_MAX_NUMBER_ARG = 10**6
_PAGE_VERBS = frozenset({"status"})
_CALLBACK_RE = re.compile(
    r"([a-z]{1,16}):(0|[1-9][0-9]{0,11})(?::([a-z]{1,16}|0|[1-9][0-9]{0,5}))?")


@dataclass(frozen=True)
class Action:
    """A parsed button press: ``verb`` on download ``id`` (a page number for ``status``)."""

    verb: str
    id: int
    arg: str | None = None

    @property
    def number(self) -> int:
        """The number argument of ``sendfile`` and ``files`` buttons (0 without one)."""
        return int(self.arg) if self.arg is not None and self.arg.isdigit() else 0

    def encode(self) -> str:
        """The callback data string.

        Raises:
            InvalidCallback: unknown verb or argument, bad id, or longer than 64 bytes.
        """
        if self.verb in _NUMBER_VERBS:
            if not _is_number_arg(self.arg, _NUMBER_VERBS[self.verb]):
                raise InvalidCallback(f"bad number for {self.verb}: {self.arg!r}")
        else:
            allowed = _VERB_ARGS.get(self.verb)
            if allowed is None or self.arg not in allowed:
                raise InvalidCallback(f"no such button: {self.verb}/{self.arg}")
        low = 0 if self.verb in _PAGE_VERBS else 1
        if isinstance(self.id, bool) or not isinstance(self.id, int) or not (
            low <= self.id < 10**12
        ):
            raise InvalidCallback(f"bad id for {self.verb}: {self.id!r}")
        data = f"{self.verb}:{self.id}" + (f":{self.arg}" if self.arg else "")
        if len(data.encode()) > MAX_CALLBACK_BYTES:  # pragma: no cover - ids are bounded
            raise InvalidCallback("callback data longer than 64 bytes")
        return data


def _is_number_arg(arg: str | None, least: int) -> bool:
    return (arg is not None and arg.isascii() and arg.isdigit() and str(int(arg)) == arg
            and least <= int(arg) < _MAX_NUMBER_ARG)


def callback_data(verb: str, download_id: int, arg: str | int | None = None) -> str:
    """Build checked callback data: ``verb:id`` or ``verb:id:arg`` (≤ 64 bytes); a number
    ``arg`` is for the verbs that take one (``sendfile``, ``files``)."""
    return Action(verb, download_id, None if arg is None else str(arg)).encode()


def parse_callback(data: object) -> Action:
    """Parse callback data strictly: only what :func:`callback_data` makes is accepted.

    Raises:
        InvalidCallback: anything else (unknown verb, extra fields, signs, leading zeros,
            non-ASCII digits, too long, not a string).
    """
    if not isinstance(data, str) or len(data.encode()) > MAX_CALLBACK_BYTES:
        raise InvalidCallback("not callback data of this bot")
    match = _CALLBACK_RE.fullmatch(data)
    if match is None:
        raise InvalidCallback("not callback data of this bot")
    action = Action(match.group(1), int(match.group(2)), match.group(3))
    if action.encode() != data:
        raise InvalidCallback("not callback data of this bot")
    return action
