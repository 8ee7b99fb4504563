"""Command handlers: /start, /help, /torrent, /status, /pause, /resume, /cancel, /files, /log,
/mirror, /link, and the admin chat's /nodes (a chat's feeds, /rss, are in
:mod:`bot.handlers.rss`)."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError

from bot.activity import LOG_DEFAULT, LOG_MAX, activity_text
from bot.arguments import parse_download_id, parse_selection
from bot.context import BotContext
from bot.errors import answers_manager_errors
from bot.handlers.adding import NO_PREVIEW, add_download
from bot.nodesview import nodes_text
from bot.rights import ensure_may_act
from bot.sendviews import files_send_view
from bot.views import (
    STATUS_PAGE_SIZE,
    USAGE,
    files_text,
    help_text,
    link_text,
    status_view,
)
from bot.weblogin import login_link, login_text
from manager import TorrentState, find_magnets

__all__ = [
    "activity_log",
    "cancel",
    "files",
    "help_command",
    "link",
    "mirror",
    "nodes",
    "pause",
    "resume",
    "status",
    "torrent",
    "unknown",
    "web",
]

log = logging.getLogger(__name__)



async def _reply(update: Update, text: str, *, html: bool = False) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, parse_mode=ParseMode.HTML if html else None,
                                 link_preview_options=NO_PREVIEW)


def _ids(update: Update) -> tuple[int, int]:
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None  # the auth gate let only these through
    return chat.id, user.id


async def _may_act(update: Update, context: BotContext, download_id: int) -> tuple[int, int]:
    """``(chat id, user id)`` once the user may change the download (see bot.rights)."""
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None  # the auth gate let only these through
    await ensure_may_act(context, chat, user.id, download_id)
    return chat.id, user.id


async def help_command(update: Update, context: BotContext) -> None:
    """/start and /help."""
    await _reply(update, help_text(context.config.upload_limit), html=True)


async def torrent(update: Update, context: BotContext) -> None:
    """/torrent <magnet>: add it; the reply becomes its progress message."""
    text = " ".join(context.args or [])
    if not text:
        await _reply(update, USAGE["torrent"])
        return
    # Not a magnet at all: the manager says why (its reason is the answer).
    for link in find_magnets(text) or [text]:
        await add_download(update, context, link)


@answers_manager_errors
async def status(update: Update, context: BotContext) -> None:
    """/status: one overview per chat; a new /status replaces the previous overview."""
    chat_id, _ = _ids(update)
    message = update.effective_message
    assert message is not None
    text, markup = status_view(await context.manager.status_page(chat_id, 0, STATUS_PAGE_SIZE))
    sent = await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup,
                                    link_preview_options=NO_PREVIEW)
    previous = await context.manager.overview_message(chat_id)  # stored: survives a restart
    await context.manager.set_overview_message(chat_id, sent.message_id)
    if previous is not None and previous != sent.message_id:
        with contextlib.suppress(TelegramError):  # already deleted, or too old to delete
            await context.bot.delete_message(chat_id, previous)


def _one_id(context: BotContext, extra: int = 0) -> int | None:
    args = context.args or []
    if not 1 <= len(args) <= 1 + extra:
        return None
    try:
        return parse_download_id(args[0])
    except ValueError:
        return None


async def _switch(update: Update, context: BotContext, verb: str, mark: str, done: str) -> None:
    """/pause and /resume alike: ``verb`` the download, show it at once, say it is ``done``."""
    download_id = _one_id(context)
    if download_id is None:
        await _reply(update, USAGE[verb])
        return
    chat_id, user_id = await _may_act(update, context, download_id)
    act = context.manager.pause if verb == "pause" else context.manager.resume
    changed = await act(download_id, chat_id, user_id)
    if changed.message_id is not None:
        context.board.show_now(changed, changed.message_id)
    await _reply(update, f"{mark} #{download_id} is {done}.")


@answers_manager_errors
async def pause(update: Update, context: BotContext) -> None:
    """/pause <id>."""
    await _switch(update, context, "pause", "⏸", "paused")


@answers_manager_errors
async def resume(update: Update, context: BotContext) -> None:
    """/resume <id>."""
    await _switch(update, context, "resume", "▶", "resumed")


@answers_manager_errors
async def cancel(update: Update, context: BotContext) -> None:
    """/cancel <id> [delete]."""
    download_id = _one_id(context, extra=1)
    args = context.args or []
    delete = len(args) == 2 and args[1].lower() == "delete"
    if download_id is None or (len(args) == 2 and not delete):
        await _reply(update, USAGE["cancel"])
        return
    chat_id, user_id = await _may_act(update, context, download_id)
    cancelled = await context.manager.cancel(download_id, chat_id, user_id, delete_files=delete)
    torrent = cancelled.torrent
    if torrent.message_id is not None:
        context.board.show_now(torrent, torrent.message_id, confirm=False)
    await _reply(update, f"✖ #{download_id} is cancelled{cancelled.outcome}")


@answers_manager_errors
async def files(update: Update, context: BotContext) -> None:
    """/files <id> lists the files (of a finished download, with a Send button each and
    Send all); /files <id> 1,3-5 downloads only those."""
    args = context.args or []
    try:
        download_id = parse_download_id(args[0]) if args else None
    except ValueError:
        download_id = None
    if download_id is None:
        await _reply(update, USAGE["files"])
        return
    chat_id, user_id = _ids(update)
    if len(args) > 1:
        try:
            chosen = parse_selection(" ".join(args[1:]))
        except ValueError:
            await _reply(update, USAGE["files"])
            return
        await _may_act(update, context, download_id)
        selected = await context.manager.set_files(download_id, chosen, chat_id, user_id)
        if selected.message_id is not None:
            context.board.show_now(selected, selected.message_id)
    snapshot = await context.manager.get(download_id, chat_id)
    if snapshot.state in (TorrentState.COMPLETE, TorrentState.SEEDING):
        own = await context.manager.own_files(download_id, chat_id)
        text, markup = files_send_view(snapshot, own)
        message = update.effective_message
        assert message is not None
        await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup,
                                 link_preview_options=NO_PREVIEW)
        return
    entries = await context.manager.files(download_id, chat_id)
    await _reply(update, files_text(snapshot, entries), html=True)


@answers_manager_errors
async def mirror(update: Update, context: BotContext) -> None:
    """/mirror <id> uploads a finished download to the cloud; /mirror <id> stop stops it."""
    download_id = _one_id(context, extra=1)
    args = context.args or []
    stop = len(args) == 2 and args[1].lower() == "stop"
    if download_id is None or (len(args) == 2 and not stop):
        await _reply(update, USAGE["mirror"])
        return
    chat_id, user_id = await _may_act(update, context, download_id)
    if stop:
        changed = await context.manager.stop_mirror(download_id, chat_id, user_id)
        answer = f"⏹ The upload of #{download_id} is stopped; its files here are kept."
    else:
        changed = await context.manager.mirror(download_id, chat_id, user_id)
        answer = f"☁️ #{download_id} is being uploaded; its progress message shows how far."
    if changed.message_id is not None:
        context.board.show_now(changed, changed.message_id)
    await _reply(update, answer)


@answers_manager_errors
async def link(update: Update, context: BotContext) -> None:
    """/link <id>: a signed web link to a finished download's page (anyone in the chat may
    ask, as anyone may get a finished file)."""
    download_id = _one_id(context)
    if download_id is None:
        await _reply(update, USAGE["link"])
        return
    chat_id, user_id = _ids(update)
    made = await context.manager.link(download_id, chat_id, user_id)
    await _reply(update, link_text(made, datetime.now(UTC)), html=True)


@answers_manager_errors
async def activity_log(update: Update, context: BotContext) -> None:
    """/log [n]: this chat's own activity log, newest first (never another chat's)."""
    args = context.args or []
    limit = LOG_DEFAULT
    if args:
        limit = int(args[0]) if len(args) == 1 and args[0].isascii() and args[0].isdigit() else 0
        if not 1 <= limit <= LOG_MAX:
            await _reply(update, USAGE["log"])
            return
    chat_id, _ = _ids(update)
    entries = await context.manager.activity(chat_id, limit)
    await _reply(update, activity_text(entries), html=True)


@answers_manager_errors
async def nodes(update: Update, context: BotContext) -> None:
    """/nodes: the machines sharing the database, in the admin chat only (the other chats
    are not told which machines serve them)."""
    chat_id, _ = _ids(update)
    admin = context.config.admin_chat
    if admin is None or not context.moved.came_from(chat_id, {admin}):
        await _reply(update, USAGE["nodes"])
        return
    await _reply(update, nodes_text(await context.manager.nodes()), html=True)


async def web(update: Update, context: BotContext) -> None:
    """/web: a one-time login link to the Mini App for a browser (:mod:`bot.weblogin`),
    always in the user's private chat: in a group, another member could open it first."""
    chat_id, user_id = _ids(update)
    config, user = context.config, update.effective_user
    if not config.miniapp_url or user is None:
        await _reply(update, USAGE["web"])
        return
    text = login_text(login_link(config.token, config.miniapp_url, user, chat_id))
    if chat_id == user_id:
        await _reply(update, text, html=True)
        return
    try:
        await context.bot.send_message(user_id, text, parse_mode=ParseMode.HTML,
                                       link_preview_options=NO_PREVIEW)
    except Forbidden:
        await _reply(update, "I cannot write to you: start a private chat with me, then send "
                             "/web here again.")
        return
    await _reply(update, "I sent you a login link for this group's downloads in our private "
                         "chat.")


async def unknown(update: Update, context: BotContext) -> None:
    """Any other command: a one-line hint."""
    await _reply(update, USAGE["unknown"])
