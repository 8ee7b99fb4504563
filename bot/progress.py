"""ProgressBoard: the live progress messages, fed by the manager's events.

The manager calls :meth:`ProgressBoard.__call__` synchronously on the event loop for every
event; the board only records the newest snapshot and starts (or wakes) one worker task per
message, so a subscriber never blocks. A worker is a *coalescing* updater, not a queue: when it
may edit, it renders the newest snapshot there is, and snapshots that arrived in between are
simply never shown. The rules for one message:

* edit when the whole percent moved by 5 points or more since the text on screen, or when the
  state changed (state, stuck reason, queue position, error, name, cancel confirmation);
* at most once per ``edit_interval`` seconds; a button press (:meth:`ProgressBoard.show_now`)
  edits at once;
* never send the text (and keyboard) already on screen;
* "message is not modified" counts as success; ``RetryAfter`` is waited out, then the newest
  text is sent; 5xx and network errors are retried after ``retry_delay`` with the newest text;
* a message that is gone (deleted, bot blocked) is given up.

News gets a **new** message (so the user is notified): completion (size, time taken, where,
and a "Send file" button for one file up to the upload limit) and failure (with the reason);
aria2c alerts go to the admin chat. Those are retried a few times on 429 and network errors.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.files import deliverable_file
from bot.views import (
    completion_keyboard,
    completion_text,
    engine_alert_text,
    failure_text,
    markup_key,
    percent,
    progress_keyboard,
    progress_text,
    relative_location,
)
from manager import (
    Aria2Down,
    Aria2Fatal,
    Aria2Restarted,
    EngineEvent,
    Event,
    Torrent,
    TorrentCompleted,
    TorrentEvent,
    TorrentFailed,
)

__all__ = [
    "PROGRESS_STEP",
    "BoardStats",
    "BotSender",
    "ProgressBoard",
    "Sender",
    "is_not_modified",
    "retry_seconds",
]

log = logging.getLogger(__name__)

PROGRESS_STEP = 5
"""Percent points progress must move before a message is edited for progress alone."""

_GONE = (
    "message to edit not found",
    "message can't be edited",
    "message_id_invalid",
    "chat not found",
    "have no rights to send",
    "not enough rights",
)
_MAX_ORPHANS = 256


def is_not_modified(error: BadRequest) -> bool:
    """Telegram's answer to an edit that changes nothing (a success for us)."""
    return "message is not modified" in error.message.lower()


def _is_gone(error: BadRequest) -> bool:
    text = error.message.lower()
    return any(needle in text for needle in _GONE)


def retry_seconds(error: RetryAfter) -> float:
    """``retry_after`` in seconds, whether PTB gives an int or a timedelta."""
    value: Any = error.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class Sender(Protocol):
    """How the board talks to Telegram (a fake in unit tests)."""

    async def send(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
                   reply_to: int | None = None) -> int:
        """Send an HTML message; return its message id."""
        ...

    async def edit(self, chat_id: int, message_id: int, text: str,
                   markup: InlineKeyboardMarkup | None) -> None:
        """Replace an HTML message's text and keyboard."""
        ...


class BotSender:
    """:class:`Sender` on a real :class:`telegram.Bot` (HTML, no link previews)."""

    _NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
                   reply_to: int | None = None) -> int:
        """Send an HTML message; return its message id."""
        reply = (ReplyParameters(reply_to, allow_sending_without_reply=True)
                 if reply_to is not None else None)
        message = await self._bot.send_message(
            chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup,
            link_preview_options=self._NO_PREVIEW, reply_parameters=reply,
        )
        return message.message_id

    async def edit(self, chat_id: int, message_id: int, text: str,
                   markup: InlineKeyboardMarkup | None) -> None:
        """Replace an HTML message's text and keyboard."""
        await self._bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML,
            reply_markup=markup, link_preview_options=self._NO_PREVIEW,
        )


@dataclass
class BoardStats:
    """What the board did, for logs and tests."""

    edits: int = 0
    """Edit requests Telegram accepted (including "not modified")."""
    not_modified: int = 0
    rate_limited: int = 0
    network_errors: int = 0
    refused: int = 0
    notifications: int = 0
    """New messages sent: completions, failures, alerts."""


@dataclass
class _Slot:
    """One download's progress message and what is on screen."""

    download_id: int
    chat_id: int
    message_id: int | None
    latest: Torrent
    confirm: bool = False
    gone: bool = False
    """The message was deleted or the chat closed: events do not bring it back."""
    shown_text: str | None = None
    shown_markup: tuple[Any, ...] | None = None
    shown_key: tuple[Any, ...] | None = None
    shown_percent: int = 0
    not_before: float = -math.inf
    urgent: int = 0
    """Bumped by every button press; an edit done for the current value clears the need."""
    urgent_done: int = 0
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def is_urgent(self) -> bool:
        return self.urgent != self.urgent_done


def _state_key(torrent: Torrent, confirm: bool) -> tuple[Any, ...]:
    """Everything whose change is worth an edit at once (progress aside)."""
    return (torrent.state, torrent.stuck_reason, torrent.queue_position, torrent.error,
            torrent.name, torrent.total_bytes > 0, confirm)


class ProgressBoard:
    """Keeps every download's progress message up to date; subscribe it to the manager.

    Parameters:
        sender: sends and edits messages (:class:`BotSender` in production).
        chat_folder: chat id → the chat's download folder (for "where" and "Send file").
        edit_interval: least seconds between two edits of one message.
        upload_limit: largest file the "Send file" button is offered for (bytes).
        admin_chat: chat for aria2c alerts, or None.
        clock: monotonic clock (injected by tests).
        sleep: ``asyncio.sleep``-like (injected by tests).
        retry_delay: seconds before retrying after a network or 5xx error.
        notify_attempts: tries for one new message before giving up on it.
        chat_interval: least seconds between two progress edits in one chat, whichever
            messages they are (Telegram allows about one message per second per chat).
    """

    def __init__(
        self,
        sender: Sender,
        *,
        chat_folder: Callable[[int], Path],
        edit_interval: float = 10.0,
        upload_limit: int = 50 * 1024 * 1024,
        admin_chat: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        retry_delay: float = 5.0,
        notify_attempts: int = 5,
        chat_interval: float = 1.0,
    ) -> None:
        self._sender = sender
        self._chat_folder = chat_folder
        self.edit_interval = edit_interval
        self.upload_limit = upload_limit
        self.admin_chat = admin_chat
        self._clock = clock
        self._sleep = sleep
        self._retry_delay = retry_delay
        self._notify_attempts = notify_attempts
        self._chat_interval = chat_interval
        self._chat_turn: dict[int, float] = {}
        """Per chat: the earliest time the next progress edit may be sent."""
        self._slots: dict[int, _Slot] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._notifiers: set[asyncio.Task[None]] = set()
        self._closed = False
        self.stats = BoardStats()

    # --- the subscriber ------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Take one manager event; never blocks (work goes to tasks)."""
        if self._closed:
            return
        if isinstance(event, EngineEvent):
            self._alert(event)
            return
        if not isinstance(event, TorrentEvent) or event.torrent.chat_id == 0:
            return  # chat 0: added by the local CLI, nobody to tell
        torrent = event.torrent
        slot = self._slots.get(torrent.id)
        if slot is None:
            slot = self._slots[torrent.id] = _Slot(torrent.id, torrent.chat_id,
                                                    torrent.message_id, torrent)
        else:
            slot.latest = torrent
            if slot.message_id is None and not slot.gone:
                slot.message_id = torrent.message_id
        if torrent.state.is_final:
            slot.confirm = False
        if isinstance(event, TorrentCompleted):
            self._notify(self._announce_completion(torrent, slot.message_id))
        elif isinstance(event, TorrentFailed):
            self._notify(self._deliver(torrent.chat_id, failure_text(torrent), None,
                                       slot.message_id))
        self._kick(slot)

    # --- what the handlers call ----------------------------------------------------------------

    def attach(self, torrent: Torrent, message_id: int, *, text: str,
               markup: InlineKeyboardMarkup | None) -> None:
        """A handler just sent ``text`` as the progress message of ``torrent``.

        Events that came before (while the reply was on its way) are kept: the newest snapshot
        is compared with what the reply shows, and edited in after ``edit_interval``.
        """
        if torrent.chat_id == 0 or self._closed:
            return
        slot = self._slots.get(torrent.id)
        if slot is None:
            slot = self._slots[torrent.id] = _Slot(torrent.id, torrent.chat_id, message_id,
                                                    torrent)
        slot.message_id, slot.gone = message_id, False
        slot.confirm = False
        slot.shown_text = text
        slot.shown_markup = markup_key(markup)
        slot.shown_key = _state_key(torrent, False)
        slot.shown_percent = percent(torrent)
        slot.not_before = self._clock() + self.edit_interval
        self._kick(slot)

    def show_now(self, torrent: Torrent, message_id: int, *, confirm: bool | None = None) -> None:
        """Edit the progress message at once (a button was pressed), with the newest snapshot.

        Parameters:
            torrent: a snapshot just read from the manager.
            message_id: the message whose button was pressed.
            confirm: show (True) or leave (False) the cancel confirmation; None keeps it.
        """
        if torrent.chat_id == 0 or self._closed:
            return
        slot = self._slots.get(torrent.id)
        if slot is None:
            slot = self._slots[torrent.id] = _Slot(torrent.id, torrent.chat_id, message_id,
                                                    torrent)
        slot.latest = torrent
        slot.message_id, slot.gone = message_id, False
        if confirm is not None:
            slot.confirm = confirm and not torrent.state.is_final
        slot.urgent += 1
        self._kick(slot)

    async def close(self, flush_timeout: float = 5.0) -> None:
        """Stop: give pending notifications ``flush_timeout`` seconds, cancel everything else."""
        self._closed = True
        if self._notifiers:
            await asyncio.wait(set(self._notifiers), timeout=flush_timeout)
        tasks = [*self._workers, *self._notifiers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._slots.clear()

    def tracked(self) -> list[int]:
        """Ids of the downloads the board holds a message for (for tests and logs)."""
        return sorted(self._slots)

    # --- the per-message worker ----------------------------------------------------------------

    def _kick(self, slot: _Slot) -> None:
        if slot.message_id is None:
            self._trim_orphans()
            return
        if slot.task is not None and not slot.task.done():
            if slot.is_urgent:
                slot.wake.set()
            return
        if self._wants_edit(slot):
            slot.task = self._start(self._workers, self._work(slot),
                                    f"progress-{slot.download_id}")
        elif slot.latest.state.is_final:
            self._slots.pop(slot.download_id, None)

    def _wants_edit(self, slot: _Slot) -> bool:
        if slot.message_id is None:
            return False
        if slot.is_urgent or slot.shown_key is None:
            return True
        torrent = slot.latest
        return (_state_key(torrent, slot.confirm) != slot.shown_key
                or abs(percent(torrent) - slot.shown_percent) >= PROGRESS_STEP)

    def _turn_wait(self, slot: _Slot) -> float:
        """Seconds until ``slot`` may be edited: its own interval and its chat's turn.

        A button press (urgent) never waits.
        """
        if slot.is_urgent:
            return 0.0
        turn = self._chat_turn.get(slot.chat_id, -math.inf)
        return max(slot.not_before, turn) - self._clock()

    async def _work(self, slot: _Slot) -> None:
        while self._wants_edit(slot):
            wait = self._turn_wait(slot)
            if wait > 0:
                await self._nap(slot, wait)
                continue
            # Take the chat's turn before awaiting anything: other messages of this chat
            # wait for the next one (no await between the check and this line).
            self._chat_turn[slot.chat_id] = self._clock() + self._chat_interval
            snapshot, confirm, urgent = slot.latest, slot.confirm, slot.urgent
            text = progress_text(snapshot, confirm=confirm)
            markup = progress_keyboard(snapshot, confirm=confirm)
            shown = (text, markup_key(markup))
            if shown == (slot.shown_text, slot.shown_markup):
                self._mark(slot, snapshot, confirm, shown, urgent, edited=False)
                continue
            assert slot.message_id is not None
            try:
                await self._sender.edit(slot.chat_id, slot.message_id, text, markup)
            except RetryAfter as error:
                delay = retry_seconds(error)
                self.stats.rate_limited += 1
                log.info("Telegram asks to wait %.0fs before editing message %s", delay,
                         slot.message_id)
                slot.not_before = max(slot.not_before, self._clock() + delay)
                await self._sleep(delay)  # Telegram's word: not shortened by a button press
                continue
            except BadRequest as error:  # before NetworkError: BadRequest is a NetworkError
                if is_not_modified(error):
                    self.stats.not_modified += 1
                elif _is_gone(error):
                    log.info("progress message %s of #%s is gone (%s); no more edits",
                             slot.message_id, slot.download_id, error.message)
                    slot.message_id, slot.gone = None, True
                    break
                else:
                    self.stats.refused += 1
                    log.warning("Telegram refused an edit of #%s: %s", slot.download_id,
                                error.message)
            except Forbidden as error:
                log.info("cannot edit in chat %s any more (%s)", slot.chat_id, error.message)
                slot.message_id, slot.gone = None, True
                break
            except NetworkError as error:
                self.stats.network_errors += 1
                log.info("editing #%s failed (%s); retrying in %.0fs", slot.download_id,
                         error.message, self._retry_delay)
                await self._sleep(self._retry_delay)
                continue
            else:
                self.stats.edits += 1
            self._mark(slot, snapshot, confirm, shown, urgent, edited=True)
        slot.task = None
        if slot.latest.state.is_final and self._slots.get(slot.download_id) is slot:
            self._slots.pop(slot.download_id, None)

    def _mark(self, slot: _Slot, snapshot: Torrent, confirm: bool,
              shown: tuple[str, tuple[Any, ...]], urgent: int, *, edited: bool) -> None:
        slot.shown_text, slot.shown_markup = shown
        slot.shown_key = _state_key(snapshot, confirm)
        slot.shown_percent = percent(snapshot)
        slot.urgent_done = max(slot.urgent_done, urgent)
        if edited:
            slot.not_before = self._clock() + self.edit_interval

    async def _nap(self, slot: _Slot, delay: float) -> None:
        """Sleep ``delay`` seconds, or less when a button press wakes the slot."""
        slot.wake.clear()
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(slot.wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    def _trim_orphans(self) -> None:
        """Slots waiting for :meth:`attach` are few; drop the oldest finished ones if not."""
        orphans = [s for s in self._slots.values() if s.message_id is None]
        if len(orphans) <= _MAX_ORPHANS:
            return
        for slot in orphans[: len(orphans) - _MAX_ORPHANS]:
            if slot.latest.state.is_final:
                self._slots.pop(slot.download_id, None)

    # --- new messages --------------------------------------------------------------------------

    async def _announce_completion(self, torrent: Torrent, reply_to: int | None) -> None:
        folder = self._chat_folder(torrent.chat_id)
        location = relative_location(torrent.path, folder)
        can_send = await asyncio.to_thread(deliverable_file, torrent.path, folder,
                                           self.upload_limit) is not None
        await self._deliver(torrent.chat_id, completion_text(torrent, location),
                            completion_keyboard(torrent, can_send=can_send), reply_to)

    def _alert(self, event: EngineEvent) -> None:
        if self.admin_chat is None:
            return
        kind = ("fatal" if isinstance(event, Aria2Fatal)
                else "restarted" if isinstance(event, Aria2Restarted)
                else "down" if isinstance(event, Aria2Down) else None)
        if kind is not None:
            self._notify(self._deliver(self.admin_chat, engine_alert_text(kind, event.detail),
                                       None))

    async def _deliver(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
                       reply_to: int | None = None) -> None:
        """Send one new message, retrying on 429 and network errors a few times."""
        for attempt in range(1, self._notify_attempts + 1):
            try:
                await self._sender.send(chat_id, text, markup, reply_to)
            except RetryAfter as error:
                self.stats.rate_limited += 1
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
                self.stats.network_errors += 1
                log.info("sending to chat %s failed (%s), attempt %d", chat_id, error.message,
                         attempt)
                await self._sleep(self._retry_delay * attempt)
            except TelegramError as error:
                log.warning("sending to chat %s failed: %s", chat_id, error.message)
                return
            else:
                self.stats.notifications += 1
                return
        log.warning("gave up sending a message to chat %s", chat_id)

    def _notify(self, work: Coroutine[Any, Any, None]) -> None:
        self._start(self._notifiers, work, "notify")

    def _start(self, tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None],
               name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        tasks.add(task)
        task.add_done_callback(self._finished(tasks))
        return task

    @staticmethod
    def _finished(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("a progress task failed", exc_info=task.exception())

        return done

