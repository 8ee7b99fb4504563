"""News: the **new** messages the bot sends on its own, so the user is notified.

A completion (size, time taken, where, a "Send file" button for a single file on disk
whatever its size, since a big one goes in parts, and a "Mirror" button when mirroring is
on request), a failure (with the reason) and a mirror's outcome (where it went and its
link, or rclone's reason) go to the download's chat, as a reply to its progress message;
aria2c alerts go to the admin chat. Each is sent by a task of its own and retried a few
times on 429 and network errors; a refusal (bad request, blocked bot) is final.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.files import deliverable_file
from bot.sender import Sender, retry_seconds
from bot.tasks import TaskSet
from bot.views import (
    completion_keyboard,
    completion_text,
    engine_alert_text,
    failure_text,
    mirror_done_text,
    mirror_failed_text,
    relative_location,
)
from manager import Aria2Down, Aria2Fatal, Aria2Restarted, EngineEvent, Torrent

__all__ = ["BoardStats", "News"]

log = logging.getLogger(__name__)


@dataclass
class BoardStats:
    """What the board and its news did, for logs and tests."""

    edits: int = 0
    """Edit requests Telegram accepted (including "not modified")."""
    not_modified: int = 0
    rate_limited: int = 0
    network_errors: int = 0
    refused: int = 0
    notifications: int = 0
    """New messages sent: completions, failures, alerts."""


class News:
    """Sends completions, failures and aria2c alerts as new messages.

    Parameters:
        sender: sends messages (:class:`~bot.sender.BotSender` in production).
        stats: the counters to bump (shared with the progress board).
        chat_folder: chat id → the chat's download folder (for "where" and "Send file").
        admin_chat: chat for aria2c alerts, or None.
        sleep: ``asyncio.sleep``-like (injected by tests).
        retry_delay: seconds before the first retry after a network error (grows by attempt).
        attempts: tries for one message before giving up on it.
        mirror_button: completion messages offer a "Mirror" button.
        link_button: completion messages offer a "Get link" button.
    """

    def __init__(
        self,
        sender: Sender,
        stats: BoardStats,
        *,
        chat_folder: Callable[[int], Path],
        admin_chat: int | None,
        sleep: Callable[[float], Awaitable[Any]],
        retry_delay: float,
        attempts: int,
        mirror_button: bool = False,
        link_button: bool = False,
    ) -> None:
        self._sender = sender
        self._stats = stats
        self._chat_folder = chat_folder
        self._admin_chat = admin_chat
        self._sleep = sleep
        self._retry_delay = retry_delay
        self._attempts = attempts
        self._mirror_button = mirror_button
        self._link_button = link_button
        self._tasks = TaskSet()

    def completed(self, torrent: Torrent, reply_to: int | None) -> None:
        """Tell ``torrent``'s chat it is downloaded (a reply to ``reply_to`` when given)."""
        self._tasks.start(self._announce_completion(torrent, reply_to), "notify")

    def failed(self, torrent: Torrent, reply_to: int | None) -> None:
        """Tell ``torrent``'s chat it failed, with the manager's reason."""
        self._tasks.start(self._deliver(torrent.chat_id, failure_text(torrent), None, reply_to),
                          "notify")

    def mirrored(self, torrent: Torrent, reply_to: int | None) -> None:
        """Tell ``torrent``'s chat where its upload went (and its public link, if any)."""
        self._tasks.start(self._deliver(torrent.chat_id, mirror_done_text(torrent), None,
                                        reply_to), "notify")

    def mirror_failed(self, torrent: Torrent, reply_to: int | None) -> None:
        """Tell ``torrent``'s chat its upload failed for good, with rclone's reason."""
        self._tasks.start(self._deliver(torrent.chat_id, mirror_failed_text(torrent), None,
                                        reply_to), "notify")

    def alert(self, event: EngineEvent) -> None:
        """Tell the admin chat (if any) that aria2c went down, came back or gave up."""
        if self._admin_chat is None:
            return
        kind = ("fatal" if isinstance(event, Aria2Fatal)
                else "restarted" if isinstance(event, Aria2Restarted)
                else "down" if isinstance(event, Aria2Down) else None)
        if kind is not None:
            self._tasks.start(self._deliver(self._admin_chat,
                                            engine_alert_text(kind, event.detail), None),
                              "notify")

    async def close(self, flush_timeout: float) -> None:
        """Give pending news ``flush_timeout`` seconds to go out, then cancel the rest."""
        await self._tasks.wait(flush_timeout)
        await self._tasks.cancel()

    async def _announce_completion(self, torrent: Torrent, reply_to: int | None) -> None:
        folder = self._chat_folder(torrent.chat_id)
        location = relative_location(torrent.path, folder)
        can_send = await asyncio.to_thread(deliverable_file, torrent.path, folder) is not None
        await self._deliver(torrent.chat_id, completion_text(torrent, location),
                            completion_keyboard(torrent, can_send=can_send,
                                                can_mirror=self._mirror_button,
                                                can_link=self._link_button),
                            reply_to)

    async def _deliver(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
                       reply_to: int | None = None) -> None:
        """Send one new message, retrying on 429 and network errors a few times."""
        for attempt in range(1, self._attempts + 1):
            try:
                await self._sender.send(chat_id, text, markup, reply_to)
            except RetryAfter as error:
                self._stats.rate_limited += 1
                await self._sleep(retry_seconds(error))
            except BadRequest as error:
                if reply_to is not None and "replied" in error.message.lower():
                    reply_to = None  # the progress message was deleted: send it anyway
                    continue
                log.warning("Telegram refused a message to chat %s: %s", chat_id, error.message)
                return
            except Forbidden as error:
                log.info("cannot write to chat %s (%s)", chat_id, error.message)
                return
            except NetworkError as error:
                self._stats.network_errors += 1
                log.info("sending to chat %s failed (%s), attempt %d", chat_id, error.message,
                         attempt)
                await self._sleep(self._retry_delay * attempt)
            except TelegramError as error:
                log.warning("sending to chat %s failed: %s", chat_id, error.message)
                return
            else:
                self._stats.notifications += 1
                return
        log.warning("gave up sending a message to chat %s", chat_id)
