"""TorrentManager: the one API through which downloads are added, watched and controlled.

It knows aria2 (through :class:`~manager.aria2.rpc.Aria2Rpc`) and the store, and nothing of
Telegram. Identity is the row id (public) and the info-hash; aria2's GIDs are a column that
changes (see :mod:`manager.downloads.live`).

This class is a façade: each public method is a few lines that hand the work to the module
whose job it is, and all of them share one :class:`~manager.downloads.live.LiveDownloads` (the lock
and the unfinished downloads):

* :mod:`manager.actions.intake` adds (checks, duplicates, name clash, space, submit to aria2),
  a ``.torrent`` given by URL fetched first by :mod:`manager.fetch`;
* :mod:`manager.actions.control` pauses, resumes, cancels and chooses files;
* :mod:`manager.tracking.sync` follows aria2 (notifications, the progress poll, reconcile), applying
  what it reads through :mod:`manager.tracking.statuses` and :mod:`manager.tracking.metadata`;
* :mod:`manager.actions.retention` purges finished downloads;
* :mod:`manager.downloads.contents` finds and deletes what a download owns on disk;
* :mod:`manager.delivery.mirrors` uploads finished downloads to the rclone destination;
* :mod:`manager.delivery.links` signs links to finished downloads and says what one may serve;
* :mod:`manager.nodes.membership` joins the database as a node and keeps its heartbeat;
* :mod:`manager.nodes.placement` claims downloads from the queue nodes share, as slots free;
* :mod:`manager.feeds` reads the chats' feeds and adds their new matches (reached as
  ``manager.feeds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from manager.actions import (
    AddResult,
    Cancellation,
    ChatMoves,
    Control,
    Intake,
    Retention,
    Unplaced,
)
from manager.aria2 import Aria2Ops, Aria2Rpc, ListenerHealth, NotificationListener
from manager.clock import utcnow
from manager.config import ManagerConfig
from manager.delivery import (
    DownloadLink,
    Links,
    Mirrors,
    Outbox,
    SharedDownload,
    SharedFile,
    Uploader,
    own_files,
)
from manager.downloads import (
    LIST_PAGE_MAX,
    LIVE_STATES,
    Contents,
    Listing,
    LiveDownloads,
    SpaceCheck,
    StatusPage,
    remove_finished_control_files,
)
from manager.errors import Aria2Unavailable, InvalidState, OnAnotherNode, StoreError
from manager.events import Aria2Down, Aria2Fatal, Aria2Restarted, Publisher, Subscriber
from manager.feeds import FeedReader, FeedService
from manager.fetch import FeedFetcher, FetchPolicy, TorrentFetcher
from manager.files import chat_folder
from manager.models import FileEntry, FilePlan, Torrent, TorrentState
from manager.nodes import (
    Elsewhere,
    Membership,
    NodeConfig,
    NodeStatus,
    Ownership,
    Placement,
    Router,
    SendDesk,
)
from manager.notices import Notice
from manager.store import CommandRecord, Pace, Store
from manager.tracking import MetadataCheck, MovedAway, StatusApplier, Sync

__all__ = ["TorrentManager"]

log = logging.getLogger(__name__)

_FIRST_CONNECTION_WAIT = 5.0
"""How long :meth:`TorrentManager.start` waits for the notification listener's first
connection before it reconciles anyway (seconds); on loopback it takes milliseconds."""


_LIVE_VALUES = tuple(state.value for state in LIVE_STATES)
_LOAD_RANGE = 5000
"""Ids whose unfinished rows are read per query at start (see :meth:`TorrentManager.start`)."""


async def _ended(task: asyncio.Task[None] | None) -> None:
    """Cancel a background job of the front's and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class TorrentManager:
    """Adds, tracks, stores and controls downloads.

    Parameters:
        rpc: the aria2 adapter (loopback, secret).
        store: the opened store.
        config: paths and intervals.
        clock: monotonic clock (injected by tests).
        disk_usage: ``psutil.disk_usage``-like function (injected by tests).
        uploader: uploads mirrors (the supervisor's rclone runner); None: mirroring is off.
        node: who this node is on its database; None: no heartbeat (tests of one part).

    Attributes:
        live: the lock and the unfinished downloads, shared by the manager's parts.
    """

    def __init__(
        self,
        rpc: Aria2Rpc,
        store: Store,
        config: ManagerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        disk_usage: Callable[[str], object] | None = None,
        uploader: Uploader | None = None,
        node: NodeConfig | None = None,
    ) -> None:
        self.rpc = rpc
        self.store = store
        self.config = config
        self.live = LiveDownloads(store, clock)
        self._ownership = ownership = Ownership(store, node)
        self._publisher = Publisher()
        ops = Aria2Ops(rpc, clock)
        self._contents = Contents(rpc, store, config)
        space = SpaceCheck(self.live, disk_usage)
        self._fetcher = TorrentFetcher(FetchPolicy(
            max_bytes=config.torrent_max_bytes, allowed_networks=config.fetch_allowed_networks))
        self.feeds = FeedService(store, FeedReader(
            store, feeds=FeedFetcher(self._fetcher.client, config.feeds.max_bytes),
            torrents=self._fetcher, adder=self, config=config.feeds,
            torrent_max_bytes=config.torrent_max_bytes, clock=utcnow), config.feeds, utcnow)
        """The chats' feeds: ``/rss`` and ``ariabot rss``."""
        self._reading_feeds: asyncio.Task[None] | None = None
        self._following: asyncio.Task[None] | None = None
        placing = node is not None and store.shared
        self._intake = Intake(self.live, store=store, rpc=rpc, config=config,
                              contents=self._contents, space=space, publisher=self._publisher,
                              forget_mirror=self._forget_mirror, fetcher=self._fetcher,
                              node=ownership.node, placing=placing)
        metadata = MetadataCheck(self.live, store=store, rpc=rpc, ops=ops,
                                 contents=self._contents, space=space)
        applier = StatusApplier(self.live, store=store, rpc=rpc, config=config,
                                metadata=metadata, publisher=self._publisher, clock=clock)
        self._sync = Sync(self.live, ops, applier, config, self._intake.submit)
        self._control = Control(self.live, store=store, ops=ops, contents=self._contents,
                                space=space, publisher=self._publisher,
                                refresh=self._sync.refresh_now,
                                refresh_locked=self._sync.refresh_locked,
                                stop_mirror=self._stop_mirror, ownership=ownership,
                                unplaced=Unplaced(self.live, store, self._publisher))
        self._retention = Retention(self.live, store, self._contents,
                                    stop_mirror=self._stop_mirror, publisher=self._publisher,
                                    node=ownership.node)
        self._mirrors = Mirrors(config.mirror, live=self.live, store=store,
                                contents=self._contents, uploader=uploader,
                                publisher=self._publisher,
                                stop_seeding=self._control.stop_seeding,
                                delete_moved=self._control.delete_moved, ownership=ownership)
        self._links = Links(config.links, live=self.live, store=store, contents=self._contents,
                            ownership=ownership)
        self._publisher.enrich_with(self._mirrors.enrich)
        self._listing = Listing(self.live, store, self._shown)
        self._outbox = Outbox(store, self._publisher)
        self._chats = ChatMoves(self.live, store)
        self._membership = (Membership(
            store, rpc, node, config.download_dir,
            folder_of=lambda chat: chat_folder(config.download_dir, chat, config.folder_mode),
            disk_usage=disk_usage) if node else None)
        self._router = Router(store, node.name, self._run_asked) if node else None
        self._sends: SendDesk | None = None
        self._placement = (Placement(
            store, node.name, node.slots, node.dead_after,
            room=lambda: asyncio.to_thread(space.room, config.download_dir),
            directory_of=lambda chat: str(chat_folder(config.download_dir, chat,
                                                      config.folder_mode)),
            start=self._intake.start_claimed) if node and placing else None)
        self._elsewhere = (Elsewhere(
            store, node.name, lambda records: self._shown([self.live.snapshot(r) for r in records]),
            self._publisher.emit) if node and placing else None)
        self._moved_away = (MovedAway(self.live, store=store, ops=ops, contents=self._contents,
                                      node=node.name, home=node.home,
                                      download_dir=config.download_dir)
                            if node else None)
        self._publisher.subscribe(self._mirrors.on_event)
        if self._placement is not None:
            self._publisher.subscribe(self._placement.on_event)
        self._listener: NotificationListener | None = None
        self._listening = asyncio.Event()
        self._reconcile_on_connect = False
        self._started = False
        self._loaded = False

    async def _shown(self, torrents: list[Torrent]) -> list[Torrent]:
        """Snapshots as callers see them: with their mirrors, and where another node's are."""
        return await self._ownership.place(await self._mirrors.attach(torrents))

    async def _forget_mirror(self, download_id: int) -> None:
        """For intake, built before the mirrors (which need control, which needs sync)."""
        await self._mirrors.forget(download_id)

    async def _stop_mirror(self, download_id: int, user_id: int) -> bool:
        """For control and retention, built before the mirrors (see :meth:`_forget_mirror`)."""
        return await self._mirrors.stop_with_download(download_id, user_id)

    # --- life cycle --------------------------------------------------------------------------

    async def join(self) -> None:
        """Join the database as this node, before anything is done as it (nothing without a
        node).

        Raises:
            NodeConflict: the node's name, or the database, is held by another live node.
            StoreError: the database cannot be written.
        """
        if self._membership is not None:
            await self._membership.join()

    @property
    def replaced(self) -> asyncio.Event:
        """Set when a newer start took this node's name (it was frozen meanwhile): the
        supervisor stops this one. Never set without a node."""
        return self._membership.replaced if self._membership else asyncio.Event()

    async def nodes(self) -> list[NodeStatus]:
        """The nodes of this database, by name (none without a node).

        Raises:
            StoreError: the database cannot be read.
        """
        return await self._membership.nodes() if self._membership else []

    async def load(self) -> None:
        """Read this node's unfinished downloads from the store; aria2 is not needed for it,
        so the supervisor runs it while aria2c restores its session (:meth:`start` does it
        when it has not been done). Another node's are its own to track."""
        # By ranges of ids, on the primary key: 100,000 rows read at once would be their
        # peewee dicts and their records side by side, a peak the process keeps as RSS.
        node = self._ownership.node
        newest = await self.store.downloads.page(limit=1)
        for high in range(newest[0].id + 1 if newest else 0, 0, -_LOAD_RANGE):
            for record in await self.store.downloads.page(states=_LIVE_VALUES, before_id=high,
                                                          from_id=high - _LOAD_RANGE, limit=None,
                                                          node=node):
                self.live.remember(record)
        self._loaded = True

    async def start(self, *, read_feeds: bool = True) -> None:
        """Load unfinished downloads, reconcile with aria2, start listening and polling, and
        reading the feeds unless told not to (:meth:`read_feeds`)."""
        if not self._loaded:
            await self.load()
        loop = asyncio.get_running_loop()
        self._listener = NotificationListener(
            self.rpc.endpoint.ws_url, loop, self._sync.on_notification,
            self._listener_connected,
        )
        self._listener.start()
        # One reconcile at start, after the listener's first connection: one made before
        # it would miss what aria2 said in between, so it would need a second one.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FIRST_CONNECTION_WAIT):
                await self._listening.wait()
        self._reconcile_on_connect = True
        with contextlib.suppress(Aria2Unavailable):
            if self._moved_away is not None:  # what another node took runs here no more
                await self._moved_away.let_go()
            await self.reconcile()
        self._sync.start_polling()
        await self._mirrors.start()
        await self._outbox.forget_old()
        if self._membership is not None:
            self._membership.watch_for_dead(self._taken_over)
        if self._router is not None:
            self._router.start()
        if self._placement is not None:
            self._placement.start()
        if read_feeds:
            self.read_feeds()
        self._started = True

    def read_feeds(self) -> None:
        """Read the chats' feeds on their schedule from now on. Nodes sharing a database
        leave them to the front (:mod:`manager.store.front`): each feed is read by one."""
        if self._reading_feeds is None or self._reading_feeds.done():
            self._reading_feeds = asyncio.create_task(self.feeds.run(), name="feeds")

    def follow_other_nodes(self) -> None:
        """Publish the changes of the downloads other nodes hold from now on, as events
        (the front's progress messages follow them; :mod:`manager.nodes.elsewhere`).
        Nothing to follow without nodes sharing the database."""
        if self._elsewhere is not None and (self._following is None or self._following.done()):
            self._following = asyncio.create_task(self._elsewhere.run(), name="other nodes")

    async def stop_following_other_nodes(self) -> None:
        """Stop :meth:`follow_other_nodes`."""
        following, self._following = self._following, None
        await _ended(following)

    async def stop_reading_feeds(self) -> None:
        """Stop reading the feeds (a read cut short is settled at the next one)."""
        reading, self._reading_feeds = self._reading_feeds, None
        await _ended(reading)

    async def _taken_over(self, download_ids: list[int]) -> None:
        """Track the downloads this node took from a dead one while it ran; the reconcile
        adds them to aria2c from their stored source. On a database nodes share they went
        back to the queue instead: this node looks at it."""
        if self._placement is not None:
            self._placement.look()
            return
        try:
            async with self.live.lock:
                for download_id in download_ids:
                    record = await self.store.downloads.get(download_id)
                    if record is not None and self._ownership.owns(record):
                        self.live.remember(record)
        except StoreError as error:
            log.warning("the downloads taken over cannot be read (%s): they start at this "
                        "node's next start", error)
        self._sync.schedule_reconcile()

    async def remove_leftover_control_files(self) -> int:
        """Delete aria2's control files left beside finished downloads; call it only while
        aria2c is not running (see :mod:`manager.downloads.leftovers`). Returns how many.

        Raises:
            StoreError: the store cannot be read.
        """
        return await remove_finished_control_files(self.store, self._ownership.node)

    async def close(self) -> None:
        """Stop listening and polling; the store and aria2 are closed by their owner."""
        self._sync.stop_scheduling()  # no new refresh or reconcile from here on
        await self._mirrors.close()  # unfinished mirrors resume at the next start
        await self.stop_reading_feeds()
        await self.stop_following_other_nodes()
        if self._placement is not None:
            await self._placement.close()
        if self._router is not None:
            await self._router.close()
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
        await self._sync.close()
        await self._outbox.close()
        await self._fetcher.close()
        if self._membership is not None:
            await self._membership.leave()

    def _listener_connected(self) -> None:
        """aria2's notifications are heard (again): what was said meanwhile is lost, so
        reconcile (at start, :meth:`start` does it once the first connection is made)."""
        self._listening.set()
        if self._reconcile_on_connect:
            self._sync.schedule_reconcile()

    def listener_health(self) -> ListenerHealth | None:
        """How aria2's notification listener is doing; None before :meth:`start`."""
        return self._listener.health() if self._listener is not None else None

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(event)`` for every event; returns a function that unsubscribes.

        Subscribers run on the event loop and must not block; a failing one is logged and
        skipped, the others still get the event.
        """
        return self._publisher.subscribe(subscriber)

    # --- aria2c's own state, told by the supervisor -----------------------------------------

    def aria2_down(self, detail: str) -> None:
        """aria2c died or hung; calls fail until :meth:`aria2_up`."""
        if self._sync.aria2_up:
            self._sync.aria2_up = False
            self._outbox.alert(Aria2Down(detail))

    def aria2_up(self, session_id: str, detail: str = "") -> None:
        """aria2c answers again with a new session: reconcile everything."""
        was_down = not self._sync.aria2_up
        self._sync.aria2_up = True
        self._sync.aria2_restarted()
        if not self._started:
            return  # start() reconciles on its own
        health = self.listener_health()
        if health is None or not health.running or health.restarting:
            # Otherwise the listener reconciles when it hears the new aria2c: a reconcile
            # now would miss what aria2c says before that, and be made twice.
            self._sync.schedule_reconcile()
        if was_down:
            self._outbox.alert(Aria2Restarted(detail or "aria2c is running again", session_id))

    def aria2_fatal(self, detail: str) -> None:
        """aria2c could not be kept alive; ariabot is about to exit."""
        self._sync.aria2_up = False
        self._outbox.alert(Aria2Fatal(detail))

    # --- queries -----------------------------------------------------------------------------

    async def list(self, chat_id: int | None = None, *, limit: int | None = None) -> list[Torrent]:
        """Downloads (of one chat, or all), newest first."""
        records = await self.store.downloads.list(chat_id=chat_id, limit=limit)
        return await self._shown([self.live.snapshot(record) for record in records])

    async def page(self, chat_id: int | None = None, *, before_id: int | None = None,
                   limit: int = LIST_PAGE_MAX) -> list[Torrent]:
        """One page of :meth:`list` (at most :data:`~manager.listing.LIST_PAGE_MAX`), newest
        first, with ids below ``before_id`` (the previous page's last id); empty at the end.
        What callers that may face 100,000 downloads use: a page is cheap on the loop."""
        return await self._listing.page(chat_id, before_id=before_id, limit=limit)

    async def status_page(self, chat_id: int, page: int, page_size: int) -> StatusPage:
        """Page ``page`` of a chat's overview: unfinished downloads first, then finished
        ones, newest first, cancelled ones left out; with the totals."""
        return await self._listing.status_page(chat_id, page, page_size)

    async def get(self, download_id: int, chat_id: int | None = None) -> Torrent:
        """One download by public id; with ``chat_id``, only if it belongs to that chat.

        Raises:
            DownloadNotFound: no such id (or another chat's).
        """
        torrent = self.live.snapshot(await self.live.record(download_id, chat_id))
        return (await self._shown([torrent]))[0]

    async def files(self, download_id: int, chat_id: int | None = None) -> tuple[FileEntry, ...]:
        """The files of a download as aria2 sees them now (empty before metadata).

        Raises:
            DownloadNotFound: no such id (or another chat's).
            OnAnotherNode: another node holds it and is offline, or did not answer (an
                online one is asked for the list).
            Aria2Unavailable: aria2 does not answer.
        """
        return await self._file_list("list-files", download_id, chat_id)

    async def _files_here(self, download_id: int,
                          chat_id: int | None) -> tuple[FileEntry, ...]:
        """:meth:`files` of a download this node holds (OnAnotherNode otherwise)."""
        record = await self.live.record(download_id, chat_id)
        await self._ownership.check(record)
        final = TorrentState(record.state).is_final
        return await self._contents.current_files(record, final=final)

    async def own_files(self, download_id: int,
                        chat_id: int | None = None) -> tuple[FileEntry, ...]:
        """The download's own files from its metainfo, numbered as :meth:`files` numbers
        them, each ``completed`` only when it is whole on disk (what may be sent out); known
        after aria2 forgot the download too. Empty when its metainfo is unknown.

        Raises:
            DownloadNotFound: no such id (or another chat's).
            OnAnotherNode: another node holds it and is offline, or did not answer (an
                online one is asked: ``completed`` is whole on that node's disk).
        """
        return await self._file_list("own-files", download_id, chat_id)

    async def _file_list(self, action: str, download_id: int,
                         chat_id: int | None) -> tuple[FileEntry, ...]:
        """A file list (``list-files``, ``own-files``) of a download this node holds, or
        asked of the live node that holds it."""
        try:
            return await self._file_list_here(action, download_id, chat_id)
        except OnAnotherNode as elsewhere:
            answer = await self._ask(elsewhere, download_id, action, {}, chat_id=chat_id,
                                     user_id=0)
            return tuple(FileEntry(**entry) for entry in answer.get("files", ()))

    async def _file_list_here(self, action: str, download_id: int,
                              chat_id: int | None) -> tuple[FileEntry, ...]:
        """A file list of a download this node holds (OnAnotherNode otherwise)."""
        here = self._files_here if action == "list-files" else self._own_files_here
        return await here(download_id, chat_id)

    async def _own_files_here(self, download_id: int,
                              chat_id: int | None) -> tuple[FileEntry, ...]:
        """:meth:`own_files` of a download this node holds (OnAnotherNode otherwise)."""
        record = await self.live.record(download_id, chat_id)
        await self._ownership.check(record)
        return await own_files(record, self.store, self._contents)

    async def activity(self, chat_id: int | None = None, limit: int = 50) -> list[Any]:
        """The activity log, newest first."""
        return await self.store.activity.latest(chat_id=chat_id, limit=limit)

    # --- adding and control ------------------------------------------------------------------

    async def add(self, source: str | bytes, chat_id: int, user_id: int,
                  message_id: int | None = None) -> AddResult:
        """Validate ``source`` (a magnet link, .torrent bytes, or an http(s) URL of a .torrent,
        fetched first: :mod:`manager.fetch`) and start downloading it.

        Returns:
            The new download, or the existing one when this chat already has the torrent.

        Raises:
            InvalidSource: not a magnet/torrent ariabot accepts, or a URL it cannot or may
                not fetch (``TorrentUrlError``); nothing is stored.
            AlreadyDownloading: another chat's copy of the torrent is still active.
            NotEnoughSpace: the torrent is larger than the free space.
        """
        result = await self._intake.add(source, chat_id, user_id, message_id)
        torrent = result.torrent
        if self._placement is not None and torrent.node is None and not result.existing:
            # Claimed here at once when this node has the most free slots: the answer then
            # says where it is, not that it waits (a claim running meanwhile may take it).
            await self._placement.claim()
            torrent = self.live.snapshot(await self.live.record(torrent.id))
        (shown,) = await self._ownership.place([torrent])  # waiting for a node?
        return dataclasses.replace(result, torrent=shown)

    async def pause(self, download_id: int, chat_id: int | None = None,
                    user_id: int = 0) -> Torrent:
        """Pause a download (queued ones too), on the node that holds it.

        Raises:
            DownloadNotFound, InvalidState, Aria2Unavailable, OnAnotherNode (its node is
            not heard from, or did not answer).
        """
        try:
            return await self._control.pause(download_id, chat_id, user_id)
        except OnAnotherNode as elsewhere:
            await self._ask(elsewhere, download_id, "pause", {}, chat_id=chat_id,
                            user_id=user_id)
            return await self.get(download_id, chat_id)

    async def resume(self, download_id: int, chat_id: int | None = None,
                     user_id: int = 0) -> Torrent:
        """Resume a paused download (it may wait in the queue), on the node that holds it.

        Raises:
            DownloadNotFound, InvalidState, NotEnoughSpace, Aria2Unavailable, OnAnotherNode.
        """
        try:
            return await self._control.resume(download_id, chat_id, user_id)
        except OnAnotherNode as elsewhere:
            await self._ask(elsewhere, download_id, "resume", {}, chat_id=chat_id,
                            user_id=user_id)
            return await self.get(download_id, chat_id)

    async def cancel(self, download_id: int, chat_id: int | None = None, user_id: int = 0,
                     *, delete_files: bool = False) -> Cancellation:
        """Stop a download for good, and its upload to the mirror; with ``delete_files``,
        remove what it wrote (not what another download in the list owns: the result
        says what really went). Done by the node that holds it.

        Raises:
            DownloadNotFound, Aria2Unavailable, OnAnotherNode.
        """
        try:
            return await self._control.cancel(download_id, chat_id, user_id,
                                              delete_files=delete_files)
        except OnAnotherNode as elsewhere:
            did = await self._ask(elsewhere, download_id, "cancel",
                                  {"delete_files": delete_files}, chat_id=chat_id,
                                  user_id=user_id)
            return Cancellation(await self.get(download_id, chat_id),
                                files_deleted=bool(did.get("files_deleted")),
                                kept_for=did.get("kept_for"),
                                upload_stopped=bool(did.get("upload_stopped")))

    async def set_files(self, download_id: int, indexes: Iterable[int],
                        chat_id: int | None = None, user_id: int = 0) -> Torrent:
        """Download only the files with these numbers: 1-based places in :meth:`files`
        (the list users see, without pad files), not aria2's own indexes. Done by the node
        that holds it.

        Raises:
            DownloadNotFound, InvalidState (no metadata yet, or finished),
            InvalidSource (an index out of range or none selected), Aria2Unavailable,
            OnAnotherNode.
        """
        chosen = list(indexes)
        try:
            return await self._control.set_files(download_id, chosen, chat_id, user_id)
        except OnAnotherNode as elsewhere:
            await self._ask(elsewhere, download_id, "files", {"indexes": chosen},
                            chat_id=chat_id, user_id=user_id)
            return await self.get(download_id, chat_id)

    async def _routed(self, download_id: int, chat_id: int | None, user_id: int,
                      action: str,
                      arguments: dict[str, Any] | None = None) -> Mapping[str, Any] | None:
        """Have the node that holds the download do ``action`` (what it did), when it is
        another node; None: it is this node's to do (or nobody's yet)."""
        try:
            await self._ownership.check(await self.live.record(download_id, chat_id))
        except OnAnotherNode as elsewhere:
            return await self._ask(elsewhere, download_id, action, arguments or {},
                                   chat_id=chat_id, user_id=user_id)
        return None

    async def _ask(self, elsewhere: OnAnotherNode, download_id: int, action: str,
                   arguments: dict[str, Any], *, chat_id: int | None,
                   user_id: int) -> Mapping[str, Any]:
        """Have the live node that holds the download do ``action`` (refused as it was when
        that node is not heard from)."""
        if self._router is None or not elsewhere.online:
            raise elsewhere
        return await self._router.ask(elsewhere, download_id, action, arguments,
                                      chat_id=chat_id, user_id=user_id)

    async def _run_asked(self, command: CommandRecord) -> Mapping[str, Any]:
        """Run here what another node asked (the download is this node's)."""
        download_id, chat_id, user_id = command.download_id, command.chat_id, command.user_id
        arguments = command.arguments
        if command.action == "pause":
            await self._control.pause(download_id, chat_id, user_id)
        elif command.action == "resume":
            await self._control.resume(download_id, chat_id, user_id)
        elif command.action == "files":
            await self._control.set_files(download_id, [int(i) for i in arguments["indexes"]],
                                          chat_id, user_id)
        elif command.action == "cancel":
            done = await self._control.cancel(download_id, chat_id, user_id,
                                              delete_files=bool(arguments["delete_files"]))
            return {"files_deleted": done.files_deleted, "kept_for": done.kept_for,
                    "upload_stopped": done.upload_stopped}
        elif command.action == "mirror":
            await self._mirrors.request(download_id, chat_id, user_id)
        elif command.action == "stop-mirror":
            await self._mirrors.stop(download_id, chat_id, user_id)
        elif command.action == "link":
            link = await self._links.make(download_id, chat_id, user_id)
            return {"url": link.url, "expires_at": link.expires_at.isoformat()}
        elif command.action in ("list-files", "own-files"):
            # Never asked on to a third node: the row moved meanwhile, which the asker is told.
            listed = await self._file_list_here(command.action, download_id, chat_id)
            return {"files": [dataclasses.asdict(entry) for entry in listed]}
        elif command.action == "send":
            number = arguments.get("number")
            said = await self._desk().send(download_id, chat_id or 0,
                                           None if number is None else int(number),
                                           arguments.get("reply_to"))
            return {"said": said}
        elif command.action == "stop-send":
            return {"stopped": self._desk().stop(chat_id or 0, download_id)}
        else:
            raise InvalidState(f"this node does not know the action {command.action!r}")
        return {}

    def _desk(self) -> SendDesk:
        """This node's sends, asked of it by the front."""
        if self._sends is None:
            raise InvalidState(f"node {self._ownership.node} has no bot to send files with "
                               "(no Telegram token); ask for a link instead")
        return self._sends

    # --- files sent into a chat by the node that has them --------------------------------------

    def serve_sends(self, desk: SendDesk) -> None:
        """Send this node's downloads into chats with ``desk`` when another node (the front)
        asks (:mod:`manager.nodes.sending`)."""
        self._sends = desk

    async def send_on_owner(self, download_id: int, chat_id: int, user_id: int, *,
                            number: int | None = None, reply_to: int | None = None) -> str:
        """Have the node that holds a finished download send its files into the chat
        (every chosen file, or only file ``number``): a download of this node is sent by
        its own bot, so this is for one whose files another node holds. Returns that
        node's sentence for the user.

        Raises:
            OnAnotherNode: that node is offline, or did not answer.
            InvalidState: it cannot send them now (its words), or the download is this
                node's (send it here).
            DownloadNotFound: no such download in the chat.
        """
        arguments = {"number": number, "reply_to": reply_to}
        answer = await self._routed(download_id, chat_id, user_id, "send", arguments)
        if answer is None:
            raise InvalidState(f"#{download_id} is on this node: its bot sends it")
        return str(answer.get("said", ""))

    async def stop_send_on_owner(self, download_id: int, chat_id: int, user_id: int) -> bool:
        """Stop the send of a download whose files another node holds (that node sends
        them); False when none is under way there, or the download is this node's.

        Raises:
            OnAnotherNode: that node is offline, or did not answer.
            DownloadNotFound: no such download in the chat.
        """
        answer = await self._routed(download_id, chat_id, user_id, "stop-send")
        return bool(answer and answer.get("stopped"))

    async def take_turn(self, paces: Iterable[Pace]) -> float:
        """Take one turn of each pace every node of the database shares (Telegram's limits
        are the bot's: :mod:`manager.store.paces`); the seconds to wait before using them.
        Always 0 on SQLite (one node).

        Raises:
            StoreError: the database cannot be written.
        """
        return await self.store.paces.take(list(paces))

    async def set_message(self, download_id: int, message_id: int) -> None:
        """Remember which chat message shows this download's progress."""
        await self._control.set_message(download_id, message_id)

    # --- what the chats must be told (the outbox) ---------------------------------------------

    async def pending_notices(self, per_chat: int = 50) -> list[Notice]:
        """Notices not yet sent nor given up, oldest first, at most ``per_chat`` of each
        chat: a download's are stored with the change that causes them (see
        :mod:`manager.notices`), so none is lost to a crash."""
        return await self._outbox.pending(per_chat)

    def watch_notices(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call ``watcher()`` (on the event loop) after every write that stored a notice,
        whatever wrote it; returns a function that stops it."""
        return self._outbox.watch(watcher)

    def notices_stored_elsewhere(self) -> None:
        """Another node stored notices (the front hears it from the database): call the
        watchers, as after this node's own writes."""
        self.store.notices.stored()

    async def notice_done(self, notice_id: int, dropped: str | None = None) -> None:
        """Mark a notice sent (Telegram confirmed it) or, with ``dropped``, given up (why)."""
        await self._outbox.done(notice_id, dropped)

    async def notice_failed(self, notice_id: int) -> None:
        """Count a failed attempt at a notice; it stays pending."""
        await self._outbox.failed(notice_id)

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """Telegram moved a chat to a new id (a group upgraded to a supergroup): its
        downloads, mirrors and pending news follow it (a torrent the new chat already
        lists stays with the old id), and the move is kept; returns how many moved.

        Raises:
            StoreError: nothing was moved; try again.
        """
        return await self._chats.move(old_chat_id, new_chat_id)

    async def chat_moves(self) -> dict[int, int]:
        """Every chat Telegram moved to a new id (old → new), as :meth:`move_chat` kept it.

        Raises:
            StoreError: the store could not be read.
        """
        return await self._chats.moves()

    async def overview_message(self, chat_id: int) -> int | None:
        """The message id of the chat's overview (``/status``), if one is stored."""
        return await self.store.chats.overview_message(chat_id)

    async def set_overview_message(self, chat_id: int, message_id: int) -> None:
        """Remember the message id of the chat's overview, across restarts."""
        await self.store.chats.set_overview_message(chat_id, message_id)

    # --- files sent to a chat ----------------------------------------------------------------

    async def sent_parts(self, plan: FilePlan) -> frozenset[int]:
        """The parts of a file Telegram confirmed in a chat (stored: they are never sent
        there again, across restarts)."""
        return await self.store.sent_parts.confirmed(plan)

    async def record_sent_part(self, plan: FilePlan, part: int) -> None:
        """Store that Telegram confirmed part ``part`` of a file in a chat."""
        await self.store.sent_parts.record(plan, part)

    # --- mirroring to the cloud ---------------------------------------------------------------

    @property
    def mirror_enabled(self) -> bool:
        """True when :meth:`mirror` can upload (an rclone destination is configured)."""
        return self._mirrors.enabled

    async def mirror(self, download_id: int, chat_id: int | None = None,
                     user_id: int = 0) -> Torrent:
        """Upload a finished download's own files to the rclone destination (stored first,
        so a restart resumes it); progress and the outcome come as Mirror* events. Done by
        the node that holds it, with its own rclone and destination.

        Raises:
            MirrorOff: no destination is configured (on the node that holds it).
            DownloadNotFound: no such id (or another chat's).
            InvalidState: not finished, already being mirrored, or moved there already.
            OnAnotherNode: its node is not heard from, or did not answer.
        """
        if await self._routed(download_id, chat_id, user_id, "mirror") is not None:
            return await self.get(download_id, chat_id)
        return await self._mirrors.request(download_id, chat_id, user_id)

    async def stop_mirror(self, download_id: int, chat_id: int | None = None,
                          user_id: int = 0) -> Torrent:
        """Stop a download's mirror that is waiting or uploading; its local files stay.

        Raises:
            MirrorOff, DownloadNotFound, InvalidState (no mirror under way), OnAnotherNode.
        """
        if await self._routed(download_id, chat_id, user_id, "stop-mirror") is not None:
            return await self.get(download_id, chat_id)
        return await self._mirrors.stop(download_id, chat_id, user_id)

    # --- links to finished downloads ---------------------------------------------------------

    @property
    def links_enabled(self) -> bool:
        """True when :meth:`link` can make links (a public URL is set)."""
        return self._links.enabled

    async def link(self, download_id: int, chat_id: int | None = None,
                   user_id: int = 0) -> DownloadLink:
        """A signed link to a finished download's page; it expires, and dies when the
        download is cancelled, purged or its files are deleted (:mod:`manager.delivery.links`).
        Made by the node that holds it: signed with its key, at its public URL, where its
        link server serves the files from its disk.

        Raises:
            LinksOff: no public URL is configured (on the node that holds it).
            DownloadNotFound: no such id (or another chat's).
            InvalidState: not finished, or its files are gone.
            OnAnotherNode: its node is not heard from, or did not answer.
        """
        made = await self._routed(download_id, chat_id, user_id, "link")
        if made is not None:  # signed by the node that holds it, with its key, at its URL
            return DownloadLink(url=str(made["url"]),
                                expires_at=datetime.fromisoformat(str(made["expires_at"])),
                                torrent=await self.get(download_id, chat_id))
        return await self._links.make(download_id, chat_id, user_id)

    async def open_link(self, token: str) -> SharedDownload:
        """The download's own files a link's token opens (for the HTTP server).

        Raises:
            LinksOff: no public URL is configured.
            LinkRefused: forged, damaged or revoked; LinkExpired: past its time.
        """
        return await self._links.open(token)

    async def open_link_file(self, token: str, number: int) -> SharedFile | None:
        """File ``number`` a link's token opens, checked on disk (for the HTTP server's
        file requests); None when the download has no such file complete on disk.

        Raises:
            LinksOff, LinkRefused, LinkExpired: as :meth:`open_link`.
        """
        return await self._links.open_file(token, number)

    # --- retention and tracking --------------------------------------------------------------

    async def purge_finished(self, older_than: timedelta, *, delete_files: bool = False) -> int:
        """Remove finished downloads (complete, error, cancelled) from the list when their
        row last changed more than ``older_than`` ago. Their files stay unless asked.

        With ``delete_files``, each one's files (named by its .torrent, or by the metadata
        aria2 saved for a magnet) are deleted inside its chat folder, like ``cancel`` does;
        not when a download still in the list has the same name in that folder (the same
        files, most likely).

        Returns:
            How many downloads left the list.

        Raises:
            ValueError: ``older_than`` is negative.
        """
        return await self._retention.purge_finished(older_than, delete_files=delete_files)

    async def poll_once(self, *, sweep: bool = False) -> None:
        """One progress cycle: ONE RPC request, ONE transaction for the rows that changed.

        aria2's waiting list is read only when it may have moved (:mod:`manager.tracking.sweep`):
        what waits does not change until aria2 starts, pauses or stops it, and says so; and
        then in pages (:meth:`~manager.tracking.sync.Sync.poll_once`).

        Parameters:
            sweep: read the waiting list now whatever happened.
        """
        await self._sync.poll_once(sweep=sweep)

    async def reconcile(self) -> None:
        """Match every unfinished download with aria2's list; re-add what aria2 lost.

        Run after every (re)connection to aria2: notifications sent while disconnected are
        lost, and after a restart aria2 restores downloads under other GIDs.
        """
        await self._sync.reconcile()
