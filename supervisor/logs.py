"""Logging set-up for ``ariabot``: one handler on stderr that can never print a secret.

Libraries log URLs that contain secrets (httpx logs every Bot API URL, and the bot token is
part of that URL). Rather than trusting every logger, the handler masks each registered
secret in the final text of every record. Two formats share that masking:

* ``text`` (default): ``time LEVEL logger: message``, for people and for journald;
* ``json``: one JSON object per line with ``time`` (ISO 8601, UTC), ``level``, ``logger``,
  ``message`` (and ``exception`` when there is one), for log shippers.

aria2c writes its own log (``<data dir>/aria2.log``) and cannot rotate it: :func:`cap_file`
keeps it bounded (see :mod:`supervisor.process`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "LOG_FORMATS",
    "MASK",
    "JsonFormatter",
    "RedactingFormatter",
    "SecretMask",
    "cap_file",
    "setup_logging",
]

MASK = "********"

LOG_FORMATS = ("text", "json")
"""The values of ``ariabot --log-format``."""

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class SecretMask:
    """The set of values never to print, and the one function that hides them.

    Parameters:
        secrets: the first values to hide; empty strings are ignored.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Hide ``secret`` from now on (empty strings are ignored)."""
        if secret:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by :data:`MASK` (longest secrets first)."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


class RedactingFormatter(logging.Formatter):
    """A text formatter that replaces every registered secret with ``********``.

    Parameters:
        fmt: the log line format.
        secrets: values never to print; more can be added with :meth:`add_secret`.
    """

    def __init__(self, fmt: str = TEXT_FORMAT, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.mask = SecretMask(secrets)

    def add_secret(self, secret: str) -> None:
        """Mask ``secret`` from now on (empty strings are ignored)."""
        self.mask.add(secret)

    def format(self, record: logging.LogRecord) -> str:
        return self.mask(super().format(record))


class JsonFormatter(RedactingFormatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``.

    Each value is masked like the text format masks a line, before it is encoded, so a secret
    never reaches the output whatever JSON escaping would have made of it. A traceback goes
    into ``exception``; the line itself never contains a line break.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(message)s", secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": self.mask(record.getMessage()),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = self.mask(record.exc_text)
        if record.stack_info:
            entry["stack"] = self.mask(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(
    level: str, secrets: Iterable[str] = (), log_format: str = "text"
) -> RedactingFormatter:
    """Send ariabot's and its libraries' logs to stderr, secrets masked.

    Parameters:
        level: DEBUG, INFO, WARNING or ERROR (``[log] level``).
        secrets: values never to print (the bot token); more can be added later.
        log_format: ``text`` or ``json`` (``ariabot --log-format``).

    Returns:
        The formatter, so that secrets born later (the RPC secret) can be added to it.

    Raises:
        ValueError: an unknown ``log_format``.
    """
    if log_format == "json":
        formatter: RedactingFormatter = JsonFormatter(secrets)
    elif log_format == "text":
        formatter = RedactingFormatter(TEXT_FORMAT, secrets)
    else:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
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


def cap_file(path: Path, max_bytes: int, *, in_use: bool) -> bool:
    """Keep a log file that its writer cannot rotate below ``max_bytes`` (plus one old copy).

    When ``path`` is larger than ``max_bytes`` its content moves to ``<path>.1`` (replacing
    the previous one), so at most about twice ``max_bytes`` is kept.

    Parameters:
        path: the log file (a missing file is fine).
        max_bytes: the size that triggers a rotation.
        in_use: a process has the file open for appending (aria2c while it runs). Then the
            file is copied and truncated in place (logrotate's ``copytruncate``: lines written
            between the copy and the truncation are lost); otherwise it is simply renamed.

    Returns:
        True when the file was rotated.
    """
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    old = path.with_name(path.name + ".1")
    if in_use:
        shutil.copyfile(path, old)
        with contextlib.suppress(FileNotFoundError):
            # aria2c appends (O_APPEND): its next line starts at the new end, offset 0.
            os.truncate(path, 0)
    else:
        path.replace(old)
    return True
