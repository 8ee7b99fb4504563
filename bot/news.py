"""News: the messages the bot sends on its own, from the manager's stored notices (the outbox).

The manager stores a notice with the change that causes it (a completion, a failure, a
mirror's outcome, a final state, an aria2c alert: :mod:`manager.notices`). :class:`News` reads
the pending ones (at start, and whenever the store has written one, whatever wrote it: no
event needs to come with it), at most a few dozen per chat at a time so that one chat's
failures never hide another chat's news, sends each and marks it only when Telegram has
confirmed it, so a notice outlives a restart, a crash and an outage of any length, and is
sent once. A completion (size, time taken, where, a "Send file" button
for a single file, a "Mirror" button when mirroring is on request, a "Get link" button when
the link server is on), a
failure (with the reason) and a mirror's outcome go to the download's chat as a reply to its
progress message; a final state is the progress message's last edit (done by the board, see
:meth:`bot.progress.ProgressBoard.show_final`); aria2c alerts go to the admin chat.

Network errors, outages and 429s keep a notice pending, tried again after a delay that doubles
up to :data:`MAX_RETRY_DELAY`. A group upgraded to a supergroup (``ChatMigrated``) is followed:
the chat's downloads and pending news move to the new chat id, the move is stored (and said
once in the log), and the news is sent there at once; from then on every notice for the old
id, an alert for an admin chat that moved too, goes to the new one (:mod:`bot.chatmoves`).
"Where" and "Send file" look in the download's own folder, the old chat's for a download
made before the move (files are never moved). A refusal that no retry can change (chat not
found, bot blocked or kicked, a text Telegram finds too long, a download deleted meanwhile)
drops it with a log line; a final edit whose progress message was deleted is dropped too
(the completion or failure message already tells the outcome, and a message the user deleted
is not brought back). A lost answer (a time-out, a connection dropped after the request went
out) is tried again: news is sent at least once (the log says it may be duplicated), and
otherwise the window for a duplicate is one SQLite write: the row is marked right after
Telegram's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from telegram import InlineKeyboardMarkup
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.chatmoves import MovedChats
from bot.feednews import SUMMARY_OVER, feed_note, feed_summary_text
from bot.files import deliverable_file
from bot.sender import Sender, answer_lost, retry_seconds
from bot.tasks import TaskSet
from bot.views import (
    completion_keyboard,
    completion_text,
    engine_alert_text,
    failure_text,
    mirror_done_text,
    mirror_failed_text,
    progress_keyboard,
    progress_text,
    relative_location,
)
from manager import DownloadNotFound, ManagerError, Notice, NoticeKind, Torrent

__all__ = ["MAX_RETRY_DELAY", "BoardStats", "News", "NoticeSource"]

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 30.0
"""Longest wait between two attempts at one notice: a long outage is noticed this soon."""

_ALERT_WORDS = {NoticeKind.ARIA2_DOWN: "down", NoticeKind.ARIA2_RESTARTED: "restarted",
                NoticeKind.ARIA2_FATAL: "fatal"}


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
    dropped: int = 0
    """Notices given up: chat gone, bot blocked, download deleted."""


class NoticeSource(Protocol):
    """What :class:`News` needs of the manager (:class:`manager.TorrentManager` is one)."""

    async def pending_notices(self, per_chat: int = 50) -> list[Notice]: ...

    def watch_notices(self, watcher: Callable[[], None]) -> Callable[[], None]: ...

    async def notice_done(self, notice_id: int, dropped: str | None = None) -> None: ...

    async def notice_failed(self, notice_id: int) -> None: ...

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> int: ...

    async def get(self, download_id: int, chat_id: int | None = None) -> Torrent: ...

    async def set_message(self, download_id: int, message_id: int) -> None: ...


class _Drop(Exception):
    """A notice no retry can deliver; the message says why (for the log and the row)."""


class News:
    """Sends the manager's pending notices, each once, and marks them.

    Parameters:
        sender: sends messages (:class:`~bot.sender.BotSender` in production).
        notices: the manager's outbox.
        stats: the counters to bump (shared with the progress board).
        show_final: does a download's last progress edit; True once it is on screen,
            False when its message is gone (the board's :meth:`show_final`).
        attach: has the board edit a message just sent as a download's progress (a feed's
            add): ``(torrent, message_id, text, markup)``.
        admin_chat: chat for aria2c alerts, or None (alerts are then dropped).
        moved: the chats Telegram moved (shared with the auth gate); the news learns each
            move it follows and sends to where a chat is now.
        clock: monotonic clock; sleep: ``asyncio.sleep``-like (both injected by tests).
        retry_delay: seconds before the second attempt at a notice (doubles each time).
        mirror_button: completion messages offer a "Mirror" button.
        link_button: completion messages offer a "Get link" button.
        app_url: messages in private chats offer the Mini App (empty: no button).
    """

    def __init__(
        self,
        sender: Sender,
        notices: NoticeSource,
        stats: BoardStats,
        *,
        show_final: Callable[[Torrent], Awaitable[bool]],
        attach: Callable[[Torrent, int, str, InlineKeyboardMarkup | None], None],
        admin_chat: int | None,
        moved: MovedChats,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]],
        retry_delay: float,
        mirror_button: bool = False,
        link_button: bool = False,
        app_url: str = "",
    ) -> None:
        self._sender = sender
        self._notices = notices
        self._stats = stats
        self._show_final = show_final
        self._attach = attach
        self._admin_chat = admin_chat
        self._moved = moved
        self._clock = clock
        self._sleep = sleep
        self._retry_delay = retry_delay
        self._mirror_button = mirror_button
        self._link_button = link_button
        self._app_url = app_url
        self._wake = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._sending: dict[int, asyncio.Task[None]] = {}
        self._due: dict[int, float] = {}
        """Notice id → when it may be tried again (after a failed attempt)."""
        self._unmarked: dict[int, str | None] = {}
        """Notice id → its drop reason (None: sent), for those gone whose mark failed."""
        self._tasks = TaskSet()
        self._closed = False
        self._unwatch: Callable[[], None] | None = None

    def start(self) -> None:
        """Send what is pending, and from now on every notice as soon as it is stored (the
        store says so, whatever wrote it: no event needs to come with it)."""
        if self._unwatch is None and not self._closed:
            self._unwatch = self._notices.watch_notices(self.wake)
        self.wake()

    def wake(self) -> None:
        """Look for pending notices now (at start, and after an event that may bring one)."""
        if self._closed:
            return
        self._wake.set()
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_forever(),
                                                                  name="news")

    async def close(self, flush_timeout: float) -> None:
        """Give pending notices ``flush_timeout`` seconds to go out (one last read of the
        outbox, then the sends, and the marks still owed for those gone), then stop; the
        rest stay stored for the next start."""
        self._closed = True
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self._wake.set()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=flush_timeout)
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._tasks.wait(flush_timeout)
        await self._tasks.cancel()

    # --- reading the outbox --------------------------------------------------------------------

    async def _read_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                pending = await self._notices.pending_notices()
            except ManagerError as error:
                log.warning("cannot read the pending notices (%s); trying again", error)
                await self._nap(self._retry_delay)
                continue
            now = self._clock()
            listed = {notice.id for notice in pending}
            # A notice marked or deleted meanwhile (its download purged) is due no more.
            self._due = {i: at for i, at in self._due.items() if i in listed}
            self._unmarked = {i: why for i, why in self._unmarked.items() if i in listed}
            # At the last read, a notice gone but not marked is marked whenever its turn:
            # forgotten here, it would go out again after the next start.
            ready = [notice for notice in pending if notice.id not in self._sending and (
                (self._closed and notice.id in self._unmarked)
                or self._due.get(notice.id, -math.inf) <= now)]
            for batch in _batches(ready):
                for notice in batch:
                    self._due.pop(notice.id, None)
                deliver = (self._deliver_summary if len(batch) > 1
                           else lambda one: self._deliver(one[0]))
                task = self._tasks.start(self._send(batch, deliver), f"notice-{batch[0].id}")
                for notice in batch:
                    self._sending[notice.id] = task
            if self._closed:
                return  # the last read, by close()
            await self._nap(min(self._due.values(), default=math.inf) - now)

    async def _nap(self, delay: float) -> None:
        """Sleep until a notice is due again, or until :meth:`wake`."""
        if self._wake.is_set():
            return
        waker = asyncio.ensure_future(self._wake.wait())
        waiting = {waker}
        if delay < math.inf:
            waiting.add(asyncio.ensure_future(self._sleep(max(delay, 0.0))))
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in waiting:
                future.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)

    # --- one notice --------------------------------------------------------------------------

    async def _send(self, notices: list[Notice],
                    deliver: Callable[[list[Notice]], Awaitable[None]]) -> None:
        """Deliver ``notices`` (one, or a feed's adds told together) and mark each, or keep
        them pending for a retry; those gone already are only marked."""
        owed = [notice for notice in notices if notice.id in self._unmarked]
        rest = [notice for notice in notices if notice.id not in self._unmarked]
        try:
            for notice in owed:
                await self._mark(notice, self._unmarked[notice.id])
            if rest:
                await self._attempt(rest, deliver)
        finally:
            for notice in notices:
                self._sending.pop(notice.id, None)

    async def _attempt(self, notices: list[Notice],
                       deliver: Callable[[list[Notice]], Awaitable[None]]) -> None:
        first = notices[0]
        try:
            await deliver(notices)
        except _Drop as reason:
            self._stats.dropped += len(notices)
            log.info("notice %s (%s) dropped: %s", _ids(notices), first.kind.value, reason)
            for notice in notices:
                await self._mark(notice, dropped=str(reason))
        except RetryAfter as error:
            self._stats.rate_limited += 1
            for notice in notices:
                self._retry(notice, retry_seconds(error))
        except TelegramError as error:  # network errors, outages, 5xx: stays pending
            self._stats.network_errors += 1
            delay = min(MAX_RETRY_DELAY, self._retry_delay * 2 ** first.tries)
            log.info("notice %s to chat %s not sent (%s); trying again in %.0fs%s",
                     _ids(notices), first.chat_id, error.message, delay,
                     " (no answer: it may have arrived, so it may be duplicated)"
                     if answer_lost(error) else "")
            for notice in notices:
                self._retry(notice, delay)
                try:
                    await self._notices.notice_failed(notice.id)
                except ManagerError as store_error:  # busy store: the retry still stands
                    log.warning("notice %s: its failed try is not counted (%s)", notice.id,
                                store_error)
        except ManagerError as error:  # the store is busy or failing: not Telegram's doing
            log.warning("notice %s not sent: %s; trying again", _ids(notices), error)
            for notice in notices:
                self._retry(notice, self._retry_delay)
        else:
            for notice in notices:
                await self._mark(notice)

    async def _mark(self, notice: Notice, dropped: str | None = None) -> None:
        """Mark a notice sent (or dropped). A store too busy to take it now must not make
        it go twice: it is remembered here and only marked at its next turn."""
        try:
            await self._notices.notice_done(notice.id, dropped)
        except ManagerError as error:
            log.warning("notice %s %s but not marked so (%s); marking it again", notice.id,
                        "dropped" if dropped is not None else "sent", error)
            self._unmarked[notice.id] = dropped
            self._retry(notice, self._retry_delay)
        else:
            self._unmarked.pop(notice.id, None)

    def _retry(self, notice: Notice, delay: float) -> None:
        self._due[notice.id] = self._clock() + delay
        self._wake.set()  # the reader recomputes its nap

    async def _deliver(self, notice: Notice) -> None:
        """Send one notice; returns when Telegram confirmed it.

        Raises:
            _Drop: nothing can deliver it; TelegramError: try again later.
        """
        if notice.kind.is_engine:
            if self._admin_chat is None:
                raise _Drop("no admin chat")
            text = engine_alert_text(_ALERT_WORDS[notice.kind], notice.detail)
            await self._new_message(self._moved.current(self._admin_chat), text, None, None)
            return
        if notice.kind is NoticeKind.FEED_FAILING:
            assert notice.chat_id is not None
            await self._new_message(self._moved.current(notice.chat_id),
                                    html.escape(notice.detail), None, None)
            return
        assert notice.download_id is not None
        try:
            torrent = await self._notices.get(notice.download_id)
        except DownloadNotFound:
            raise _Drop("the download was deleted") from None
        if notice.kind is NoticeKind.FINAL:
            if not await self._show_final(torrent):
                raise _Drop("the progress message is gone")
            return
        if notice.kind is NoticeKind.FEED_ADDED:
            await self._show_feed_add(torrent, notice.detail)
            return
        text, markup = await self._render(notice.kind, torrent)
        chat_id = self._moved.current(torrent.chat_id)
        await self._new_message(chat_id, text, markup,
                                torrent.message_id if chat_id == torrent.chat_id else None)

    async def _show_feed_add(self, torrent: Torrent, feed_name: str) -> None:
        """A feed's add, told as a manual add is: its progress message, edited from then
        on by the board (a download already over gets its last state, no buttons)."""
        text = progress_text(torrent, note=feed_note(feed_name))
        markup = (None if torrent.state.is_final
                  else progress_keyboard(torrent, app_url=self._app_url))
        chat_id = self._moved.current(torrent.chat_id)
        message_id = await self._new_message(chat_id, text, markup, None)
        if message_id is None or torrent.state.is_final or chat_id != torrent.chat_id:
            return
        self._attach(torrent, message_id, text, markup)
        try:
            await self._notices.set_message(torrent.id, message_id)
        except ManagerError as error:  # the board knows it; only a restart forgets it
            log.warning("could not store the progress message of #%s: %s", torrent.id, error)

    async def _deliver_summary(self, notices: list[Notice]) -> None:
        """Several adds of one feed, pending together: one message names them all."""
        torrents: list[Torrent] = []
        for notice in notices:
            assert notice.download_id is not None
            with contextlib.suppress(DownloadNotFound):  # removed meanwhile: counted only
                torrents.append(await self._notices.get(notice.download_id))
        first = notices[0]
        assert first.chat_id is not None
        text = feed_summary_text(first.detail, torrents, gone=len(notices) - len(torrents))
        await self._new_message(self._moved.current(first.chat_id), text, None, None)

    async def _render(self, kind: NoticeKind,
                      torrent: Torrent) -> tuple[str, InlineKeyboardMarkup | None]:
        if kind is NoticeKind.COMPLETED:
            folder = Path(torrent.directory or "")  # always set for a stored download
            can_send = await asyncio.to_thread(deliverable_file, torrent.path,
                                               folder) is not None
            return (completion_text(torrent, relative_location(torrent.path, folder)),
                    completion_keyboard(torrent, can_send=can_send,
                                        can_mirror=self._mirror_button,
                                        can_link=self._link_button,
                                        app_url=self._app_url))
        if kind is NoticeKind.FAILED:
            return failure_text(torrent), None
        if kind is NoticeKind.MIRRORED:
            return mirror_done_text(torrent), None
        return mirror_failed_text(torrent), None

    async def follow_migration(self, old_chat_id: int, new_chat_id: int) -> None:
        """Telegram moved a group to a supergroup: its downloads and news (and the alerts,
        when it is the admin chat) go to the new chat id from now on, and it is served
        there where the group was allowed, across restarts (the move is stored first).

        Raises:
            ManagerError: the store could not record it (the next attempt tries again).
        """
        await self._notices.move_chat(old_chat_id, new_chat_id)
        if self._moved.learn(old_chat_id, new_chat_id):
            log.warning("Telegram upgraded group %s to the supergroup %s: the bot follows it "
                        "there (its downloads, news, commands where the group was allowed, "
                        "alerts if it is the admin chat)", old_chat_id, new_chat_id)

    async def _new_message(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
                           reply_to: int | None) -> int | None:
        """Send it; its message id, or None when it went to a chat Telegram moved it to."""
        try:
            message_id = await self._sender.send(chat_id, text, markup, reply_to)
        except ChatMigrated as error:
            # The group became a supergroup: the news goes there, on its own (the progress
            # message it answered stays behind in the old group).
            await self.follow_migration(chat_id, error.new_chat_id)
            await self._new_message(error.new_chat_id, text, markup, None)
            return None
        except BadRequest as error:  # before TelegramError: a 400 is final (chat not found…)
            if reply_to is not None and "replied" in error.message.lower():
                # The progress message was deleted: the news goes out on its own.
                return await self._new_message(chat_id, text, markup, None)
            raise _Drop(f"Telegram refused it: {error.message}") from None
        except Forbidden as error:
            raise _Drop(f"cannot write to chat {chat_id}: {error.message}") from None
        self._stats.notifications += 1
        return message_id


def _batches(ready: list[Notice]) -> list[list[Notice]]:
    """``ready`` as the sends to make: one notice each, but the adds of one feed in one chat
    told together when there are more than :data:`~bot.feednews.SUMMARY_OVER` of them."""
    feeds: dict[tuple[int | None, str], list[Notice]] = {}
    for notice in ready:
        if notice.kind is NoticeKind.FEED_ADDED:
            feeds.setdefault((notice.chat_id, notice.detail), []).append(notice)
    told = {notice.id for group in feeds.values() if len(group) > SUMMARY_OVER
            for notice in group}
    batches = [group for group in feeds.values() if len(group) > SUMMARY_OVER]
    batches += [[notice] for notice in ready if notice.id not in told]
    return sorted(batches, key=lambda batch: batch[0].id)


def _ids(notices: list[Notice]) -> str:
    return ",".join(str(notice.id) for notice in notices)
