"""The composition root of ``ariabot run``: lock, aria2c, (manager, bot), and teardown.

Everything ariabot runs is built here and nowhere else; the other packages take what they
need as constructor arguments. Teardown runs in the reverse order of start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import re
import signal
import socket
from datetime import timedelta
from pathlib import Path

from bot import BotConfig, EmbeddedBot, NodeSendDesk, build_application
from bot.config import MIB
from manager import (
    Aria2Endpoint,
    Aria2Rpc,
    FeedConfig,
    FrontLock,
    LinkConfig,
    ManagerConfig,
    MirrorConfig,
    NodeConfig,
    Store,
    StoreError,
    TorrentManager,
    Uploader,
    hybrid_limitation,
    masked_url,
)
from supervisor import __version__
from supervisor.config import Settings
from supervisor.control import ControlServer
from supervisor.exits import EXIT_ERROR, EXIT_OK
from supervisor.front import FrontDuty
from supervisor.instance import InstanceLock, stop_stale_aria2c
from supervisor.layout import StateLayout
from supervisor.linkkey import load_link_key
from supervisor.logs import RedactingFormatter
from supervisor.nodehome import load_node_home
from supervisor.parsers import split_listen
from supervisor.process import Aria2Fatal, Aria2Process, SupervisionPolicy
from supervisor.render import new_secret, pick_free_port, render_config
from supervisor.retention import run_retention
from supervisor.statelog import DownloadStateLog
from supervisor.states import ProcessState, StateChange
from supervisor.watchfolder import WatchFolder
from web import LinkServer
from web.miniapp import ChatRights, ChatSender, InitDataCheck, MiniApp

__all__ = ["LinkServerUnusable", "bot_config", "link_config", "mirror_config", "node_config",
           "serve"]

log = logging.getLogger(__name__)


class LinkServerUnusable(OSError):
    """The link server cannot listen where ``ARIABOT_HTTP_LISTEN`` says (a human must act)."""


async def serve(  # noqa: PLR0915 - the composition root: all wiring in one place
    settings: Settings, aria2c: Path, formatter: RedactingFormatter,
    aria2c_version: tuple[int, ...], *, uploader: Uploader | None = None,
) -> int:
    """Run ariabot until SIGINT/SIGTERM (exit 0) or until it cannot go on.

    Returns:
        The exit code (see :mod:`supervisor.exits`): 0 stopped on request; 1 aria2c FATAL
        or the Bot API unreachable at start (it may pass); 2 the Bot API refused the token,
        is not a Bot API server, or the webhook extra is missing (a human must act).

    Parameters:
        settings: validated settings.
        aria2c: the checked aria2c executable.
        formatter: the log formatter, told about the RPC secret so it never prints it.
        aria2c_version: that executable's version (what it cannot download is refused).
        uploader: mirrors finished downloads (rclone), or None when mirroring is off.

    Raises:
        AlreadyRunning: another ariabot holds this data dir.
        LinkKeyError: links are on and their key cannot be made or read.
        LinkServerUnusable: links are on and their server cannot listen.
    """
    layout = StateLayout(settings.data_dir)
    layout.create()
    settings.download_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with InstanceLock(layout.lock):
        stop_stale_aria2c(layout)
        _remove_runtime(layout)
        endpoint = Aria2Endpoint(port=settings.rpc_port or pick_free_port(), secret=new_secret())
        formatter.add_secret(endpoint.secret)
        render_config(settings, layout, port=endpoint.port, secret=endpoint.secret)
        aria2 = Aria2Process(aria2c, layout, endpoint, SupervisionPolicy.from_settings(settings))
        store = Store(settings.database_url or f"sqlite:///{layout.database}")
        rpc = Aria2Rpc(endpoint, timeout=10.0)
        node = node_config(settings, layout)
        manager = TorrentManager(rpc, store, ManagerConfig(
            download_dir=settings.download_dir,
            progress_interval=settings.progress_interval,
            torrent_max_bytes=settings.torrent_max_bytes,
            bt_stop_timeout=settings.bt_stop_timeout,
            aria2_version=aria2c_version,
            enable_dht=settings.enable_dht,
            mirror=mirror_config(settings),
            links=link_config(settings, layout),
            fetch_allowed_networks=tuple(
                ipaddress.ip_network(network) for network in settings.fetch_allow_networks),
            feeds=FeedConfig(interval=settings.feed_interval, max_adds=settings.feed_max_adds,
                             max_bytes=settings.feed_max_bytes,
                             failing_after=settings.feed_failing_after),
        ), uploader=uploader, node=node)
        aria2.subscribe(lambda change: _tell_manager(manager, change))
        manager.subscribe(DownloadStateLog())
        retention: asyncio.Task[None] | None = None
        watching: asyncio.Task[None] | None = None
        control = ControlServer(manager, layout.control_socket)
        links: LinkServer | None = None
        front: FrontDuty | None = None
        desk: NodeSendDesk | None = None
        duty: asyncio.Task[int] | None = None
        stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop_requested.set)
        joined = False
        try:
            await _open_store(store, settings)
            await manager.join()  # before anything is done as this node
            joined = True
            await _remove_leftover_control_files(manager)  # aria2c is not running yet
            # The stored downloads are read while aria2c restores its session (seconds
            # each with 100,000 of them), not after it.
            loading = asyncio.create_task(manager.load(), name="load downloads")
            try:
                await aria2.start()
            except BaseException as error:
                loading.cancel()
                await asyncio.gather(loading, return_exceptions=True)
                if isinstance(error, Aria2Fatal):
                    return _fatal(str(error))
                raise
            await loading
            await manager.start(read_feeds=False)  # the front's (see supervisor.front)
            # What start-up built (a record per stored unfinished download: 100,000 of them
            # at scale) lives as long as ariabot: out of the collector's full passes, which
            # would otherwise walk it all and hold the event loop for tens of milliseconds.
            gc.freeze()
            await control.start()
            if settings.retention_days:
                retention = asyncio.create_task(
                    run_retention(manager, settings.retention_days), name="retention")
            if settings.watch_dir is not None:
                watching = asyncio.create_task(WatchFolder(
                    manager, settings.watch_dir, settings.watch_chat,
                    settings.torrent_max_bytes).run(), name="watch folder")
            if settings.local_mode:
                log.info("local mode: no Telegram token, so the bot is off; set "
                         "ARIABOT_TELEGRAM_TOKEN to drive ariabot from Telegram")
            if store.shared and not settings.local_mode:  # the front asks for its files
                desk = NodeSendDesk(bot_config(settings), manager)
                manager.serve_sends(desk)
            # --- the front: the Telegram bot and the feeds, on one node of the database --
            front = FrontDuty(
                FrontLock(store.url, node.name, node.dead_after), manager,
                None if settings.local_mode else lambda: EmbeddedBot(
                    build_application(bot_config(settings), manager), manager))
            duty = asyncio.create_task(front.run(), name="front")
            settled = asyncio.ensure_future(front.settled.wait())
            await asyncio.wait([duty, settled], return_when=asyncio.FIRST_COMPLETED)
            settled.cancel()
            if duty.done():
                return duty.result()  # the bot cannot start
            if settings.links:  # after the bot: the Mini App asks it for the chats' rules
                links = await _start_links(settings, manager, front, front)
            log.info("ariabot is running (data dir %s, downloads in %s)",
                     settings.data_dir, settings.download_dir)
            if limitation := hybrid_limitation(aria2c_version):
                log.warning("%s: hybrid (v1+v2) torrents are refused when added", limitation)
            return await _run_until_stopped(aria2, stop_requested, manager.replaced, duty)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            if duty is not None:
                duty.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await duty
            if front is not None:
                await front.stop()
            for job in (retention, watching):
                if job is not None:
                    job.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await job
            if links is not None:
                await links.stop()
            if desk is not None:
                await desk.close()
            await control.stop()
            await manager.close()
            await aria2.stop()
            if joined and aria2.state is ProcessState.STOPPED:
                await _remove_leftover_control_files(manager)  # an aria2c killed mid-tick
            await rpc.close()
            await store.close()
            _remove_runtime(layout)


async def _open_store(store: Store, settings: Settings) -> None:
    """Open the store; a database that refuses (a wrong password, a missing database, no
    server) is one line naming the setting, with its password masked.

    Raises:
        StoreError: the database cannot be opened or migrated.
    """
    try:
        await store.open()
    except StoreError as error:
        url = settings.database_url
        if not url:
            raise
        # The store names only the part after the "@" (a password= parameter would be in
        # it): the whole URL, masked, replaces it.
        text = str(error).replace(url.split("@")[-1], masked_url(url), 1)
        raise StoreError(" ".join(f"{text} (check ARIABOT_DATABASE_URL)".split())) from None


async def _remove_leftover_control_files(manager: TorrentManager) -> None:
    """Finished downloads keep no ``.aria2`` beside them (see :mod:`manager.downloads.leftovers`);
    a store that cannot be read leaves them for the next time."""
    try:
        await manager.remove_leftover_control_files()
    except StoreError as error:
        log.warning("could not look for control files left beside finished downloads: %s",
                    error)


def bot_config(settings: Settings) -> BotConfig:
    """The Telegram bot's settings, taken from ariabot's."""
    return BotConfig(
        token=settings.token.reveal(),
        download_dir=settings.download_dir,
        api_url=settings.api_url,
        allowed_users=frozenset(settings.allowed_users),
        allowed_chats=frozenset(settings.allowed_chats),
        admin_chat=settings.admin_chat or None,
        edit_interval=settings.edit_interval,
        upload_limit=settings.upload_limit_mb * MIB,
        local_mode=settings.api_local_mode,
        torrent_max_bytes=settings.torrent_max_bytes,
        webhook_url=settings.webhook_url,
        webhook_listen=settings.webhook_listen,
        mirror_button=settings.mirroring and not settings.auto,
        link_button=settings.links,
        miniapp_url=settings.miniapp_url,
    )


def link_config(settings: Settings, layout: StateLayout) -> LinkConfig | None:
    """How links are signed, or None when they are off (no public URL).

    Raises:
        LinkKeyError: the key file cannot be made or read, or others may read it.
    """
    if not settings.links:
        return None
    return LinkConfig(public_url=settings.public_url, key=load_link_key(layout.link_key),
                      ttl=timedelta(days=settings.link_days))


async def _start_links(settings: Settings, manager: TorrentManager, rights: ChatRights,
                       sender: ChatSender) -> LinkServer:
    host, port = split_listen(settings.http_listen)
    miniapp = None
    if not settings.local_mode and settings.miniapp_url:
        miniapp = await MiniApp.create(
            manager, InitDataCheck(settings.token.reveal(), settings.miniapp_max_age),
            rights, sender=sender)
    server = LinkServer(manager, host, port, miniapp=miniapp)
    try:
        await server.start()
    except OSError as error:
        raise LinkServerUnusable(
            f"the link server cannot listen on {settings.http_listen} (ARIABOT_HTTP_LISTEN): "
            f"{error.strerror or error}") from None
    return server


def mirror_config(settings: Settings) -> MirrorConfig | None:
    """How the manager mirrors finished downloads, or None when no destination is set."""
    if not settings.mirroring:
        return None
    return MirrorConfig(remote=settings.remote, move=settings.mode == "move",
                        auto=settings.auto, attempts=settings.attempts,
                        retry_delay=settings.retry_delay)


def node_config(settings: Settings, layout: StateLayout) -> NodeConfig:
    """Who this ariabot is among the nodes of its database.

    Raises:
        OSError: the data dir's node id cannot be read or made.
    """
    return NodeConfig(name=settings.node_name or host_node_name(), home=load_node_home(
        layout.node_home), version=__version__, slots=settings.max_concurrent,
        dead_after=settings.node_dead_after)


def host_node_name() -> str:
    """This machine's host name as a node name (what ``ARIABOT_NODE_NAME`` may hold)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).lstrip("._-")[:63]
    return name or "ariabot"


def _tell_manager(manager: TorrentManager, change: StateChange) -> None:
    """Translate aria2c's process states into what the manager must know."""
    if change.new is ProcessState.RUNNING and change.session_id:
        manager.aria2_up(change.session_id, change.reason)
    elif change.new is ProcessState.BACKOFF:
        manager.aria2_down(change.reason)
    elif change.new is ProcessState.FATAL:
        manager.aria2_fatal(change.reason)


async def _run_until_stopped(aria2: Aria2Process, stop_requested: asyncio.Event,
                             replaced: asyncio.Event, duty: asyncio.Task[int]) -> int:
    waits = [asyncio.create_task(stop_requested.wait()), asyncio.create_task(aria2.wait()),
             asyncio.create_task(replaced.wait())]
    await asyncio.wait([*waits, duty], return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if aria2.state is ProcessState.FATAL:
        return _fatal(aria2.fatal_reason)
    if duty.done():
        return duty.result()  # the bot of a new turn as the front cannot start
    if replaced.is_set():
        log.critical("stopping: another start holds this node's place now; ariabot exits %d",
                     EXIT_ERROR)
        return EXIT_ERROR
    log.info("stopping: saving aria2's session and shutting aria2c down")
    return EXIT_OK


def _fatal(reason: str) -> int:
    """The one line that says why ariabot gives up on aria2c; returns the exit code."""
    log.critical("aria2c cannot be kept running: %s; ariabot exits %d so that its init "
                 "system can take over", reason, EXIT_ERROR)
    return EXIT_ERROR


def _remove_runtime(layout: StateLayout) -> None:
    """Remove runtime.json; if something is in its way, aria2c's start will say so."""
    try:
        layout.runtime.unlink(missing_ok=True)
    except OSError as error:
        log.warning("could not remove %s: %s", layout.runtime, error)
