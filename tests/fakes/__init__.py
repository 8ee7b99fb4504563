"""Test doubles that speak real wire protocols on 127.0.0.1.

``telegram_api.FakeTelegramServer`` is a Bot API server for python-telegram-bot to talk to.
"""

from __future__ import annotations

from tests.fakes.telegram_api import (
    BOT_USERNAME,
    DEFAULT_TOKEN,
    FakeTelegramServer,
    Request,
    StoredFile,
    UploadedFile,
)

__all__ = [
    "BOT_USERNAME",
    "DEFAULT_TOKEN",
    "FakeTelegramServer",
    "Request",
    "StoredFile",
    "UploadedFile",
]
