"""The python-telegram-bot Application: built (all wiring in one function) and run embedded.

The supervisor owns the event loop, so the Application is never run with ``run_polling()``:
:class:`EmbeddedBot` initialises it, subscribes the progress board to the manager *before*
``start()`` (``post_init`` would not run here), starts the updater (long polling, or a
webhook when configured) and tears all of it down in reverse order.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    MenuButtonDefault,
    MenuButtonWebApp,
    Update,
    WebAppInfo,
)
from telegram.error import Conflict, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.auth import AuthGate
from bot.chatmoves import MovedChats
from bot.config import BotConfig
from bot.context import BOARD, CONFIG, DELIVERIES, MANAGER, MOVED, RIGHTS, BotContext
from bot.delivery import Deliveries
from bot.errors import on_error
from bot.handlers import callbacks, commands, messages, migration, rss
from bot.pacer import ChatPacer
from bot.polling import PollFloorRequest
from bot.progress import ProgressBoard
from bot.rights import GroupRights
from bot.sender import BotSender
from bot.startup import initialize
from bot.updates import ChatOrderedUpdates
from bot.uploads import bot_request
from bot.views import COMMANDS
from bot.webrights import WebAppRights
from bot.websend import WebAppSender
from manager import ManagerError, TorrentManager

__all__ = ["ALLOWED_UPDATES", "GATE", "EmbeddedBot", "WebhookUnavailable",
           "build_application"]

log = logging.getLogger(__name__)

ALLOWED_UPDATES = (Update.MESSAGE, Update.CALLBACK_QUERY)
"""The only update kinds asked for: edited messages, channel posts etc. never arrive."""

MENU_BUTTON_TEXT = "Downloads"
"""The menu button's words when it opens the Mini App."""

GATE = "gate"
"""``bot_data`` key of the :class:`~bot.auth.AuthGate`."""

BotApplication = Application[Any, BotContext, Any, Any, Any, Any]


class WebhookUnavailable(RuntimeError):
    """A webhook is configured but PTB's webhook server (tornado) is not installed."""


def build_application(
    config: BotConfig,
    manager: TorrentManager,
    *,
    board_factory: Callable[[BotSender], ProgressBoard] | None = None,
) -> BotApplication:
    """Build the Application with every handler; nothing is started or sent yet.

    Parameters:
        config: the bot's settings.
        manager: the torrent manager the handlers and the board use.
        board_factory: builds the progress board from a sender (tests inject a clock);
            default: a board with ``config``'s interval and admin chat.

    Returns:
        The Application; ``bot_data`` holds the manager, config, board, gate, the
        group rights and the send jobs.
    """
    # Opt into PTB's timedelta durations: otherwise every 429 answer raises a deprecation
    # warning inside RetryAfter (ariabot reads retry_after either way, see bot/sender.py).
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    application: BotApplication = (
        ApplicationBuilder()
        .token(config.token)
        .base_url(f"{config.api_url}/bot")
        .base_file_url(f"{config.api_url}/file/bot")
        .local_mode(config.local_mode)
        .get_updates_request(PollFloorRequest())  # never a hot loop: bot/polling.py
        .request(bot_request())  # file uploads are read off the event loop: bot/uploads.py
        # One paced queue per chat, by priority, and turns shared with the other nodes:
        # bot/pacer.py.
        .rate_limiter(ChatPacer(take_turn=manager.take_turn))
        .concurrent_updates(ChatOrderedUpdates())  # chats side by side: bot/updates.py
        .context_types(ContextTypes(context=BotContext))
        .build()
    )
    sender = BotSender(application.bot)
    moved = MovedChats()
    board = board_factory(sender) if board_factory else ProgressBoard(
        sender, manager, edit_interval=config.edit_interval, admin_chat=config.admin_chat,
        moved=moved, mirror_button=config.mirror_button, link_button=config.link_button,
        app_url=config.app_button_url,
    )
    gate = AuthGate(config, moved=moved)
    application.bot_data.update({MANAGER: manager, CONFIG: config, BOARD: board,
                                 GATE: gate, MOVED: moved,
                                 RIGHTS: GroupRights(application.bot),
                                 DELIVERIES: Deliveries(
                                     application.bot, manager, limit=config.upload_limit,
                                     local_mode=config.local_mode,
                                     edit_interval=config.edit_interval,
                                     attempts=config.send_attempts,
                                     retry_delay=config.send_retry_delay)})

    new_messages = filters.UpdateType.MESSAGE
    application.add_handler(TypeHandler(Update, gate), group=-1)
    application.add_handler(CommandHandler(["start", "help"], commands.help_command,
                                           filters=new_messages))
    application.add_handler(CommandHandler("torrent", commands.torrent, filters=new_messages))
    application.add_handler(CommandHandler("status", commands.status, filters=new_messages))
    application.add_handler(CommandHandler("pause", commands.pause, filters=new_messages))
    application.add_handler(CommandHandler("resume", commands.resume, filters=new_messages))
    application.add_handler(CommandHandler("cancel", commands.cancel, filters=new_messages))
    application.add_handler(CommandHandler("files", commands.files, filters=new_messages))
    application.add_handler(CommandHandler("log", commands.activity_log, filters=new_messages))
    application.add_handler(CommandHandler("mirror", commands.mirror, filters=new_messages))
    application.add_handler(CommandHandler("link", commands.link, filters=new_messages))
    application.add_handler(CommandHandler("nodes", commands.nodes, filters=new_messages))
    application.add_handler(CommandHandler("rss", rss.rss, filters=new_messages))
    application.add_handler(CommandHandler("web", commands.web, filters=new_messages))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, migration.on_migration))
    application.add_handler(MessageHandler(new_messages & filters.COMMAND, commands.unknown))
    application.add_handler(MessageHandler(new_messages & filters.Document.ALL,
                                           messages.on_document))
    application.add_handler(MessageHandler(new_messages & filters.TEXT & ~filters.COMMAND,
                                           messages.on_text))
    application.add_handler(CallbackQueryHandler(callbacks.on_button))
    application.add_error_handler(on_error)
    return application


def _host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _polling_failed(error: TelegramError) -> None:
    """One line for a failed long poll (python-telegram-bot polls again by itself; its own
    report is a traceback per failure). A 409 is another receiver of the same token: with
    several nodes, a front that was frozen and polled once more as it woke, before it found
    out another node had become the front."""
    if isinstance(error, Conflict):
        log.warning("Telegram ended a long poll: another receiver polls with this token (%s)",
                    error.message)
    else:
        log.warning("a long poll for updates failed (%s: %s); polling again",
                    type(error).__name__, error)


class EmbeddedBot:
    """Runs a built Application inside the supervisor's event loop.

    Parameters:
        application: from :func:`build_application`.
        manager: the manager the progress board subscribes to.
    """

    def __init__(self, application: BotApplication, manager: TorrentManager) -> None:
        self.application = application
        self.manager = manager
        self._unsubscribe: Callable[[], None] | None = None
        self._initialized = False

    @property
    def board(self) -> ProgressBoard:
        """The progress board (subscribed to the manager while running)."""
        board: ProgressBoard = self.application.bot_data[BOARD]
        return board

    @property
    def config(self) -> BotConfig:
        """The bot's settings."""
        config: BotConfig = self.application.bot_data[CONFIG]
        return config

    async def start(self) -> None:
        """Initialise (``getMe``), subscribe the board, set the commands, start receiving.

        Raises:
            BotApiUnusable: the token was refused, or the server's getMe is not a bot's.
            telegram.error.NetworkError: the Bot API server cannot be reached.
            WebhookUnavailable: a webhook is configured without PTB's webhook extra.
        """
        app = self.application
        try:
            await initialize(app, self.config.api_url)
        except BaseException:
            await app.bot.shutdown()  # PTB leaves its HTTP clients open when getMe fails
            raise
        self._initialized = True
        try:
            self._unsubscribe = self.manager.subscribe(self.board)
            app.bot_data[GATE].log_startup()
            await self._load_chat_moves()
            try:
                await app.bot.set_my_commands([BotCommand(n, d) for n, d in COMMANDS
                                               if n != "web" or self.config.miniapp_url])
            except TelegramError as error:
                log.warning("could not set the bot's command menu: %s", error.message)
            await self._set_menu_button()
            await app.start()
            self.board.start()  # notices stored while the bot was down or Telegram away
            if self.config.uses_webhook:
                await self._start_webhook()
            else:
                await app.updater.start_polling(  # type: ignore[union-attr]
                    timeout=timedelta(seconds=self.config.poll_timeout),
                    allowed_updates=list(ALLOWED_UPDATES), drop_pending_updates=False,
                    error_callback=_polling_failed,
                )
        except BaseException:
            await self.stop()
            raise
        log.info("the Telegram bot @%s is running (%s)", app.bot.username,
                 "webhook" if self.config.uses_webhook else "long polling")

    def web_rights(self) -> WebAppRights:
        """The bot's chat rules, for the Mini App (:mod:`bot.webrights`)."""
        data = self.application.bot_data
        return WebAppRights(self.application.bot, data[GATE], data[RIGHTS])

    def web_sender(self) -> WebAppSender:
        """The Mini App's "Send to chat", through this bot's sends (:mod:`bot.websend`)."""
        return WebAppSender(self.manager, self.application.bot_data[DELIVERIES])

    async def _set_menu_button(self) -> None:
        """The menu button of private chats opens the Mini App when there is one Telegram
        opens (HTTPS). When there is none, a Mini App button an earlier run set (its address
        ends in ``/app/``) goes back to Telegram's default, so that it does not open a page
        that is gone or moved; a button the owner set in @BotFather is left alone."""
        url, bot = self.config.app_button_url, self.application.bot
        try:
            if url:
                await bot.set_chat_menu_button(
                    menu_button=MenuButtonWebApp(MENU_BUTTON_TEXT, WebAppInfo(url)))
                return
            current = await bot.get_chat_menu_button()
            if isinstance(current, MenuButtonWebApp) and current.web_app.url.endswith("/app/"):
                await bot.set_chat_menu_button(menu_button=MenuButtonDefault())
        except TelegramError as error:
            log.warning("could not set the bot's menu button: %s", error.message)

    async def _load_chat_moves(self) -> None:
        """The groups Telegram upgraded before this start: served in their new place from
        the first update on."""
        try:
            moves = await self.manager.chat_moves()
        except ManagerError as error:
            log.warning("cannot read which groups became supergroups (%s): they are served "
                        "once Telegram says so again", error)
            return
        self.application.bot_data[MOVED].load(moves)

    async def _start_webhook(self) -> None:
        if importlib.util.find_spec("tornado") is None:
            raise WebhookUnavailable(
                "ARIABOT_WEBHOOK_URL is set but the webhook server is not installed: "
                "pip install 'python-telegram-bot[webhooks]', or leave it empty for long polling"
            )
        host, port = _host_port(self.config.webhook_listen)
        await self.application.updater.start_webhook(  # type: ignore[union-attr]
            listen=host, port=port,
            url_path=urlsplit(self.config.webhook_url).path.lstrip("/"),
            webhook_url=self.config.webhook_url,
            secret_token=secrets.token_urlsafe(32),
            allowed_updates=list(ALLOWED_UPDATES), drop_pending_updates=False,
        )

    def _unfollow(self) -> None:
        """The board hears the manager's events no more."""
        if self._unsubscribe is not None:
            with contextlib.suppress(ValueError):
                self._unsubscribe()
            self._unsubscribe = None

    async def stop(self, *, flush: bool = True) -> None:
        """Stop receiving and handling, unsubscribe, flush the board's news, shut down.

        ``flush=False`` (the front's lock was lost: another node may be the front already)
        stops the news first and sends none of those pending: they are the new front's to
        send, and sent by both they would be told twice."""
        if not flush:
            self._unfollow()
            await self.board.close(flush_timeout=0)
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()  # waits for the handlers still running
        deliveries: Deliveries = app.bot_data[DELIVERIES]
        await deliveries.close("the bot stopped")  # ariabot, or its turn as the front
        if flush:
            self._unfollow()
            await self.board.close()  # the bot's HTTP client is still open for the last news
        if self._initialized:
            self._initialized = False
            await app.shutdown()
