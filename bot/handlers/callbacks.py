"""Button presses: callback data is parsed strictly, every query is answered once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from telegram import CallbackQuery, Chat, ReplyParameters, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.callbackdata import Action, InvalidCallback, parse_callback
from bot.context import BotContext
from bot.errors import answer, answers_manager_errors
from bot.handlers.adding import NO_PREVIEW
from bot.rights import ensure_may_act
from bot.sendable import NothingToSend, SentByItsNode, files_for_send, start_send
from bot.sender import is_not_modified
from bot.sendviews import files_send_view
from bot.views import STATUS_PAGE_SIZE, link_text, status_view

__all__ = ["STALE_BUTTON", "on_button"]

log = logging.getLogger(__name__)

STALE_BUTTON = "This button does not work any more."



@dataclass(frozen=True)
class _Press:
    """One button press, parsed: who pressed what under which message."""

    query: CallbackQuery
    action: Action
    chat: Chat
    message_id: int
    user_id: int

    @property
    def chat_id(self) -> int:
        """The chat the button is in."""
        return self.chat.id

    async def answer(self, text: str | None = None, *, alert: bool = False) -> None:
        """Answer the press (once; one Telegram no longer takes is only logged)."""
        await answer(self.query, text, alert=alert)

    async def check_may_act(self, context: BotContext) -> None:
        """Raise ActionRefused unless this user may change the download (see bot.rights)."""
        await ensure_may_act(context, self.chat, self.user_id, self.action.id)


@answers_manager_errors
async def on_button(update: Update, context: BotContext) -> None:
    """Dispatch a button press by its verb; anything unknown is only answered."""
    query = update.callback_query
    if query is None:
        return
    try:
        action = parse_callback(query.data)
    except InvalidCallback:
        log.info("refused callback data %r from user %s", (query.data or "")[:80],
                 query.from_user.id)
        await answer(query, STALE_BUTTON)
        return
    message = query.message
    if message is None:
        await answer(query, STALE_BUTTON)
        return
    press = _Press(query, action, message.chat, message.message_id, query.from_user.id)
    await _PRESSES[action.verb](press, context)


async def _pause(press: _Press, context: BotContext) -> None:
    await press.check_may_act(context)
    torrent = await context.manager.pause(press.action.id, press.chat_id, press.user_id)
    await press.answer("Paused")
    context.board.show_now(torrent, press.message_id, confirm=False)


async def _resume(press: _Press, context: BotContext) -> None:
    await press.check_may_act(context)
    torrent = await context.manager.resume(press.action.id, press.chat_id, press.user_id)
    await press.answer("Resumed")
    context.board.show_now(torrent, press.message_id, confirm=False)


async def _refresh(press: _Press, context: BotContext) -> None:
    torrent = await context.manager.get(press.action.id, press.chat_id)
    await press.answer()
    context.board.show_now(torrent, press.message_id)


async def _back(press: _Press, context: BotContext) -> None:
    torrent = await context.manager.get(press.action.id, press.chat_id)
    await press.answer()
    context.board.show_now(torrent, press.message_id, confirm=False)


async def _cancel(press: _Press, context: BotContext) -> None:
    await press.check_may_act(context)  # the first press too: it asks on everyone's screen
    if press.action.arg is None:  # first press: ask to confirm
        torrent = await context.manager.get(press.action.id, press.chat_id)
        if torrent.state.is_final:
            await press.answer(f"#{torrent.id} is already {torrent.state.label}.")
        else:
            await press.answer()
        context.board.show_now(torrent, press.message_id, confirm=True)
        return
    delete = press.action.arg == "delete"
    cancelled = await context.manager.cancel(press.action.id, press.chat_id, press.user_id,
                                             delete_files=delete)
    await press.answer(f"Cancelled{cancelled.outcome}")
    context.board.show_now(cancelled.torrent, press.message_id, confirm=False)


async def _mirror(press: _Press, context: BotContext) -> None:
    """The Mirror button of a completion message, or Stop upload on a progress message."""
    await press.check_may_act(context)
    if press.action.arg == "stop":
        torrent = await context.manager.stop_mirror(press.action.id, press.chat_id,
                                                    press.user_id)
        await press.answer("Upload stopped.")
    else:
        torrent = await context.manager.mirror(press.action.id, press.chat_id, press.user_id)
        await press.answer("Uploading…")
    if torrent.message_id is not None:
        context.board.show_now(torrent, torrent.message_id)


async def _link(press: _Press, context: BotContext) -> None:
    """The "Get link" button of a completion message: the link comes as a reply to it (an
    alert could not be clicked)."""
    made = await context.manager.link(press.action.id, press.chat_id, press.user_id)
    await press.answer("Here is the link.")
    await context.bot.send_message(
        press.chat_id, link_text(made, datetime.now(UTC)), parse_mode=ParseMode.HTML,
        link_preview_options=NO_PREVIEW,
        reply_parameters=ReplyParameters(press.message_id, allow_sending_without_reply=True))


async def _status(press: _Press, context: BotContext) -> None:
    overview = await context.manager.status_page(press.chat_id, press.action.id,
                                                 STATUS_PAGE_SIZE)
    text, markup = status_view(overview)
    try:
        await press.query.edit_message_text(text, parse_mode=ParseMode.HTML,
                                            reply_markup=markup, link_preview_options=NO_PREVIEW)
    except BadRequest as error:
        if not is_not_modified(error):
            raise
    await context.manager.set_overview_message(press.chat_id, press.message_id)
    await press.answer()


async def _send(press: _Press, context: BotContext) -> None:
    """Send file / Send all: every file of a finished download that is on disk."""
    await _send_files(press, context, None)


async def _sendfile(press: _Press, context: BotContext) -> None:
    """The Send button of one file in a finished download's /files list."""
    await _send_files(press, context, press.action.number)


async def _send_files(press: _Press, context: BotContext, number: int | None) -> None:
    """Send a finished download's files (all, or file ``number``) from this node, or have
    the node whose disk has them send them (several nodes)."""
    try:
        torrent, outs = await files_for_send(context.manager, press.action.id, press.chat_id,
                                             number)
        start_send(context.deliveries, press.chat_id, torrent, outs, press.message_id)
    except NothingToSend as refused:
        await press.answer(str(refused), alert=True)
        return
    except SentByItsNode:
        await context.manager.send_on_owner(press.action.id, press.chat_id, press.user_id,
                                            number=number, reply_to=press.message_id)
    await press.answer("Sending…")


async def _unsend(press: _Press, context: BotContext) -> None:
    """Stop sending: the Stop button of a send's status message (in a group, for whoever
    may act on the download, like the other buttons that change something). The send may
    be another node's, whose disk has the files."""
    await press.check_may_act(context)
    if (context.deliveries.cancel(press.chat_id, press.action.id)
            or await context.manager.stop_send_on_owner(press.action.id, press.chat_id,
                                                        press.user_id)):
        await press.answer("Stopping…")
    else:
        await press.answer(f"Nothing of #{press.action.id} is being sent.")


async def _files_page(press: _Press, context: BotContext) -> None:
    """Prev/Next in a finished download's /files list."""
    torrent = await context.manager.get(press.action.id, press.chat_id)
    entries = await context.manager.own_files(torrent.id, press.chat_id)
    text, markup = files_send_view(torrent, entries, press.action.number)
    try:
        await press.query.edit_message_text(text, parse_mode=ParseMode.HTML,
                                            reply_markup=markup, link_preview_options=NO_PREVIEW)
    except BadRequest as error:
        if not is_not_modified(error):
            raise
    await press.answer()


_PRESSES: Mapping[str, Callable[[_Press, BotContext], Awaitable[None]]] = MappingProxyType({
    "pause": _pause,
    "resume": _resume,
    "refresh": _refresh,
    "back": _back,
    "cancel": _cancel,
    "status": _status,
    "send": _send,
    "sendfile": _sendfile,
    "unsend": _unsend,
    "files": _files_page,
    "mirror": _mirror,
    "link": _link,
})
