"""Sending finished files into a chat: whole or in numbered parts, streamed from disk.

A :class:`Deliveries` runs one send job per chat and download at a time (a second press
while one runs is refused, not queued twice). A job sends its files one after the other;
each file goes as one document when it fits in one upload, else in parts (see
:mod:`bot.parts`). Memory stays bounded whatever the size:

* each part is a :class:`~bot.partreader.PartReader` (a byte range of the file) that httpx
  reads in 64 KiB chunks while the request goes out, so only a chunk is in memory;
* with a local Bot API server in ``--local`` mode, a file sent whole is passed by path
  (python-telegram-bot's ``local_mode`` turns it into a ``file://`` URI) and the server
  reads it from disk: ariabot holds none of it.

What Telegram confirmed is never sent again: each confirmed part is stored by the manager
(per download, chat and file, with the file's size and modification time and the part
size), so a job started again after a stop, a failure or a restart of ariabot sends only
the parts not confirmed, and a file that arrived whole is not sent again. Refusals are
classified once (:func:`classify`): 429 waits as asked, 5xx and network errors are retried
with a doubling delay, and a refusal Telegram gives for the part itself (400, 403, 413 too
big) ends the job with its reason. A lost answer (a time-out, or the connection dropped
after the whole part went out) is retried too, like news: delivery is *at least once*,
since a missing part is worse than a rare duplicate (a duplicated part has the same name
and bytes, so rejoining still works); the log says it may be duplicated.

Every job keeps a status message up to date (which file, which part, how far, a Stop
button), edited at most every ``edit_interval`` seconds, and says how the job ended.
Pacing against Telegram's limits is the Bot's rate limiter's job, not this module's.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from telegram import Bot, InputFile, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.partreader import PartReader
from bot.parts import Part, part_caption, plan_parts
from bot.sender import is_not_modified, retry_seconds
from bot.sendviews import (
    SendState,
    SendStatus,
    retry_note,
    send_status_keyboard,
    send_status_text,
)
from bot.tasks import TaskSet
from manager import FilePlan, ManagerError

__all__ = ["LOCAL_LIMIT", "Deliveries", "OutFile", "PartLedger", "Verdict", "classify"]

log = logging.getLogger(__name__)

LOCAL_LIMIT = 2000 * 1024 * 1024
"""The largest upload a local Bot API server (``--local``) accepts."""

_PART_READ_TIMEOUT = 120.0
"""Seconds to wait for Telegram's answer once a part is uploaded."""
_PATH_READ_TIMEOUT = 3600.0
"""By path the local server answers only once it has uploaded the file itself."""
_WRITE_TIMEOUT = 600.0
_CLOSE_GRACE = 5.0
"""Seconds the jobs get to say they stopped when ariabot stops."""
_MAX_RETRY_DELAY = 60.0


class PartLedger(Protocol):
    """Where the parts Telegram confirmed are stored (the manager)."""

    async def sent_parts(self, plan: FilePlan) -> frozenset[int]: ...

    async def record_sent_part(self, plan: FilePlan, part: int) -> None: ...


@dataclass(frozen=True)
class OutFile:
    """One file to send, checked by the caller to be a download's own, whole on disk.

    Attributes:
        index: aria2's 1-based index of the file in the download.
        name: its path within the download's chat folder, shown in the chat (never the
            server's absolute path).
        path: the resolved absolute path (never shown).
        size: its size when it was checked.
        mtime_ns: its modification time then; a file that changed since is not sent.
    """

    index: int
    name: str
    path: Path
    size: int
    mtime_ns: int


class Verdict(enum.Enum):
    """What to do after a part was refused."""

    RETRY = "retry"
    FINAL = "final"


def classify(error: TelegramError, *, body_sent: bool) -> tuple[Verdict, str, float | None]:
    """Read a refused upload: ``(verdict, reason in words, seconds to wait or None)``.

    Parameters:
        error: what python-telegram-bot raised.
        body_sent: the whole part had gone out before the error: an answer lost then
            leaves it unknown whether Telegram has the part; it is sent again (at least
            once), and the reason says it may be duplicated.
    """
    if isinstance(error, RetryAfter):
        wait = retry_seconds(error)
        return Verdict.RETRY, f"Telegram asked to wait {wait:g}s", wait
    if isinstance(error, BadRequest):
        return Verdict.FINAL, f"Telegram refused it: {error.message}", None
    if isinstance(error, Forbidden):
        return Verdict.FINAL, "the bot may not send files to this chat", None
    if isinstance(error, NetworkError):
        text = error.message.lower()
        if "(413)" in text or "entity too large" in text:
            return (Verdict.FINAL, "too big for the Bot API server (413 Request Entity Too "
                    "Large): the upload limit is set higher than the server accepts", None)
        transport = isinstance(error, TimedOut) or isinstance(error.__cause__,
                                                              httpx.TransportError)
        if transport and body_sent:
            return (Verdict.RETRY, "Telegram did not answer after the upload: sent again, "
                    "it may be duplicated", None)
        reason = "timed out" if isinstance(error, TimedOut) else (
            "network error" if transport else f"server error: {error.message}")
        return Verdict.RETRY, reason, None
    return Verdict.FINAL, f"Telegram refused it: {error.message}", None


class _Stop(Exception):
    """The job ends early: ``state`` and why."""

    def __init__(self, state: SendState, reason: str | None = None) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


@dataclass
class _Job:
    chat_id: int
    download_id: int
    title: str
    files: tuple[OutFile, ...]
    reply_to: int | None
    total_bytes: int
    status_id: int | None = None
    file_number: int = 1
    part: Part | None = None
    file_confirmed: int = 0
    done_before: int = 0
    uploads: int = 0
    note: str | None = None
    reader: PartReader | None = None
    in_flight: asyncio.Future[Any] | None = None
    waiting: bool = False
    """``in_flight`` is a wait before a retry (not an upload)."""
    stop_requested: bool = False
    stop_reason: str | None = None
    """Why it was stopped, when not by its Stop button (ariabot stopping)."""
    last_edit: float = field(default=-1e9)
    last_text: str = ""

    @property
    def current(self) -> OutFile:
        return self.files[self.file_number - 1]

    def status(self, state: SendState = SendState.SENDING,
               reason: str | None = None) -> SendStatus:
        part = self.part
        going = self.reader.sent if self.reader is not None else 0
        return SendStatus(
            state=state, title=self.title, download_id=self.download_id,
            file_number=self.file_number, file_count=len(self.files),
            file_name=self.current.name, file_size=self.current.size,
            part=part.number if part else 1, part_count=part.count if part else 1,
            file_done=self.file_confirmed + going,
            done_bytes=self.done_before + self.file_confirmed + going,
            total_bytes=self.total_bytes, uploads=self.uploads,
            note=self.note if state is SendState.SENDING else None, reason=reason,
        )


class Deliveries:
    """Runs the send jobs of every chat.

    Parameters:
        bot: the Bot (in ``local_mode`` when the server runs with ``--local``).
        ledger: stores the parts Telegram confirmed (the manager).
        limit: the largest upload in bytes: the part size.
        local_mode: send a file that fits in one upload by path (the server reads it).
        edit_interval: least seconds between two edits of a status message.
        attempts: tries for one part before the job gives up.
        retry_delay: seconds before the first retry of a part (doubling).
        sleep: ``asyncio.sleep``-like (injected by tests).
        clock: monotonic clock (injected by tests).
    """

    def __init__(self, bot: Bot, ledger: PartLedger, *, limit: int, local_mode: bool = False,
                 edit_interval: float = 3.0, attempts: int = 5, retry_delay: float = 2.0,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._bot = bot
        self._ledger = ledger
        self._limit = limit
        self._local_mode = local_mode
        self._edit_interval = edit_interval
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._sleep = sleep
        self._clock = clock
        self._jobs: dict[tuple[int, int], _Job] = {}
        self._tasks = TaskSet()

    @property
    def limit(self) -> int:
        """The part size in bytes."""
        return self._limit

    def busy(self, chat_id: int, download_id: int) -> bool:
        """A send of this download to this chat is under way."""
        return (chat_id, download_id) in self._jobs

    def start(self, chat_id: int, download_id: int, title: str, files: Sequence[OutFile],
              reply_to: int | None) -> bool:
        """Start sending ``files`` (in order) to ``chat_id``, in the background.

        Returns:
            False, and nothing starts, when this download is already being sent there or
            there is nothing to send.
        """
        key = (chat_id, download_id)
        if key in self._jobs or not files:
            return False
        job = _Job(chat_id, download_id, title, tuple(files), reply_to,
                   total_bytes=sum(f.size for f in files))
        self._jobs[key] = job
        self._tasks.start(self._run(job), f"send-{chat_id}-{download_id}")
        return True

    def cancel(self, chat_id: int, download_id: int) -> bool:
        """Stop this download's send to this chat: a part still being uploaded is aborted
        (Telegram never gets it), one already uploaded is waited for (so it is known
        whether it arrived); no further part starts.

        Returns:
            False when no such send is under way.
        """
        job = self._jobs.get((chat_id, download_id))
        if job is None:
            return False
        job.stop_requested = True
        uploading = job.reader is not None and job.reader.sent < job.reader.length
        if job.in_flight is not None and (job.waiting or uploading):
            job.in_flight.cancel()
        return True

    async def close(self, reason: str = "ariabot stopped") -> None:
        """Stop every job as its Stop button does, so that its status message says it
        stopped and why (a user pressing Send again later sends only what did not arrive),
        then cancel what is left after :data:`_CLOSE_GRACE` seconds (a part whose upload
        is done waits for Telegram's answer)."""
        for job in list(self._jobs.values()):
            job.stop_reason = reason
            self.cancel(job.chat_id, job.download_id)
        await self._tasks.wait(_CLOSE_GRACE)
        await self._tasks.cancel()

    # --- the job ---------------------------------------------------------------------------

    async def _run(self, job: _Job) -> None:
        state, reason = SendState.DONE, None
        try:
            await self._show(job, force=True)
            for number, out in enumerate(job.files, 1):
                job.file_number, job.file_confirmed, job.part = number, 0, None
                await self._send_file(job, out)
                job.done_before += out.size
        except _Stop as stop:
            state, reason = stop.state, stop.reason
        except Exception:  # a defect: the status message must still say the job ended
            log.exception("sending #%s to chat %s failed", job.download_id, job.chat_id)
            state, reason = SendState.FAILED, "an unexpected error (see the log)"
        finally:
            self._jobs.pop((job.chat_id, job.download_id), None)
            if job.reader is not None:
                job.reader.close()
                job.reader = None
        job.note = None
        log.info("sending #%s to chat %s: %s%s", job.download_id, job.chat_id, state.value,
                 f" ({reason})" if reason else "")
        await self._show(job, state, reason, force=True)

    async def _send_file(self, job: _Job, out: OutFile) -> None:
        try:
            stat = await asyncio.to_thread(out.path.stat)
        except OSError:
            raise _Stop(SendState.FAILED, "the file is no longer on disk") from None
        if (stat.st_size, stat.st_mtime_ns) != (out.size, out.mtime_ns):
            raise _Stop(SendState.FAILED, "the file changed on disk since it was listed")
        parts = plan_parts(out.path.name, out.size, self._limit)
        plan = FilePlan(job.download_id, job.chat_id, out.index, out.size, out.mtime_ns,
                        self._limit)
        try:
            confirmed = await self._ledger.sent_parts(plan)
        except ManagerError as error:
            log.warning("the parts of #%s already sent could not be read: %s",
                        job.download_id, error)
            raise _Stop(SendState.FAILED, "the list of parts already sent could not be "
                        "read; try again in a moment") from None
        for part in parts:
            job.part = part
            if part.number in confirmed:
                job.file_confirmed += part.length
                continue
            if job.stop_requested:
                raise _Stop(SendState.STOPPED, job.stop_reason)
            await self._send_part(job, out, part)
            job.file_confirmed += part.length
            job.uploads += 1
            try:
                await self._ledger.record_sent_part(plan, part.number)
            except ManagerError as error:  # it arrived all the same: the job goes on
                log.warning("part %d of a file of #%s arrived but was not recorded (%s): a "
                            "later send may repeat it", part.number, job.download_id, error)
            await self._show(job)

    async def _send_part(self, job: _Job, out: OutFile, part: Part) -> None:
        by_path = self._local_mode and part.whole
        for attempt in range(1, self._attempts + 1):
            try:
                job.reader = None if by_path else PartReader(out.path, part.offset,
                                                             part.length)
                await self._await(job, self._upload(job, out, part))
                job.note = None
                return
            except TelegramError as error:
                body_sent = by_path or (job.reader is not None
                                        and job.reader.sent >= job.reader.length)
                verdict, reason, wait = classify(error, body_sent=body_sent)
                log.info("part %d/%d of a file of #%s to chat %s refused (attempt %d): %s: "
                         "%s", part.number, part.count, job.download_id, job.chat_id,
                         attempt, error.message, reason)
            except FileNotFoundError:
                raise _Stop(SendState.FAILED, "the file is no longer on disk") from None
            except OSError as error:
                log.warning("reading a file of #%s failed: %s", job.download_id, error)
                raise _Stop(SendState.FAILED, "the file could not be read") from None
            finally:
                if job.reader is not None:
                    job.reader.close()
                    job.reader = None
            if verdict is Verdict.FINAL:
                raise _Stop(SendState.FAILED, reason)
            if attempt == self._attempts:
                raise _Stop(SendState.FAILED, f"{reason}, {self._attempts} times")
            delay = wait if wait is not None else min(
                _MAX_RETRY_DELAY, self._retry_delay * 2 ** (attempt - 1))
            job.note = retry_note(part.number, part.count, reason, delay=delay,
                                  attempt=attempt, attempts=self._attempts)
            await self._show(job)
            job.waiting = True
            try:
                await self._await(job, self._sleep(delay))
            finally:
                job.waiting = False

    async def _await(self, job: _Job, work: Awaitable[Any]) -> Any:
        """Run ``work`` so that :meth:`cancel` can abort it, editing the status message
        with the upload's progress every ``edit_interval`` seconds meanwhile."""
        if job.stop_requested:
            if asyncio.iscoroutine(work):
                work.close()
            raise _Stop(SendState.STOPPED, job.stop_reason)
        task = asyncio.ensure_future(work)
        job.in_flight = task
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._edit_interval)
                if done:
                    break
                await self._show(job)
        except asyncio.CancelledError:
            task.cancel()  # the job itself is cancelled (shutting down)
            raise
        finally:
            job.in_flight = None
        if task.cancelled():
            raise _Stop(SendState.STOPPED, job.stop_reason)
        return task.result()

    async def _upload(self, job: _Job, out: OutFile, part: Part) -> None:
        caption = part_caption(part, out.size)
        document: Any
        if job.reader is None:  # local mode: the server reads the file itself
            document, read_timeout = out.path, _PATH_READ_TIMEOUT
        else:
            document = InputFile(job.reader, filename=part.name, read_file_handle=False)
            read_timeout = _PART_READ_TIMEOUT
        reply = (ReplyParameters(job.reply_to, allow_sending_without_reply=True)
                 if job.reply_to is not None else None)
        await self._bot.send_document(
            job.chat_id, document=document, filename=part.name, caption=caption,
            parse_mode=ParseMode.HTML if caption else None, reply_parameters=reply,
            disable_content_type_detection=not part.whole,
            read_timeout=read_timeout, write_timeout=_WRITE_TIMEOUT,
        )

    # --- the status message ----------------------------------------------------------------

    async def _show(self, job: _Job, state: SendState = SendState.SENDING,
                    reason: str | None = None, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - job.last_edit < self._edit_interval:
            return
        status = job.status(state, reason)
        text, markup = send_status_text(status), send_status_keyboard(status)
        if text == job.last_text:
            return
        job.last_edit, job.last_text = now, text
        try:
            if job.status_id is None:
                reply = (ReplyParameters(job.reply_to, allow_sending_without_reply=True)
                         if job.reply_to is not None else None)
                message = await self._bot.send_message(job.chat_id, text,
                                                       parse_mode=ParseMode.HTML,
                                                       reply_markup=markup,
                                                       reply_parameters=reply)
                job.status_id = message.message_id
            else:
                await self._bot.edit_message_text(text, chat_id=job.chat_id,
                                                  message_id=job.status_id,
                                                  parse_mode=ParseMode.HTML,
                                                  reply_markup=markup)
        except BadRequest as error:
            if not is_not_modified(error):
                log.info("the send status of #%s was not shown: %s", job.download_id,
                         error.message)
        except TelegramError as error:
            log.info("the send status of #%s was not shown: %s", job.download_id,
                     error.message)

