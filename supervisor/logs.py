"""Logging set-up for ``ariabot``: one handler on stderr that can never print a secret.

Libraries log URLs that contain secrets (httpx logs every Bot API URL, and the bot token is
part of that URL). Rather than trusting every logger, the handler masks each registered
secret in the final text of every record.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

__all__ = ["RedactingFormatter", "setup_logging"]

MASK = "********"


class RedactingFormatter(logging.Formatter):
    """A formatter that replaces every registered secret with ``********``.

    Parameters:
        fmt: the log line format.
        secrets: values never to print; more can be added with :meth:`add_secret`.
    """

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self._secrets: set[str] = {s for s in secrets if s}

    def add_secret(self, secret: str) -> None:
        """Mask ``secret`` from now on (empty strings are ignored)."""
        if secret:
            self._secrets.add(secret)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def setup_logging(level: str, secrets: Iterable[str] = ()) -> RedactingFormatter:
    """Send ariabot's and its libraries' logs to stderr, secrets masked.

    Returns:
        The formatter, so that secrets born later (the RPC secret) can be added to it.
    """
    formatter = RedactingFormatter(
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s", secrets
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs one INFO line per request: with long polling that is noise every 10 s.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    return formatter
