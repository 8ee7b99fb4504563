"""Adding a download from a message: the reply becomes its live progress message."""

from __future__ import annotations

import logging

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode

from bot.context import BotContext
from bot.errors import user_text
from bot.views import progress_keyboard, progress_text
from manager import ManagerError

__all__ = ["NO_PREVIEW", "add_download"]

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


async def add_download(update: Update, context: BotContext, source: str | bytes) -> None:
    """Hand ``source`` (a magnet link or .torrent bytes) to the manager and reply.

    The reply shows the download's progress and is edited from then on by the progress
    board. A refusal (invalid magnet, no space...) is answered with the manager's reason.
    """
    message = update.effective_message
    chat = update.effective_chat
    user = update.effective_user
    if message is None or chat is None or user is None:
        return
    try:
        result = await context.manager.add(source, chat.id, user.id)
    except ManagerError as error:
        await message.reply_text(user_text(error))
        return
    torrent = result.torrent
    note = result.note or ("already in the list" if result.existing else None)
    if result.existing and torrent.state.is_final:
        await message.reply_text(progress_text(torrent, note=note), parse_mode=ParseMode.HTML,
                                 link_preview_options=NO_PREVIEW)
        return
    text = progress_text(torrent, note=note)
    markup = progress_keyboard(torrent, app_url=context.board.app_url)
    reply = await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup,
                                     link_preview_options=NO_PREVIEW)
    context.board.attach(torrent, reply.message_id, text=text, markup=markup)
    try:
        await context.manager.set_message(torrent.id, reply.message_id)
    except ManagerError as error:  # the board knows the message; only a restart forgets it
        log.warning("could not store the progress message of #%s: %s", torrent.id, error)
