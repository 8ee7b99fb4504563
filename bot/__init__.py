"""ariabot's Telegram bot: python-telegram-bot handlers in front of the torrent manager.

It knows the manager's public API and Telegram, nothing else (no aria2, no database, no
supervisor). The supervisor builds it with :func:`build_application` from a
:class:`BotConfig` and runs it inside its own event loop with :class:`EmbeddedBot`; the rest
are the rooms behind that door:

* ``app`` (wiring), ``auth`` (the allow-list gate), ``rights`` (who may act in a group),
  ``handlers/`` (commands, buttons, messages), ``errors`` (what a user reads of an error);
* ``views``, ``activity`` (pure screens), ``arguments``, ``callbackdata`` (strict parsing);
* ``progress`` (live edits), ``news`` (new messages), ``sender``, ``tasks`` (their plumbing);
* ``delivery`` (files sent into a chat), ``senddesk`` (a node's own sends, asked by the
  front when several nodes share one database).
"""

from bot.app import EmbeddedBot, WebhookUnavailable, build_application
from bot.config import BotConfig
from bot.senddesk import NodeSendDesk
from bot.startup import BotApiUnusable

__all__ = ["BotApiUnusable", "BotConfig", "EmbeddedBot", "NodeSendDesk", "WebhookUnavailable",
           "build_application"]
