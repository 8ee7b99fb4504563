"""ChatPacer: every message the bot sends goes through one paced queue per chat.

A python-telegram-bot rate limiter (``ApplicationBuilder().rate_limiter(...)``), so the
handlers' own ``reply_text`` and ``edit_message_text`` are paced too, not only the news and
the progress board. It replaces PTB's ``AIORateLimiter``, which limits groups (20/min) and the
whole bot (30/s) but not a private chat's one message a second, treats every request the same
(a completion waits behind 20 progress edits) and pauses *every* chat on any 429. Here the
request's ``rate_limit_args`` is its :class:`~bot.pacing.Priority` (handlers' requests have
none: :attr:`Priority.REPLY`), and :class:`~bot.pacing.PacingRules` decides the order.

Only requests that put a message into a chat are paced (:data:`PACED`); the rest (getUpdates,
answerCallbackQuery, getChatMember, deleteMessage, …) go at once. A 429 pauses its chat (or
everything, see :mod:`bot.pacing`); news and replies are then sent again when the pause ends,
progress edits are not (the board re-renders the newest text itself).

Several nodes on one database send as one bot: a request released here then takes its turn
of the paces every node shares (:func:`~bot.pacing.shared_paces`, kept in the database) and
waits for it, so that all nodes together stay under Telegram's limits. A database that
cannot be reached leaves each node pacing itself (logged once per outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.pacing import ChatKey, PaceLimits, PacingRules, Priority, Ticket, shared_paces
from bot.sender import retry_seconds
from manager import ManagerError, Pace

__all__ = ["PACED", "ChatPacer", "TakeTurn"]

log = logging.getLogger(__name__)

PACED = frozenset({
    "sendMessage", "sendDocument", "sendPhoto", "copyMessage", "forwardMessage",
    "editMessageText", "editMessageReplyMarkup", "editMessageCaption",
})
"""Bot API methods that put a message into a chat: what Telegram's flood limits count."""

TakeTurn = Callable[[Sequence[Pace]], Awaitable[float]]
"""Takes one turn of paces every node shares; the seconds to wait
(:meth:`manager.TorrentManager.take_turn`)."""

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]


class ChatPacer(BaseRateLimiter[Priority]):
    """Paces the bot's messages per chat, by priority (see the module docstring).

    Parameters:
        limits: the pace to keep (a little under Telegram's published limits).
        retries: how often a 429'd news or reply is sent again before the 429 is raised.
        take_turn: takes a turn of the paces every node shares (several nodes); None: this
            process is the only one sending as the bot.
    """

    def __init__(self, limits: PaceLimits | None = None, *, retries: int = 3,
                 take_turn: TakeTurn | None = None) -> None:
        self.rules = PacingRules(limits or PaceLimits())
        self._retries = retries
        self._take_turn = take_turn
        self._shared_failing = False
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self.rate_limited = 0
        """429 answers seen by paced requests."""

    async def initialize(self) -> None:
        """Start the dispatcher (PTB calls this from ``Application.initialize``)."""
        self._ensure_dispatcher()

    async def shutdown(self) -> None:
        """Stop the dispatcher; requests still waiting for their turn are cancelled."""
        task, self._dispatcher = self._dispatcher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()

    async def process_request(  # noqa: PLR0917 (PTB's signature)
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Priority | None,
    ) -> JSONResult:
        """Wait for the chat's turn, then send; on 429 pause the chat and maybe resend.

        Raises:
            RetryAfter: for a progress edit at once, for others after ``retries`` resends.
        """
        chat: Any = data.get("chat_id")
        if endpoint not in PACED or chat is None:
            return await callback(*args, **kwargs)
        with contextlib.suppress(ValueError, TypeError):
            chat = int(chat)
        priority = Priority(rate_limit_args) if rate_limit_args else Priority.REPLY
        attempt, place = 0, None
        while True:
            place = await self._turn(chat, priority, place)
            await self._shared_turn(chat)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                self.rate_limited += 1
                seconds = retry_seconds(error)
                everyone = self.rules.rate_limited(chat, seconds,
                                                   asyncio.get_running_loop().time())
                log.info("Telegram asks to wait %.0fs before writing to %s", seconds,
                         "any chat" if everyone else f"chat {chat}")
                self._wake.set()
                if priority is Priority.EDIT or attempt >= self._retries:
                    raise
                attempt += 1

    async def _turn(self, chat: ChatKey, priority: Priority, place: int | None) -> int:
        """Queue for ``chat`` (at ``place`` if given); return the place once released."""
        loop = asyncio.get_running_loop()
        ticket: Ticket = self.rules.submit(chat, priority, loop.time(), place)
        future: asyncio.Future[None] = loop.create_future()
        self._waiting[ticket.seq] = future
        self._ensure_dispatcher()
        self._wake.set()
        try:
            await future
        except asyncio.CancelledError:
            if self._waiting.pop(ticket.seq, None) is not None:
                self.rules.cancel(ticket)
            raise
        return ticket.seq

    async def _shared_turn(self, chat: ChatKey) -> None:
        """Wait for this message's turn among every node's (none without nodes)."""
        if self._take_turn is None:
            return
        try:
            wait = await self._take_turn(shared_paces(chat, self.rules.limits))
        except ManagerError as error:
            if not self._shared_failing:
                log.warning("the turns the nodes share cannot be taken (%s): this node "
                            "paces its messages alone until the database answers", error)
            self._shared_failing = True
            return
        self._shared_failing = False
        if wait > 0:
            await asyncio.sleep(wait)

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name="chat-pacer")

    async def _dispatch(self) -> None:
        """Hand out turns as the rules allow; sleep until the next one or a new request."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            for ticket in self.rules.release(now):
                future = self._waiting.pop(ticket.seq, None)
                if future is not None and not future.done():
                    future.set_result(None)
            due = self.rules.next_time(now)
            self._wake.clear()
            timeout = None if due is None else max(0.0, due - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
