"""``/web``: a login link that opens the Mini App in a browser outside Telegram.

Telegram signs what it hands a Mini App with a key derived from the bot's token; the bot
holds the token, so it can sign the same kind of data for a browser: the user, the chat
(a group as the ``startapp`` parameter ``c<chat id>``, as :mod:`web.miniapp.identity` reads
it), and a random ``login`` nonce that makes it a one-time link. The page exchanges it for
a session at once; the server refuses it a second time and after ten minutes, so a link
that leaked after its use opens nothing. It goes only to the user's private chat: in a
group, anyone could open it first.
"""

from __future__ import annotations

import html
import json
import secrets
from urllib.parse import quote

from init_data_py import sign
from telegram import User

__all__ = ["login_link", "login_text"]


def login_link(token: str, miniapp_url: str, user: User, chat_id: int) -> str:
    """The Mini App's address with a one-time login for ``user`` in ``chat_id``."""
    fields = {
        "user": json.dumps({"id": user.id, "first_name": user.first_name},
                           separators=(",", ":"), ensure_ascii=False),
        "login": secrets.token_urlsafe(18),
    }
    if chat_id != user.id:
        fields["start_param"] = f"c{chat_id}"
    return f"{miniapp_url}#login={quote(sign(fields, token), safe='')}"


def login_text(link: str) -> str:
    """The message that carries a login link (HTML)."""
    address = html.escape(link, quote=True)
    return (f"🖥 <a href=\"{address}\">Open your downloads in a browser</a>\n"
            "The link works once, in the next 10 minutes; after that, send /web again. "
            "Do not share it: whoever opens it first acts as you.")
