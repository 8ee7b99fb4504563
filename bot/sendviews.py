"""What the bot shows about sending files into the chat: pure functions, like :mod:`bot.views`.

The /files list of a finished download with a Send button per file and Send all (a page of
it at a time), and the status message of a send: which file, which part, how far, and how
it ended. Names are escaped; no path outside the download's own relative paths is shown.
"""

from __future__ import annotations

import enum
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbackdata import callback_data
from bot.views import human_duration, progress_bar
from manager import FileEntry, Torrent, human_size

__all__ = [
    "FILES_PAGE_SIZE",
    "SendState",
    "SendStatus",
    "files_send_view",
    "retry_note",
    "send_status_keyboard",
    "send_status_text",
]

FILES_PAGE_SIZE = 10
"""Files per page of a finished download's /files list (one Send button each)."""
_BUTTONS_PER_ROW = 5
_NAME_LIMIT = 120


def _short(name: str, limit: int = _NAME_LIMIT) -> str:
    return html.escape(name if len(name) <= limit else name[: limit - 1] + "…")


def _sendable(entry: FileEntry) -> bool:
    return entry.selected and entry.completed == entry.length


def files_send_view(torrent: Torrent, files: Sequence[FileEntry],
                    page: int = 0) -> tuple[str, InlineKeyboardMarkup | None]:
    """One page of a finished download's files, with a Send button for each file on disk
    and "Send all"; Prev/Next when there are more pages (a page past the end shows the last).

    Parameters:
        torrent: the download.
        files: its own files (:meth:`manager.TorrentManager.own_files`), numbered from 1.
        page: 0-based.
    """
    head = f"<b>{_short(torrent.name or torrent.info_hash[:16], 200)}</b> · #{torrent.id}"
    if not files:
        return f"{head}\nIts file list is not known here, so nothing can be sent.", None
    pages = max(1, math.ceil(len(files) / FILES_PAGE_SIZE))
    page = min(max(0, page), pages - 1)
    first = page * FILES_PAGE_SIZE
    shown = files[first:first + FILES_PAGE_SIZE]
    sendable = [e for e in files if _sendable(e)]
    summary = f"{len(files)} files, {len(sendable)} on disk"
    if pages > 1:
        summary += f" · page {page + 1}/{pages}"
    lines = [head, summary + ":"]
    buttons = []
    for number, entry in enumerate(shown, first + 1):
        mark = "📄" if _sendable(entry) else ("▫️" if not entry.selected else "✖")
        lines.append(f"{number}. {mark} {_short(entry.path)} ({human_size(entry.length)})")
        if _sendable(entry):
            buttons.append(InlineKeyboardButton(
                f"📎 {number}", callback_data=callback_data("sendfile", torrent.id, number)))
    if len(sendable) < len(files):
        lines.append("▫️ not chosen · ✖ not on disk (deleted or moved)")
    rows = [buttons[i:i + _BUTTONS_PER_ROW] for i in range(0, len(buttons), _BUTTONS_PER_ROW)]
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton("◀ Prev",
                                        callback_data=callback_data("files", torrent.id, page - 1)))
    if sendable:
        size = human_size(sum(e.length for e in sendable))
        nav.append(InlineKeyboardButton(f"📎 Send all ({size})",
                                        callback_data=callback_data("send", torrent.id)))
    if page < pages - 1:
        nav.append(InlineKeyboardButton("Next ▶",
                                        callback_data=callback_data("files", torrent.id, page + 1)))
    if nav:
        rows.append(nav)
    if sendable:
        lines.append("A file bigger than one upload comes in numbered parts; the first part "
                     "says how to put them back together.")
    return "\n".join(lines), InlineKeyboardMarkup(rows) if rows else None


class SendState(enum.Enum):
    """How far a send job is."""

    SENDING = "sending"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class SendStatus:
    """A snapshot of one send job, for its status message.

    Attributes:
        title: the download's name.
        download_id: its ``#id``.
        file_number: 1-based among the files this job sends.
        file_count: how many files this job sends.
        file_name: the current file's path within the download (relative).
        file_size: its size.
        part: 1-based part of the current file; ``part_count`` 1: sent whole.
        file_done: bytes of the current file sent so far (confirmed parts + the one going).
        done_bytes: bytes of all files sent so far.
        total_bytes: bytes of all files.
        note: a retry under way, in words.
        reason: why it failed or stopped.
    """

    state: SendState
    title: str
    download_id: int
    file_number: int
    file_count: int
    file_name: str
    file_size: int
    part: int
    part_count: int
    file_done: int
    done_bytes: int
    total_bytes: int
    uploads: int = 0
    note: str | None = None
    reason: str | None = None


def _where(status: SendStatus) -> str:
    where = f"<code>{_short(status.file_name)}</code>"
    if status.part_count > 1:
        where += f" · part {status.part}/{status.part_count}"
    if status.file_count > 1:
        where = f"file {status.file_number}/{status.file_count}: {where}"
    return where


def send_status_text(status: SendStatus) -> str:
    """The status message of a send: what is going and how far, or how it ended."""
    title = f"<b>{_short(status.title, 200)}</b> (#{status.download_id})"
    if status.state is SendState.DONE and status.uploads == 0:
        return (f"✅ {title} was already sent here: Telegram confirmed all of it before, so "
                "nothing is sent again.")
    if status.state is SendState.DONE:
        files = f"{status.file_count} files" if status.file_count > 1 else "1 file"
        return (f"✅ Sent {title}: {files}, {human_size(status.total_bytes)}"
                + (f" in {status.uploads} uploads." if status.uploads > status.file_count
                   else "."))
    if status.state is SendState.STOPPED:
        why = f" ({html.escape(status.reason)})" if status.reason else ""
        return (f"⏹ Stopped sending {title} at {_where(status)}{why}.\n"
                "Press Send again to send the rest: what already arrived is not sent again.")
    if status.state is SendState.FAILED:
        return (f"❌ Could not send {title}, {_where(status)}: "
                f"{html.escape(status.reason or 'no reason given')}\n"
                "What already arrived is not sent again when you press Send again.")
    fraction = status.file_done / status.file_size if status.file_size else 1.0
    lines = [f"📤 Sending {title}", _where(status),
             f"<code>{progress_bar(fraction)}</code> {min(100, math.floor(fraction * 100))}%",
             f"{human_size(status.done_bytes)} of {human_size(status.total_bytes)}"]
    if status.note:
        lines.append(f"⚠️ {html.escape(status.note)}")
    return "\n".join(lines)


def send_status_keyboard(status: SendStatus) -> InlineKeyboardMarkup | None:
    """A "Stop sending" button while the job runs; none once it ended."""
    if status.state is not SendState.SENDING:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(
        "⏹ Stop sending", callback_data=callback_data("unsend", status.download_id))]])


def retry_note(part: int, part_count: int, reason: str, *, delay: float, attempt: int,
               attempts: int) -> str:
    """A part was refused and is tried again: why, when, which attempt."""
    which = f"Part {part}/{part_count}" if part_count > 1 else "The file"
    return (f"{which} was refused ({reason}); trying again in {human_duration(delay)} "
            f"(attempt {attempt + 1} of {attempts}).")
