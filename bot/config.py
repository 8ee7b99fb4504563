"""What the bot needs to know of the settings; the supervisor builds it from its ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MIB", "BotConfig"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class BotConfig:
    """The bot's settings, already validated by the supervisor.

    Attributes:
        token: the bot token (never shown by ``repr``).
        download_dir: the downloads root; a chat's files are in ``torrents/<chat_id>/`` below
            it. The bot only reads there (to send a finished file) and shows paths relative
            to the download's own folder (a download keeps the folder it was added in when
            Telegram moves its chat to a new id).
        api_url: root of the Bot API server, without ``/bot``.
        allowed_users: Telegram user ids that may use the bot; empty refuses everyone.
        allowed_chats: when not empty, the bot also answers only in these chats (a private
            chat's id is its user's id), and in the supergroup Telegram upgraded one of
            them to (:mod:`bot.chatmoves`); when empty, only in private chats.
        admin_chat: chat that gets aria2c alerts (restarts, FATAL), or None.
        edit_interval: least seconds between two edits of one progress message.
        upload_limit: largest upload, in bytes: a file up to it is sent as one document,
            a bigger one in numbered parts of at most this size.
        local_mode: the Bot API server at :attr:`api_url` runs with ``--local``: a file that
            fits in one upload is passed to it by path (a ``file://`` URI) and the server
            reads it from disk itself.
        send_attempts: tries for one part before the send gives up on it.
        send_retry_delay: seconds before the first retry of a part (doubling each time).
        torrent_max_bytes: largest .torrent document downloaded from Telegram.
        webhook_url: public HTTPS URL for Telegram to post updates to; empty: long polling.
        webhook_listen: ``host:port`` the webhook server binds (behind a reverse proxy).
        refusal_interval: seconds between two refusals sent to the same stranger.
        poll_timeout: seconds one long poll (``getUpdates``) waits on the server.
        mirror_button: completion messages offer a "Mirror" button (mirroring is set up
            and done on request, not automatically).
        link_button: completion messages offer a "Get link" button (the link server is
            on: a public URL is set).
        miniapp_url: the Mini App's address (its menu button opens it); empty: no Mini App.
    """

    token: str = field(repr=False)
    download_dir: Path
    api_url: str = "https://api.telegram.org"
    allowed_users: frozenset[int] = frozenset()
    allowed_chats: frozenset[int] = frozenset()
    admin_chat: int | None = None
    edit_interval: float = 10.0
    upload_limit: int = 50 * MIB
    local_mode: bool = False
    send_attempts: int = 5
    send_retry_delay: float = 2.0
    torrent_max_bytes: int = 10 * MIB
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1:8443"
    refusal_interval: float = 600.0
    poll_timeout: int = 30
    mirror_button: bool = False
    link_button: bool = False
    miniapp_url: str = ""

    @property
    def app_button_url(self) -> str:
        """The Mini App's address for buttons under messages: HTTPS only (Telegram refuses
        the whole message otherwise), else empty (no button)."""
        return self.miniapp_url if self.miniapp_url.startswith("https://") else ""

    @property
    def uses_webhook(self) -> bool:
        """True when Telegram posts updates to :attr:`webhook_url` instead of long polling."""
        return bool(self.webhook_url)
