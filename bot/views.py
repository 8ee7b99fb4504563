"""What the bot shows: pure functions from snapshots to HTML text and inline keyboards.

Nothing here does I/O or keeps state, so every screen is tested as a plain function. Texts use
Telegram's HTML parse mode; every name and reason coming from a torrent or from the manager
goes through :func:`html.escape`. The buttons' callback data comes from
:mod:`bot.callbackdata`; command arguments are parsed in :mod:`bot.arguments`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import PurePath
from types import MappingProxyType

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bot.callbackdata import callback_data
from manager import (
    DownloadLink,
    FileEntry,
    Mirror,
    MirrorState,
    StatusPage,
    Torrent,
    TorrentState,
    human_duration,
    human_size,
)

__all__ = [
    "COMMANDS",
    "STATUS_PAGE_SIZE",
    "USAGE",
    "cancel_confirm_keyboard",
    "completion_keyboard",
    "completion_text",
    "engine_alert_text",
    "failure_text",
    "files_text",
    "help_text",
    "human_duration",
    "human_speed",
    "link_text",
    "markup_key",
    "mirror_done_text",
    "mirror_failed_text",
    "mirror_lines",
    "percent",
    "progress_bar",
    "progress_keyboard",
    "progress_percent",
    "progress_text",
    "refusal_text",
    "relative_location",
    "status_view",
]

STATUS_PAGE_SIZE = 10
"""Downloads per page of the /status overview."""

BAR_WIDTH = 12
MAX_MESSAGE = 4096
_NAME_LIMIT = 200
_SHORT_NAME_LIMIT = 60

COMMANDS: tuple[tuple[str, str], ...] = (
    ("torrent", "add a magnet link or a .torrent's link: /torrent <link>"),
    ("status", "your downloads, with progress"),
    ("pause", "pause a download: /pause <id>"),
    ("resume", "resume a download: /resume <id>"),
    ("cancel", "cancel a download: /cancel <id> [delete]"),
    ("files", "list, choose or send files: /files <id> [1,3-5]"),
    ("log", "what was done in this chat: /log [how many]"),
    ("mirror", "upload a finished download to the cloud: /mirror <id> [stop]"),
    ("link", "a web link to a finished download's files: /link <id>"),
    ("rss", "follow a feed of torrents: /rss add <link> [name], /rss list"),
    ("web", "open your downloads in a browser (a one-time login link)"),
    ("help", "what this bot does"),
)
"""The command menu (``setMyCommands``): name and short description."""

USAGE: Mapping[str, str] = MappingProxyType({
    "torrent": "Usage: /torrent <magnet link or link to a .torrent file>",
    "pause": "Usage: /pause <id> (the id is the #number in /status)",
    "resume": "Usage: /resume <id> (the id is the #number in /status)",
    "cancel": "Usage: /cancel <id>, or /cancel <id> delete to delete its files too",
    "files": "Usage: /files <id> to list them (and send a finished one's), /files <id> 1,3-5 "
             "to download only those",
    "log": "Usage: /log for the latest entries, /log <n> for the latest n (up to 50)",
    "mirror": "Usage: /mirror <id> to upload a finished download, /mirror <id> stop to stop it",
    "link": "Usage: /link <id> for a web link to a finished download's page",
    "nodes": "/nodes lists the machines that run this bot, in the admin chat only.",
    "web": "The web page is off: this bot's owner has not set ARIABOT_PUBLIC_URL.",
    "rss": "Usage: /rss add <link to an RSS or Atom feed> [name] [options] subscribes this "
           "chat: new items that match are downloaded as they appear.\n"
           "/rss list; /rss pause, resume or remove <name>; /rss filter <name> [options] "
           "(no options: take everything).\n"
           "Options: include:PATTERN and exclude:PATTERN (quote one with spaces: "
           "include:\"web dl\"), min:SIZE and max:SIZE (700MB, 4GiB), newest:N (also add the "
           "N newest items already listed).",
    "unknown": "Unknown command. Send /help for the list.",
})
"""One-line answers to a command used wrongly."""

_ACTIVE = (TorrentState.METADATA, TorrentState.DOWNLOADING, TorrentState.SEEDING)


# --- units -------------------------------------------------------------------------------------


def human_speed(bytes_per_second: int) -> str:
    """A speed: ``"1.2 MiB/s"``."""
    return f"{human_size(bytes_per_second)}/s"


def percent(torrent: Torrent) -> int:
    """Whole percent done, rounded down: 100 only when all of it is there."""
    return min(100, math.floor(torrent.progress * 100))


def progress_percent(torrent: Torrent) -> int:
    """Whole percent of what the progress message shows moving: the upload while a mirror
    is under way, else the download."""
    mirror = torrent.mirror
    if mirror is not None and not mirror.state.is_final:
        return min(100, math.floor(mirror.progress * 100))
    return percent(torrent)


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A text bar: ``"█████░░░░░░░"``; full only at 100 %."""
    fraction = min(1.0, max(0.0, fraction))
    filled = math.floor(fraction * width)
    return "█" * filled + "░" * (width - filled)


def _name(torrent: Torrent, limit: int = _NAME_LIMIT) -> str:
    name = torrent.name or torrent.info_hash[:16]
    if len(name) > limit:
        name = name[: limit - 1] + "…"
    return html.escape(name)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- the live progress message -------------------------------------------------------------------


def progress_text(torrent: Torrent, *, note: str | None = None, confirm: bool = False) -> str:
    """The live progress message of one download.

    Parameters:
        torrent: the newest snapshot.
        note: a remark from the manager to show once (e.g. "the downloader is restarting").
        confirm: the user pressed Cancel: ask to confirm below the progress.
    """
    state = torrent.state
    status = _capital(state.label)
    if state is TorrentState.QUEUED and torrent.queue_position:
        status += f" · #{torrent.queue_position} in the queue"
    lines = [f"<b>{_name(torrent)}</b> · #{torrent.id}", status]
    if torrent.total_bytes > 0 or state is TorrentState.COMPLETE:
        lines.append(f"<code>{progress_bar(torrent.progress)}</code> {percent(torrent)}%")
        lines.append(f"{human_size(torrent.completed_bytes)} of {human_size(torrent.total_bytes)}")
    if state is TorrentState.SEEDING:
        lines.append(f"↑ {human_speed(torrent.upload_speed)} · "
                     f"uploaded {human_size(torrent.upload_bytes)}")
        lines.append(f"Peers {torrent.peers}")
    elif state in _ACTIVE:
        speeds = f"↓ {human_speed(torrent.download_speed)} · ↑ {human_speed(torrent.upload_speed)}"
        eta = torrent.eta_seconds
        if state is TorrentState.DOWNLOADING and eta is not None:
            speeds += f" · ETA {human_duration(eta)}"
        lines.append(speeds)
        lines.append(f"Seeders {torrent.seeders} · peers {torrent.peers}")
    if torrent.stuck_reason and not state.is_final:
        lines.append(f"⚠️ {html.escape(torrent.stuck_reason)}")
    if torrent.error:
        lines.append(f"❌ {html.escape(torrent.error)}")
    if torrent.elsewhere and not state.is_final:
        lines.append(f"🖥 {html.escape(torrent.elsewhere)}")
    if torrent.mirror is not None:
        lines.extend(mirror_lines(torrent.mirror))
    if note:
        lines.append(f"Note: {html.escape(note)}")
    if confirm:
        lines.append("")
        lines.append("<b>Cancel this download?</b> What it downloaded so far is kept "
                     "unless you also delete the files.")
    return "\n".join(lines)


def mirror_lines(mirror: Mirror) -> list[str]:
    """The upload's lines on the progress message, shown like the download's own."""
    where = html.escape(mirror.destination)
    state = mirror.state
    if state is MirrorState.DONE:
        done = f"☁️ Uploaded to <code>{where}</code>"
        if mirror.local_deleted:
            done += " (moved: the local files are deleted)"
        return [done]
    if state is MirrorState.FAILED:
        return [f"☁️ Upload to <code>{where}</code> failed: "
                f"{html.escape(mirror.error or 'no reason given')}"]
    if state is MirrorState.STOPPED:
        return [f"☁️ Upload to <code>{where}</code> stopped"]
    if state is MirrorState.QUEUED:
        return [f"☁️ Waiting to upload to <code>{where}</code>"]
    lines = [f"☁️ {_capital(state.label)} to <code>{where}</code>"
             + (f" · attempt {mirror.attempt} of {mirror.attempts}" if mirror.attempt > 1
                else "")]
    if state is MirrorState.RETRYING:
        wait = (f" in {human_duration(mirror.retry_in)}" if mirror.retry_in is not None
                else "")
        lines.append(f"Trying again{wait}: {html.escape(mirror.error or 'no reason given')}")
        return lines
    if mirror.total_bytes > 0:
        lines.append(f"<code>{progress_bar(mirror.progress)}</code> "
                     f"{min(100, math.floor(mirror.progress * 100))}%")
        lines.append(f"{human_size(mirror.bytes)} of {human_size(mirror.total_bytes)}")
    if state is MirrorState.UPLOADING:
        speed = f"↑ {human_speed(mirror.speed)}"
        if mirror.eta_seconds is not None and mirror.speed > 0:
            speed += f" · ETA {human_duration(mirror.eta_seconds)}"
        lines.append(speed)
    return lines


def _mirroring(torrent: Torrent) -> bool:
    return torrent.mirror is not None and not torrent.mirror.state.is_final


def _app_row(torrent: Torrent, app_url: str) -> list[list[InlineKeyboardButton]]:
    """The Mini App's button, in a private chat only (Telegram refuses Web App buttons in
    groups) and when there is an HTTPS Mini App (``app_url``, else empty)."""
    if not app_url or torrent.chat_id <= 0:
        return []
    return [[InlineKeyboardButton("📱 Open app", web_app=WebAppInfo(app_url))]]


def progress_keyboard(torrent: Torrent, *, confirm: bool = False,
                      app_url: str = "") -> InlineKeyboardMarkup | None:
    """Buttons under a progress message: Pause or Resume, Cancel, Refresh (none when final);
    "Stop upload" while a mirror is under way; "Open app" (the Mini App) in a private chat.

    Parameters:
        torrent: the snapshot shown.
        confirm: show the cancel confirmation instead (see :func:`cancel_confirm_keyboard`).
        app_url: the Mini App's HTTPS address, or empty (no button).
    """
    stop_upload = [InlineKeyboardButton(
        "⏹ Stop upload", callback_data=callback_data("mirror", torrent.id, "stop"))]
    if torrent.state.is_final:
        return InlineKeyboardMarkup([stop_upload]) if _mirroring(torrent) else None
    if confirm:
        return cancel_confirm_keyboard(torrent.id)
    if torrent.state is TorrentState.PAUSED:
        toggle = InlineKeyboardButton("▶ Resume", callback_data=callback_data("resume", torrent.id))
    else:
        toggle = InlineKeyboardButton("⏸ Pause", callback_data=callback_data("pause", torrent.id))
    rows = [[
        toggle,
        InlineKeyboardButton("✖ Cancel", callback_data=callback_data("cancel", torrent.id)),
        InlineKeyboardButton("↻ Refresh", callback_data=callback_data("refresh", torrent.id)),
    ]]
    if _mirroring(torrent):
        rows.append(stop_upload)
    return InlineKeyboardMarkup(rows + _app_row(torrent, app_url))


def cancel_confirm_keyboard(download_id: int) -> InlineKeyboardMarkup:
    """"Cancel", "Cancel + delete files", "Back"."""
    return InlineKeyboardMarkup([
        [
            InlineKeyboardButton("Cancel", callback_data=callback_data("cancel", download_id,
                                                                       "keep")),
            InlineKeyboardButton("Cancel + delete files",
                                 callback_data=callback_data("cancel", download_id, "delete")),
        ],
        [InlineKeyboardButton("Back", callback_data=callback_data("back", download_id))],
    ])


def markup_key(markup: InlineKeyboardMarkup | None) -> tuple[tuple[tuple[str, str], ...], ...]:
    """A comparable form of a keyboard (texts and callback data), to skip unchanged edits."""
    if markup is None:
        return ()
    return tuple(
        tuple((button.text, str(button.callback_data)) for button in row)
        for row in markup.inline_keyboard
    )


# --- news: completion, failure, alerts -----------------------------------------------------------


def relative_location(path: str | None, folder: PurePath) -> str:
    """Where a download is, relative to the chat's folder; never an absolute path.

    Parameters:
        path: the download's file or folder (``Torrent.path``).
        folder: the chat's folder.

    Returns:
        The relative path, or only the last component when ``path`` is not below ``folder``.
    """
    if not path:
        return ""
    candidate = PurePath(path)
    try:
        relative = candidate.relative_to(folder)
    except ValueError:
        return candidate.name
    if ".." in relative.parts or not relative.parts:
        return candidate.name
    return relative.as_posix()


def completion_text(torrent: Torrent, location: str) -> str:
    """The new message that tells a download finished: size, time taken, where it is."""
    lines = [f"✅ <b>{_name(torrent)}</b> is downloaded (#{torrent.id})."]
    facts = [f"Size {human_size(torrent.total_bytes)}"]
    if torrent.created_at is not None and torrent.completed_at is not None:
        taken = (torrent.completed_at - torrent.created_at).total_seconds()
        facts.append(f"took {human_duration(taken)}")
    lines.append(" · ".join(facts))
    if location:
        lines.append(f"Saved as <code>{html.escape(location)}</code> in this chat's folder.")
    return "\n".join(lines)


def completion_keyboard(torrent: Torrent, *, can_send: bool, can_mirror: bool = False,
                        can_link: bool = False, app_url: str = "") -> InlineKeyboardMarkup | None:
    """A "Send file" button when the download is one file small enough to upload; a
    "Mirror" button when it can be uploaded to the cloud on request; a "Get link" button
    when the link server is on; "Open app" in a private chat with an HTTPS Mini App."""
    row = []
    if can_send:
        row.append(InlineKeyboardButton("📎 Send file",
                                        callback_data=callback_data("send", torrent.id)))
    if can_mirror:
        row.append(InlineKeyboardButton("☁️ Mirror",
                                        callback_data=callback_data("mirror", torrent.id)))
    if can_link:
        row.append(InlineKeyboardButton("🔗 Get link",
                                        callback_data=callback_data("link", torrent.id)))
    rows = ([row] if row else []) + _app_row(torrent, app_url)
    return InlineKeyboardMarkup(rows) if rows else None


def link_text(link: DownloadLink, now: datetime) -> str:
    """The answer to /link and "Get link": the page's address and how long it works."""
    torrent = link.torrent
    left = human_duration((link.expires_at - now).total_seconds())
    url = html.escape(link.url, quote=True)
    return (f"🔗 <b>{_name(torrent)}</b> (#{torrent.id}): <a href=\"{url}\">{url}</a>\n"
            f"It works until {link.expires_at:%Y-%m-%d %H:%M} UTC (in {left}), or until the "
            "download is cancelled, removed or its files deleted. Anyone with the link can "
            "download the files: share it with care.")


def mirror_done_text(torrent: Torrent) -> str:
    """The new message that tells a download is in the cloud: where, and its public link."""
    mirror = torrent.mirror
    assert mirror is not None
    lines = [f"☁️ <b>{_name(torrent)}</b> is uploaded (#{torrent.id}) to "
             f"<code>{html.escape(mirror.destination)}</code>."]
    if mirror.total_bytes:
        lines.append(f"Size {human_size(mirror.total_bytes)}, checked at the destination.")
    if mirror.link:
        lines.append(f"Link: {html.escape(mirror.link)}")
    if mirror.local_deleted:
        lines.append("The files on this server are deleted (moved).")
    return "\n".join(lines)


def mirror_failed_text(torrent: Torrent) -> str:
    """The new message that tells an upload failed for good, with rclone's reason."""
    mirror = torrent.mirror
    assert mirror is not None
    tries = f" after {mirror.attempt} attempts" if mirror.attempt > 1 else ""
    return (f"❌ <b>{_name(torrent)}</b> could not be uploaded (#{torrent.id}) to "
            f"<code>{html.escape(mirror.destination)}</code>{tries}: "
            f"{html.escape(mirror.error or 'no reason given')}\n"
            f"The files on this server are kept. Try again with /mirror {torrent.id}.")


def failure_text(torrent: Torrent) -> str:
    """The new message that tells a download failed, with the manager's reason."""
    reason = torrent.error or "the downloader gave no reason"
    return f"❌ <b>{_name(torrent)}</b> failed (#{torrent.id}): {html.escape(reason)}"


def engine_alert_text(kind: str, detail: str) -> str:
    """An alert for the admin chat about aria2c itself.

    Parameters:
        kind: ``"down"``, ``"restarted"`` or ``"fatal"``.
        detail: the supervisor's explanation.
    """
    heads = {
        "down": "⚠️ aria2c stopped; the supervisor is restarting it",
        "restarted": "✅ aria2c is running again",
        "fatal": "🛑 aria2c cannot be kept running; ariabot is exiting",
    }
    return f"<b>{heads[kind]}</b>\n{html.escape(detail)}" if detail else f"<b>{heads[kind]}</b>"


# --- /status -------------------------------------------------------------------------------------


def _status_line(torrent: Torrent) -> str:
    state = torrent.state
    parts = [state.label]
    if torrent.total_bytes > 0 or state is TorrentState.COMPLETE:
        parts[0] += f" {percent(torrent)}%"
    if state is TorrentState.QUEUED and torrent.queue_position:
        parts.append(f"#{torrent.queue_position} in the queue")
    if state in (TorrentState.DOWNLOADING, TorrentState.METADATA):
        parts.append(f"↓ {human_speed(torrent.download_speed)}")
        if torrent.eta_seconds is not None and state is TorrentState.DOWNLOADING:
            parts.append(f"ETA {human_duration(torrent.eta_seconds)}")
    elif state is TorrentState.SEEDING:
        parts.append(f"↑ {human_speed(torrent.upload_speed)}")
    if torrent.stuck_reason and not state.is_final:
        parts.append(f"⚠️ {html.escape(torrent.stuck_reason)}")
    elif state is TorrentState.ERROR and torrent.error:
        parts.append(html.escape(torrent.error[:80]))
    if torrent.mirror is not None:
        parts.append(f"☁️ {torrent.mirror.state.label}" + (
            f" {progress_percent(torrent)}%" if _mirroring(torrent) else ""))
    if torrent.elsewhere:
        parts.append(f"🖥 {html.escape(torrent.elsewhere)}")
    return " · ".join(parts)


def status_view(overview: StatusPage) -> tuple[str, InlineKeyboardMarkup]:
    """The /status overview of one chat's downloads, one page of it
    (:meth:`manager.TorrentManager.status_page`: unfinished downloads first, then finished
    ones, newest first within each group; cancelled ones left out).

    Returns:
        The text and its keyboard (Prev / Refresh / Next).
    """
    page, pages = overview.page, overview.pages
    if not overview.total:
        text = ("<b>Downloads</b>\nNothing here yet. Send a magnet link or a .torrent file "
                "to start one.")
    else:
        head = f"<b>Downloads</b> ({overview.total})"
        if pages > 1:
            head += f" · page {page + 1}/{pages}"
        lines = [head]
        for torrent in overview.torrents:
            lines.append(f"#{torrent.id} <b>{_name(torrent, _SHORT_NAME_LIMIT)}</b>")
            lines.append(f"      {_status_line(torrent)}")
        text = "\n".join(lines)
    row = []
    if page > 0:
        row.append(InlineKeyboardButton("◀ Prev", callback_data=callback_data("status", page - 1)))
    row.append(InlineKeyboardButton("↻ Refresh", callback_data=callback_data("status", page)))
    if page < pages - 1:
        row.append(InlineKeyboardButton("Next ▶", callback_data=callback_data("status", page + 1)))
    return text, InlineKeyboardMarkup([row])


# --- /files --------------------------------------------------------------------------------------


def files_text(torrent: Torrent, files: Sequence[FileEntry]) -> str:
    """The numbered file list of a download, for /files (cut to fit one message)."""
    head = f"<b>{_name(torrent)}</b> · #{torrent.id}"
    if not files and torrent.state.is_final:
        return f"{head}\nIt is {torrent.state.label}: files can no longer be chosen."
    if not files:
        return f"{head}\nThe file list is not known yet (it comes with the torrent's metadata)."
    chosen = sum(1 for f in files if f.selected)
    lines = [head, f"{len(files)} files, {chosen} chosen:"]
    budget = MAX_MESSAGE - 300
    used = sum(len(line) + 1 for line in lines)
    for number, entry in enumerate(files, 1):
        mark = "✅" if entry.selected else "▫️"
        done = f" {math.floor(entry.completed * 100 / entry.length)}%" if entry.length else ""
        line = (f"{number}. {mark} {html.escape(entry.path)} "
                f"({human_size(entry.length)}{done if entry.selected else ''})")
        if used + len(line) + 1 > budget:
            lines.append(f"… and {len(files) - number + 1} more")
            break
        lines.append(line)
        used += len(line) + 1
    lines.append(f"Choose with /files {torrent.id} 1,3-5")
    return "\n".join(lines)


# --- help and refusals ---------------------------------------------------------------------------


def help_text(upload_limit: int) -> str:
    """/start and /help: what the bot does and its commands, short."""
    commands = "\n".join(f"/{name} - {html.escape(text)}" for name, text in COMMANDS)
    return (
        "<b>ariabot</b> downloads torrents to this server.\n"
        "Send a magnet link, a .torrent file or a link to one (ending in .torrent; any other "
        "link with /torrent &lt;link&gt;). "
        "Its message then shows the progress live, with buttons to pause, resume or cancel.\n"
        "Finished files can be sent to you here, whatever their size: up to "
        f"{human_size(upload_limit)} as one file, bigger ones in numbered parts (the first "
        "part says how to put them back together). /files &lt;id&gt; lists a finished "
        "download's files with a Send button for each, and Send all.\n\n"
        f"{commands}"
    )


def refusal_text(user_id: int, chat_id: int | None, *, chat_refused: bool) -> str:
    """The one answer strangers get, with the id the owner needs to allow them."""
    if chat_refused and chat_id is not None:
        return (f"Sorry, this bot does not work in this chat. The chat id is {chat_id}; the "
                "owner can allow it with ARIABOT_ALLOWED_CHATS.")
    return (f"Sorry, this is a private bot. Your Telegram user id is {user_id}; the owner can "
            "allow it with ARIABOT_ALLOWED_USERS.")
