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
* a message that is gone (deleted, bot blocked or kicked, its group upgraded to a supergroup,
  whose chat the news then follow) is given up; any other refusal is not retried.

While a finished download is mirrored to the cloud, its message shows the upload the same
way (bytes, speed, ETA; 5 points of the upload, or a change of the mirror's state, earn an
edit), and the message is kept until the mirror ends.

News (completion, failure, a mirror's outcome, aria2c alerts) gets a **new** message
instead, from the manager's stored notices: an event that may bring one wakes
:class:`bot.news.News`. A final state's edit is a stored notice too, so that a restart or an
outage cannot leave a message at "downloading 80 %": News asks :meth:`ProgressBoard.show_final`
for it, which keeps to the rules above and answers once the final text is on screen.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.chatmoves import MovedChats
from bot.news import BoardStats, News, NoticeSource
from bot.sender import Sender, is_gone, is_not_modified, retry_seconds
from bot.tasks import TaskSet
from bot.views import markup_key, progress_keyboard, progress_percent, progress_text
from manager import (
    EngineEvent,
    Event,
    ManagerError,
    MirrorDone,
    MirrorFailed,
    Torrent,
    TorrentCompleted,
    TorrentEvent,
    TorrentFailed,
)

_NEWSWORTHY = (TorrentCompleted, TorrentFailed, MirrorDone, MirrorFailed)
"""Events whose change the store wrote with a notice (final states too: see ``_settled``)."""

__all__ = ["PROGRESS_STEP", "BoardStats", "ProgressBoard"]

log = logging.getLogger(__name__)

PROGRESS_STEP = 5
"""Percent points progress must move before a message is edited for progress alone."""

_MAX_ORPHANS = 256
_MAX_FINISHED = 512
"""Downloads whose final text the board remembers having shown (a late final-edit notice
then costs no request)."""


class _Outcome(enum.Enum):
    """What the worker does after a refused edit."""

    RETRY = "retry"
    GONE = "gone"
    SHOWN = "shown"


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
    shown: Torrent | None = None
    """The snapshot whose text is on screen (None: not known, e.g. after a restart)."""
    finals: list[tuple[Torrent, asyncio.Future[bool]]] = field(default_factory=list)
    """:meth:`ProgressBoard.show_final` calls waiting for their snapshot's state on screen."""
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def is_urgent(self) -> bool:
        return self.urgent != self.urgent_done


def _state_key(torrent: Torrent, confirm: bool) -> tuple[Any, ...]:
    """Everything whose change is worth an edit at once (progress aside)."""
    mirror = torrent.mirror
    mirror_key = (mirror.state, mirror.attempt, mirror.error, mirror.total_bytes > 0,
                  mirror.link) if mirror is not None else None
    return (torrent.state, torrent.stuck_reason, torrent.queue_position, torrent.error,
            torrent.name, torrent.total_bytes > 0, confirm, mirror_key)


def _settled(torrent: Torrent) -> bool:
    """Nothing more will move on its message: the download is final, and so is its mirror."""
    return torrent.state.is_final and (torrent.mirror is None or torrent.mirror.state.is_final)


def _shows(shown: Torrent | None, wanted: Torrent) -> bool:
    """The text on screen (of ``shown``) says as much as ``wanted``'s final edit would: the
    download's final state, and the mirror's end when ``wanted`` has one."""
    if shown is None or not shown.state.is_final:
        return False
    if wanted.mirror is None or not wanted.mirror.state.is_final:
        return True
    return shown.mirror is not None and shown.mirror.state.is_final


class ProgressBoard:
    """Keeps every download's progress message up to date; subscribe it to the manager.

    Parameters:
        sender: sends and edits messages (:class:`BotSender` in production).
        notices: the manager's outbox, which the news is sent from.
        edit_interval: least seconds between two edits of one message.
        admin_chat: chat for aria2c alerts, or None.
        moved: the chats Telegram moved (shared with the auth gate), which news follows.
        mirror_button: completion messages offer a "Mirror" button.
        link_button: completion messages offer a "Get link" button.
        app_url: progress and completion messages in private chats offer the Mini App
            (its HTTPS address; empty: no button).
        clock: monotonic clock (injected by tests).
        sleep: ``asyncio.sleep``-like (injected by tests).
        retry_delay: seconds before retrying after a network or 5xx error (news: the
            first retry; it doubles).
        chat_interval: least seconds between two progress edits in one chat, whichever
            messages they are (Telegram allows about one message per second per chat).
    """

    def __init__(
        self,
        sender: Sender,
        notices: NoticeSource,
        *,
        edit_interval: float = 10.0,
        admin_chat: int | None = None,
        moved: MovedChats | None = None,
        mirror_button: bool = False,
        link_button: bool = False,
        app_url: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        retry_delay: float = 5.0,
        chat_interval: float = 1.0,
    ) -> None:
        self._sender = sender
        self.edit_interval = edit_interval
        self.app_url = app_url
        self._clock = clock
        self._sleep = sleep
        self._retry_delay = retry_delay
        self._chat_interval = chat_interval
        self._chat_turn: dict[int, float] = {}
        """Per chat: the earliest time the next progress edit may be sent."""
        self._slots: dict[int, _Slot] = {}
        self._finished: OrderedDict[int, Torrent | None] = OrderedDict()
        """Settled downloads: what their message last showed, None if it is gone."""
        self._workers = TaskSet()
        self._closed = False
        self.stats = BoardStats()
        self._news = News(sender, notices, self.stats, show_final=self.show_final,
                          attach=self._attach_news, admin_chat=admin_chat,
                          moved=moved if moved is not None else MovedChats(), clock=clock,
                          sleep=sleep, retry_delay=retry_delay, mirror_button=mirror_button,
                          link_button=link_button, app_url=app_url)

    def start(self) -> None:
        """Send what is pending in the outbox (news from before a restart, an outage), and
        every notice stored from now on."""
        self._news.start()

    # --- the subscriber ------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Take one manager event; never blocks (work goes to tasks)."""
        if self._closed:
            return
        if isinstance(event, EngineEvent):
            self._news.wake()
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
        if isinstance(event, _NEWSWORTHY) or _settled(torrent):
            self._news.wake()
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
        slot = self._slot_for(torrent, message_id)
        slot.confirm = False
        slot.shown_text = text
        slot.shown_markup = markup_key(markup)
        slot.shown_key = _state_key(torrent, False)
        slot.shown_percent = progress_percent(torrent)
        slot.shown = torrent
        slot.not_before = self._clock() + self.edit_interval
        self._kick(slot)

    def _attach_news(self, torrent: Torrent, message_id: int, text: str,
                     markup: InlineKeyboardMarkup | None) -> None:
        """The news sent ``text`` as the progress message of ``torrent`` (a feed's add)."""
        self.attach(torrent, message_id, text=text, markup=markup)

    def show_now(self, torrent: Torrent, message_id: int, *, confirm: bool | None = None) -> None:
        """Edit the progress message at once (a button was pressed), with the newest snapshot.

        Parameters:
            torrent: a snapshot just read from the manager.
            message_id: the message whose button was pressed.
            confirm: show (True) or leave (False) the cancel confirmation; None keeps it.
        """
        if torrent.chat_id == 0 or self._closed:
            return
        slot = self._slot_for(torrent, message_id)
        slot.latest = torrent
        if confirm is not None:
            slot.confirm = confirm and not torrent.state.is_final
        slot.urgent += 1
        self._kick(slot)

    async def show_final(self, torrent: Torrent) -> bool:
        """Have the final state of ``torrent`` (a snapshot read from the manager) on its
        progress message, edited by the rules of this board; for a final-edit notice.

        Returns:
            True once the text on screen shows it (at once if it already does), False if the
            message is gone (deleted, bot blocked) or there is none.
        """
        if self._closed:
            raise asyncio.CancelledError  # stopping: the notice stays pending
        if torrent.message_id is None:
            return False
        if torrent.id in self._finished:  # settled here before: gone (None), or shown
            shown = self._finished[torrent.id]
            if shown is None or _shows(shown, torrent):
                return shown is not None
        slot = self._slots.get(torrent.id)
        if slot is None:
            slot = self._slot_for(torrent, torrent.message_id)
        elif slot.gone:
            return False
        elif slot.message_id is None:
            slot.message_id = torrent.message_id
        if _shows(slot.shown, torrent):
            return True
        if not _shows(slot.latest, torrent):
            slot.latest = torrent  # newer than what the board was told (e.g. a restart)
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        slot.finals.append((torrent, answer))
        self._kick(slot)
        return await answer

    def _answer_finals(self, slot: _Slot) -> None:
        """Answer the :meth:`show_final` calls that the text on screen (or its loss) settles."""
        waiting = []
        for wanted, answer in slot.finals:
            if answer.done():
                continue
            if slot.gone:
                answer.set_result(False)
            elif _shows(slot.shown, wanted):
                answer.set_result(True)
            else:
                waiting.append((wanted, answer))
        slot.finals = waiting

    def _release(self, slot: _Slot) -> None:
        """Forget a settled slot; remember what it showed, for a late final-edit notice."""
        self._answer_finals(slot)
        if self._slots.get(slot.download_id) is slot:
            self._slots.pop(slot.download_id, None)
        if slot.shown is not None or slot.gone:
            self._finished[slot.download_id] = None if slot.gone else slot.shown
            self._finished.move_to_end(slot.download_id)
            while len(self._finished) > _MAX_FINISHED:
                self._finished.popitem(last=False)

    def _slot_for(self, torrent: Torrent, message_id: int) -> _Slot:
        """The slot of ``torrent`` (made if new), now showing as ``message_id``."""
        slot = self._slots.get(torrent.id)
        if slot is None:
            slot = self._slots[torrent.id] = _Slot(torrent.id, torrent.chat_id, message_id,
                                                    torrent)
        slot.message_id, slot.gone = message_id, False
        return slot

    async def close(self, flush_timeout: float = 5.0) -> None:
        """Stop: give pending notifications ``flush_timeout`` seconds, cancel everything else."""
        self._closed = True
        await self._news.close(flush_timeout)
        await self._workers.cancel()
        self._slots.clear()

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
            slot.task = self._workers.start(self._work(slot), f"progress-{slot.download_id}")
        elif _settled(slot.latest):
            self._release(slot)
        else:
            self._answer_finals(slot)

    def _wants_edit(self, slot: _Slot) -> bool:
        if slot.message_id is None:
            return False
        if slot.is_urgent or slot.shown_key is None:
            return True
        torrent = slot.latest
        return (_state_key(torrent, slot.confirm) != slot.shown_key
                or abs(progress_percent(torrent) - slot.shown_percent) >= PROGRESS_STEP)

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
            markup = progress_keyboard(snapshot, confirm=confirm, app_url=self.app_url)
            shown = (text, markup_key(markup))
            if shown == (slot.shown_text, slot.shown_markup):
                self._mark(slot, snapshot, confirm, shown, urgent, edited=False)
                continue
            assert slot.message_id is not None
            try:
                await self._sender.edit(slot.chat_id, slot.message_id, text, markup)
            except TelegramError as error:
                outcome = await self._edit_failed(slot, error)
                if outcome is _Outcome.RETRY:
                    continue
                if outcome is _Outcome.GONE:
                    break
            else:
                self.stats.edits += 1
            self._mark(slot, snapshot, confirm, shown, urgent, edited=True)
        slot.task = None
        self._after_work(slot)

    async def _edit_failed(self, slot: _Slot, error: TelegramError) -> _Outcome:
        """What a refused edit means: wait and try again, the message is gone (the slot is
        marked so), or it counts as shown (not modified; a refusal no retry changes)."""
        if isinstance(error, RetryAfter):
            delay = retry_seconds(error)
            self.stats.rate_limited += 1
            log.info("Telegram asks to wait %.0fs before editing message %s", delay,
                     slot.message_id)
            slot.not_before = max(slot.not_before, self._clock() + delay)
            await self._sleep(delay)  # Telegram's word: not shortened by a button press
            return _Outcome.RETRY
        if isinstance(error, BadRequest) and is_not_modified(error):
            self.stats.not_modified += 1
            return _Outcome.SHOWN
        if isinstance(error, ChatMigrated):
            # The group is a supergroup now: its old messages cannot be edited any more;
            # the download's news follow the chat to its new id.
            log.info("progress message %s of #%s stays in the old group %s (now %s)",
                     slot.message_id, slot.download_id, slot.chat_id, error.new_chat_id)
            slot.message_id, slot.gone = None, True
            await self.follow_migration(slot.chat_id, error.new_chat_id)
            return _Outcome.GONE
        if isinstance(error, Forbidden) or (isinstance(error, BadRequest) and is_gone(error)):
            log.info("progress message %s of #%s is gone (%s); no more edits",
                     slot.message_id, slot.download_id, error.message)
            slot.message_id, slot.gone = None, True
            return _Outcome.GONE
        if isinstance(error, NetworkError) and not isinstance(error, BadRequest):
            self.stats.network_errors += 1
            log.info("editing #%s failed (%s); retrying in %.0fs", slot.download_id,
                     error.message, self._retry_delay)
            await self._sleep(self._retry_delay)
            return _Outcome.RETRY
        self.stats.refused += 1  # a refusal no retry changes: not sent again
        log.warning("Telegram refused an edit of #%s: %s", slot.download_id, error.message)
        return _Outcome.SHOWN

    async def follow_migration(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: the chat's downloads and news follow it (a failure to
        record it is logged; the news' next attempt at the old chat follows it again)."""
        try:
            await self._news.follow_migration(old_chat_id, new_chat_id)
        except ManagerError as error:
            log.warning("could not move chat %s to %s yet: %s", old_chat_id, new_chat_id, error)

    def _after_work(self, slot: _Slot) -> None:
        """A worker ended: let go of a settled slot; a gone message answers its finals."""
        if _settled(slot.latest):
            self._release(slot)
        else:
            self._answer_finals(slot)

    def _mark(self, slot: _Slot, snapshot: Torrent, confirm: bool,
              shown: tuple[str, tuple[Any, ...]], urgent: int, *, edited: bool) -> None:
        slot.shown_text, slot.shown_markup = shown
        slot.shown_key = _state_key(snapshot, confirm)
        slot.shown_percent = progress_percent(snapshot)
        slot.shown = snapshot
        slot.urgent_done = max(slot.urgent_done, urgent)
        if edited:
            slot.not_before = self._clock() + self.edit_interval
        self._answer_finals(slot)

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
            if _settled(slot.latest):
                self._slots.pop(slot.download_id, None)
