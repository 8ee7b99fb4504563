"""An rclone destination split so its parameters never reach a command line or a log.

rclone takes a *connection string* wherever it takes a remote: ``:webdav,url='http://nas/',
user=me,pass=OBSCURED:backup`` (a backend made on the fly) or ``nas,pass=OBSCURED:backup``
(a configured remote with some of its settings overridden). Given as is, the password would
be in every rclone's argv (``ps``, ``/proc/<pid>/cmdline``: any local user), in ariabot's
log, in the store and in the chats. So the parameters are taken out and handed to rclone as
the environment variables it reads for them (rclone's documented precedence: a remote's
``RCLONE_CONFIG_<REMOTE>_<KEY>`` wins over its config file, and ``RCLONE_<BACKEND>_<KEY>``
configures an on-the-fly backend), which only the same user can read, like a 0600 config
file; what is left, ``:webdav:backup`` or ``nas:backup``, is what rclone's command line,
the log, the store and the chats see. Values stay exactly as given (rclone wants passwords
obscured, as in its config file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RcloneDestination", "parse_destination"]

_REMOTE_NAME = re.compile(r"[0-9A-Za-z_.][0-9A-Za-z_. -]*")
"""rclone's rule for a remote's name: letters, digits, ``_``, ``-``, ``.`` and spaces."""
_BACKEND = re.compile(r"[0-9A-Za-z]+")
_KEY = re.compile(r"[0-9A-Za-z_-]+")
_PLAIN_VALUE = re.compile(r"[^,:]*")
_SECRET_KEY = re.compile(r"pass|secret|token|key|auth|bearer|sas_url|credentials", re.I)
"""Parameters whose values the log formatter masks too (should rclone ever echo one)."""

_NOT_A_DESTINATION = ("must be an rclone destination, remote:path (e.g. gdrive:ariabot), or an "
                     "absolute folder")


@dataclass(frozen=True)
class RcloneDestination:
    """Where mirrors go, as rclone's command line may show it, and its parameters.

    Attributes:
        remote: ``:backend:path``, ``name:path`` or an absolute folder: no parameter.
        environment: ``(variable, value)`` for each parameter of the connection string.
        secret_values: the values of the parameters that look like credentials.
    """

    remote: str
    environment: tuple[tuple[str, str], ...] = ()
    secret_values: tuple[str, ...] = ()


def parse_destination(text: str) -> RcloneDestination:
    """Split ``text`` (an absolute folder, ``name:path``, or a connection string).

    Raises:
        ValueError: it is none of those; the message says what is wrong, never a value.
    """
    if text.startswith("/"):
        if ".." in text.split("/"):
            raise ValueError("must not contain '..'")
        return RcloneDestination(text)
    if ":" not in text.lstrip(":"):
        raise ValueError(_NOT_A_DESTINATION)
    on_the_fly = text.startswith(":")
    rest = text[1:] if on_the_fly else text
    name_end = _PLAIN_VALUE.match(rest)
    assert name_end is not None  # matches the empty string at least
    name, at = name_end.group(), name_end.end()
    if on_the_fly and not _BACKEND.fullmatch(name):
        raise ValueError("the part after the first ':' must be an rclone backend such as "
                         "webdav (a connection string, :webdav,url=...:path)")
    if not on_the_fly and (not _REMOTE_NAME.fullmatch(name) or name.endswith(" ")):
        raise ValueError("the part before ':' must be the name of a remote in the rclone "
                         "config (letters, digits, _ - . and spaces)")
    parameters, at = _parameters(rest, at)
    if at >= len(rest) or rest[at] != ":":
        raise ValueError(_NOT_A_DESTINATION)
    path = rest[at + 1:]
    if ".." in path.split("/"):
        raise ValueError("must not contain '..'")
    prefix = f"RCLONE_{name.upper()}_" if on_the_fly else f"RCLONE_CONFIG_{name.upper()}_"
    return RcloneDestination(
        remote=f"{':' if on_the_fly else ''}{name}:{path}",
        environment=tuple((prefix + key.upper(), value) for key, value in parameters),
        secret_values=tuple(value for key, value in parameters
                            if value and _SECRET_KEY.search(key)),
    )


def _parameters(text: str, at: int) -> tuple[list[tuple[str, str]], int]:
    """The ``,key=value`` parameters from ``at`` on, and where they end (rclone's syntax:
    a value with ``,`` or ``:`` is quoted with ``'`` or ``"``, a quote in it doubled; a key
    alone means true)."""
    parameters: list[tuple[str, str]] = []
    while at < len(text) and text[at] == ",":
        key = _KEY.match(text, at + 1)
        if key is None:
            raise ValueError("a parameter of the connection string must be key=value "
                             "(e.g. user=me)")
        at, value = key.end(), "true"
        if text.startswith("=", at):
            value, at = _value(text, at + 1)
        parameters.append((key.group().lower().replace("-", "_"), value))
    return parameters, at


def _value(text: str, at: int) -> tuple[str, int]:
    if at < len(text) and text[at] in "'\"":
        quote, chars, at = text[at], [], at + 1
        while True:
            if at >= len(text):
                raise ValueError("a quoted value of the connection string lacks its closing "
                                 "quote")
            if text[at] == quote and text.startswith(quote, at + 1):
                chars.append(quote)
                at += 2
            elif text[at] == quote:
                return "".join(chars), at + 1
            else:
                chars.append(text[at])
                at += 1
    plain = _PLAIN_VALUE.match(text, at)
    assert plain is not None
    return plain.group(), plain.end()
