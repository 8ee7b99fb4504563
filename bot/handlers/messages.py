"""Plain messages: a magnet or a .torrent link pasted as text, a .torrent sent as a
document."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.context import BotContext
from bot.handlers.adding import add_download
from manager import find_magnets, find_torrent_urls, human_size

__all__ = ["TORRENT_MIME", "on_document", "on_text"]

log = logging.getLogger(__name__)

TORRENT_MIME = "application/x-bittorrent"


async def on_text(update: Update, context: BotContext) -> None:
    """Text that is not a command: add every magnet link in it, and every link to a .torrent
    file (a URL whose path ends in .torrent; others only by /torrent <url>); a hint in
    private chats."""
    message = update.effective_message
    if message is None or not message.text:
        return
    links = find_magnets(message.text) + find_torrent_urls(message.text)
    if not links:
        chat = update.effective_chat
        if chat is not None and chat.type == ChatType.PRIVATE:
            await message.reply_text("Send me a magnet link, a .torrent file or a link to "
                                     "one; /help says more.")
        return
    for link in links:
        await add_download(update, context, link)


async def on_document(update: Update, context: BotContext) -> None:
    """A document: a .torrent file is checked for size *before* it is downloaded, then added."""
    message = update.effective_message
    if message is None or message.document is None:
        return
    document = message.document
    name = (document.file_name or "").lower()
    if not (name.endswith(".torrent") or document.mime_type == TORRENT_MIME):
        await message.reply_text("That is not a .torrent file. Send a .torrent file or a "
                                 "magnet link.")
        return
    limit = context.config.torrent_max_bytes
    too_large = (f"That .torrent file is too large; ariabot accepts up to "
                 f"{human_size(limit)}.")
    if document.file_size is not None and document.file_size > limit:
        await message.reply_text(too_large)
        return
    try:
        telegram_file = await document.get_file()
        if telegram_file.file_size is not None and telegram_file.file_size > limit:
            await message.reply_text(too_large)
            return
        data = bytes(await telegram_file.download_as_bytearray())
    except BadRequest as error:
        log.info("could not fetch a document from Telegram: %s", error.message)
        await message.reply_text("Telegram did not hand over that file; please send it again.")
        return
    if len(data) > limit:
        await message.reply_text(too_large)
        return
    await add_download(update, context, data)
