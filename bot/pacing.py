"""The pacing rules: which queued message of which chat may go to Telegram, and when.

Telegram's published limits (Bot FAQ, "My bot is hitting limits, how do I avoid this?",
core.telegram.org/bots/faq): about one message per second in a chat ("short bursts" allowed),
at most 20 per minute in a group, about 30 per second in all. :class:`PacingRules` keeps one
queue per chat, ordered by :class:`Priority` (news, then replies, then progress edits) and
then by arrival, and releases a chat's head when the chat's token bucket, its group window
(groups only) and the global window allow it. Across chats, the global budget goes to the
most urgent head first, so a chat that floods the bot (it only ever gets its own one message
a second) cannot hold back another chat's news.

A 429 pauses its chat for ``retry_after``; a 429 in a chat that had sent nothing else for a
minute cannot be that chat's own limit, so it pauses every chat (a global limit).

Pure: every method takes ``now`` (monotonic seconds), so the unit tests drive it with a fake
clock; :mod:`bot.pacer` runs it on the event loop.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass, field

from manager import Pace

__all__ = ["ChatKey", "PaceLimits", "PacingRules", "Priority", "Ticket", "is_group",
           "shared_paces"]

ChatKey = int | str
"""A chat id as the Bot API takes it: an int, or ``@username`` for channels and supergroups."""

_QUIET = 60.0
"""Seconds without a message after which a chat's 429 is taken for a global one."""


class Priority(enum.IntEnum):
    """What a message is, most urgent first (never 0: PTB drops falsy ``rate_limit_args``)."""

    NEWS = 1
    """Completions, failures and alerts: the user waits for these."""
    REPLY = 2
    """Answers to the user's commands and buttons."""
    EDIT = 3
    """Progress edits: the progress board coalesces them, so a late one loses nothing."""


@dataclass(frozen=True)
class PaceLimits:
    """What the bot allows itself; each a little under Telegram's (:mod:`bot.pacing`), so
    the jitter between leaving here and arriving there never turns into a 429.

    Parameters:
        chat_rate: messages per second in one chat, sustained.
        chat_burst: messages one chat may send back to back after a quiet while.
        group_per_window: messages in one group per ``group_window`` seconds (Telegram: 20/60).
        group_window: see ``group_per_window``.
        global_per_second: messages per second across all chats (Telegram: about 30).
    """

    chat_rate: float = 1.0
    chat_burst: int = 3
    group_per_window: int = 19
    group_window: float = 61.0
    global_per_second: int = 25


def shared_paces(chat: ChatKey, limits: PaceLimits) -> list[Pace]:
    """The paces one message to ``chat`` takes a turn of, with every node of the database
    (:meth:`manager.TorrentManager.take_turn`): the limits are the bot's, and several nodes
    send as one bot. The same limits as :class:`PacingRules`, as cell rates: the chat's
    sustained rate with its burst; a group's window as a rate whose burst and sustained turns
    stay within it (``chat_burst`` + window / spacing = ``group_per_window``); the whole
    bot's rate, without a burst."""
    paces = [Pace(f"chat:{chat}", 1.0 / limits.chat_rate, limits.chat_burst),
             Pace("all", 1.0 / limits.global_per_second)]
    if is_group(chat):
        sustained = max(1, limits.group_per_window - limits.chat_burst)
        paces.append(Pace(f"group:{chat}", limits.group_window / sustained, limits.chat_burst))
    return paces


@dataclass(order=True)
class Ticket:
    """One message waiting for its turn (ordered by priority, then arrival)."""

    priority: Priority
    seq: int
    chat: ChatKey = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


def is_group(chat: ChatKey) -> bool:
    """A group, supergroup or channel: a negative id or an ``@username``."""
    return isinstance(chat, str) or chat < 0


@dataclass
class _Chat:
    key: ChatKey
    tokens: float
    at: float
    queue: list[Ticket] = field(default_factory=list)
    paused_until: float = -math.inf
    last_sent: float = -math.inf
    previous_sent: float = -math.inf
    """The send before ``last_sent``: a 429 answers ``last_sent``, was the chat quiet before?"""
    window: deque[float] = field(default_factory=deque)


class PacingRules:
    """Per-chat priority queues, token buckets and windows (see the module docstring).

    Parameters:
        limits: the pace to keep.
    """

    def __init__(self, limits: PaceLimits) -> None:
        self.limits = limits
        self._chats: dict[ChatKey, _Chat] = {}
        self._seq = itertools.count()
        self._sent: deque[float] = deque()
        self._paused_until = -math.inf

    def submit(self, chat: ChatKey, priority: Priority, now: float,
               seq: int | None = None) -> Ticket:
        """Queue one message of ``chat``; it waits until :meth:`release` hands it back.

        ``seq`` is the place in line of an earlier ticket of the same message (resent after
        a 429: it keeps its place before the messages queued since); default: the last place.
        """
        ticket = Ticket(priority, next(self._seq) if seq is None else seq, chat)
        heapq.heappush(self._state(chat, now).queue, ticket)
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """Forget a queued message (its sender gave up waiting)."""
        ticket.cancelled = True
        state = self._chats.get(ticket.chat)
        if state is not None:
            self._drop_cancelled(state)

    def release(self, now: float) -> list[Ticket]:
        """The messages that may go now, most urgent first; each is counted as sent."""
        released: list[Ticket] = []
        while True:
            heads = sorted(state.queue[0] for state in self._chats.values()
                           if state.queue and self._chat_wait(state, now) <= 0)
            if not heads or self._global_wait(now) > 0:
                return released
            for ticket in heads:
                if self._global_wait(now) > 0:
                    return released
                state = self._chats[ticket.chat]
                heapq.heappop(state.queue)
                self._spend(state, now)
                released.append(ticket)
                self._drop_cancelled(state)

    def next_time(self, now: float) -> float | None:
        """When :meth:`release` may next hand something out (None: nothing is queued)."""
        waits = [self._chat_wait(state, now) for state in self._chats.values() if state.queue]
        if not waits:
            return None
        return now + max(min(waits), self._global_wait(now), 0.0)

    def rate_limited(self, chat: ChatKey, retry_after: float, now: float) -> bool:
        """Telegram answered 429 for a message of ``chat``: pause it (or everything).

        Returns:
            True when the pause is global (the chat had been quiet, so the limit was not its).
        """
        state = self._state(chat, now)
        quiet = now - state.previous_sent > _QUIET
        until = now + retry_after
        if quiet:
            self._paused_until = max(self._paused_until, until)
        else:
            state.paused_until = max(state.paused_until, until)
        return quiet

    def pending(self, chat: ChatKey) -> int:
        """Messages of ``chat`` waiting for their turn."""
        state = self._chats.get(chat)
        return len(state.queue) if state else 0

    # --- the limits -----------------------------------------------------------------------------

    def _state(self, chat: ChatKey, now: float) -> _Chat:
        state = self._chats.get(chat)
        if state is None:
            self._forget_idle(now)
            state = self._chats[chat] = _Chat(chat, float(self.limits.chat_burst), now)
        return state

    def _refill(self, state: _Chat, now: float) -> None:
        limits = self.limits
        state.tokens = min(float(limits.chat_burst),
                           state.tokens + max(0.0, now - state.at) * limits.chat_rate)
        state.at = max(state.at, now)

    def _chat_wait(self, state: _Chat, now: float) -> float:
        self._refill(state, now)
        waits = [state.paused_until - now, (1 - state.tokens) / self.limits.chat_rate]
        if is_group(state.key):
            window = self.limits.group_window
            while state.window and state.window[0] <= now - window:
                state.window.popleft()
            if len(state.window) >= self.limits.group_per_window:
                waits.append(state.window[0] + window - now)
        return max(waits)

    def _global_wait(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - 1.0:
            self._sent.popleft()
        waits = [self._paused_until - now]
        if len(self._sent) >= self.limits.global_per_second:
            waits.append(self._sent[0] + 1.0 - now)
        return max(waits)

    def _spend(self, state: _Chat, now: float) -> None:
        state.tokens -= 1
        state.previous_sent, state.last_sent = state.last_sent, now
        if is_group(state.key):
            state.window.append(now)
        self._sent.append(now)

    @staticmethod
    def _drop_cancelled(state: _Chat) -> None:
        if any(ticket.cancelled for ticket in state.queue):
            state.queue[:] = [ticket for ticket in state.queue if not ticket.cancelled]
            heapq.heapify(state.queue)

    def _forget_idle(self, now: float) -> None:
        """Chats with nothing queued and a full bucket carry no state worth keeping."""
        if len(self._chats) < 512:
            return
        for chat, state in list(self._chats.items()):
            self._refill(state, now)
            idle = (not state.queue and state.tokens >= self.limits.chat_burst
                    and state.paused_until <= now and not state.window)
            if idle:
                del self._chats[chat]
