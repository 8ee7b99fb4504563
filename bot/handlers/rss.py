"""/rss: a chat's feeds (RSS or Atom subscriptions whose new torrents are added by themselves).

``/rss add <link> [name] [options]``, ``/rss list`` (or a bare ``/rss``), ``/rss pause``,
``/rss resume``, ``/rss remove <name>`` and ``/rss filter <name> [options]``. The words are
split like a shell's (:func:`shlex.split`), so a pattern with spaces is quoted:
``include:"web dl"``; the curly double quotes a phone puts in are read as straight ones.

A feed's link may hold an API key or a tracker's passkey, so no answer repeats it: a feed is
named by its name and its host only (:class:`~manager.FeedView` has no URL to leak).

Rights follow :mod:`bot.rights`: in a group anyone who may use the bot may subscribe (as anyone
may add a download) and look; pausing, resuming, filtering and removing a feed are for the
member who subscribed it and the chat's administrators, as acting on a download is.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from telegram import Update
from telegram.constants import ChatType, MessageLimit

from bot.context import BotContext
from bot.errors import ActionRefused, answers_manager_errors
from bot.handlers.adding import NO_PREVIEW
from bot.views import USAGE
from manager import FeedView, feed_text, utcnow

__all__ = ["EMPTY", "rss", "rss_words"]

EMPTY = "No feeds in this chat. /rss add <url> subscribes it."
"""``/rss list`` in a chat without feeds."""

_QUOTES = str.maketrans(dict.fromkeys("\u201c\u201d\u201e", '"'))
"""Phones "smarten" typed double quotes; shlex knows only the straight ones. (A curly
apostrophe stays: ``don\u2019t`` is a word, not a quote.)"""

_CHANGES = ("remove", "pause", "resume", "filter")


def rss_words(text: str) -> list[str]:
    """The words after ``/rss`` in a message's ``text``, split like a shell's.

    Returns:
        The words (the command itself, ``/rss`` or ``/rss@bot``, left out).

    Raises:
        ValueError: a quote is not closed.
    """
    parts = text.split(maxsplit=1)
    return shlex.split(parts[1].translate(_QUOTES)) if len(parts) == 2 else []


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es' if word.endswith('ch') else 's'}"


def _subscribed_text(feed: FeedView, items: int, added: int) -> str:
    """The answer to ``/rss add``: what the feed holds now and what became of it."""
    head = f"Subscribed to “{feed.name}” ({feed.host}): "
    if added:
        body = (f"{_plural(items, 'item')} in it now, the newest {_plural(added, 'match')} "
                "added, the others taken as seen; new matches are added as they come.")
    else:
        body = (f"{_plural(items, 'item')} in it now {'is' if items == 1 else 'are'} taken "
                "as seen; new matches are added as they come.")
    return f"{head}{body}\nFilter: {feed.filter}."


def _list_messages(feeds: Sequence[FeedView]) -> list[str]:
    """``/rss list`` as plain text: every feed, in as few messages as Telegram takes."""
    if not feeds:
        return [EMPTY]
    now = utcnow()  # naive UTC, as FeedView's times are
    messages, current = [], "Feeds in this chat:"
    for feed in feeds:
        block = feed_text(feed, now)
        if len(current) + 2 + len(block) > MessageLimit.MAX_TEXT_LENGTH:
            messages.append(current)
            current = block[:MessageLimit.MAX_TEXT_LENGTH]
        else:
            current += "\n\n" + block
    messages.append(current)
    return messages


async def _reply(update: Update, text: str) -> None:
    """Plain text (names and hosts need no escaping), never a link preview."""
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, link_preview_options=NO_PREVIEW)


async def _ensure_may_change(update: Update, context: BotContext, name: str) -> None:
    """Return when the user may pause, resume, filter or remove the feed ``name``.

    Raises:
        ActionRefused: in a group, neither the member who subscribed it nor one of the
            group's administrators (or Telegram did not say who they are).
    """
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None  # the auth gate let only these through
    if chat.type == ChatType.PRIVATE:
        return
    have = await context.manager.feeds.list(chat.id)
    if any(feed.name.lower() == name.lower() and feed.user_id == user.id for feed in have):
        return
    admins = await context.rights.admins(chat.id)
    if admins is None:
        raise ActionRefused("Only the member who added this feed or an admin of this chat can "
                            "change it, and Telegram did not say who the admins are just now; "
                            "try again in a moment.")
    if user.id not in admins:
        raise ActionRefused("Only the member who added this feed or an admin of this chat can "
                            "change it.")


@answers_manager_errors
async def rss(update: Update, context: BotContext) -> None:
    """/rss and its sub-commands (see the module's docstring); anything else: the usage."""
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    assert message is not None and chat is not None and user is not None  # the auth gate
    try:
        words = rss_words(message.text or "")
    except ValueError:
        await _reply(update, "A quote is not closed. " + USAGE["rss"])
        return
    verb, rest = (words[0].lower(), words[1:]) if words else ("", [])
    feeds = context.manager.feeds
    if verb in ("", "list") and not rest:
        have = await feeds.list(chat.id)
        if not have and not verb:
            await _reply(update, USAGE["rss"])
            return
        for text in _list_messages(have):
            await _reply(update, text)
        return
    if verb == "add" and rest:
        url, options = rest[0], rest[1:]
        name = options.pop(0) if options and ":" not in options[0] else None
        done = await feeds.subscribe(chat.id, user.id, url, name=name, options=options)
        await _reply(update, _subscribed_text(done.feed, done.items, done.added))
        return
    if verb not in _CHANGES or not rest or (verb != "filter" and len(rest) != 1):
        await _reply(update, USAGE["rss"])
        return
    name = rest[0]
    await _ensure_may_change(update, context, name)
    if verb == "remove":
        gone = await feeds.remove(chat.id, name)
        answer = (f"✖ The feed “{gone.name}” ({gone.host}) is removed; what it added stays "
                  "in /status.")
    elif verb == "pause":
        paused = await feeds.pause(chat.id, name)
        answer = f"⏸ The feed “{paused.name}” is paused: it is not read until /rss resume."
    elif verb == "resume":
        resumed = await feeds.resume(chat.id, name)
        answer = f"▶ The feed “{resumed.name}” is resumed and read now."
    else:
        changed = await feeds.set_filter(chat.id, name, rest[1:])
        answer = (f"The feed “{changed.name}” now takes: {changed.filter} (from its next "
                  "items on).")
    await _reply(update, answer)
