"""Keeping the rows in step with aria2: notifications, the progress poll, reconcile.

Where news comes from:

* aria2's WebSocket notifications (start, pause, stop, complete, error, bt-complete) trigger
  an immediate refresh of just those GIDs: completion is seen within milliseconds;
* one batched poll every ``progress_interval`` seconds (one ``system.multicall`` of
  tellActive/tellStopped, only :data:`~manager.aria2.observation.POLL_KEYS`; tellWaiting too
  when the queue may have moved, :mod:`manager.tracking.sweep`) feeds progress, written in ONE
  transaction for the rows that changed;
* a reconcile after every (re)connection to aria2 re-learns GIDs and re-adds from the stored
  source any download aria2 lost, so nothing is lost and nothing is duplicated; and starts
  what aria2 restored paused though its row says it runs.

Every read of aria2 is applied under the lock it was read under: an answer read before a
pause or resume and applied after it would undo what the user just did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, Protocol

from manager.aria2 import WAITING_KEYS, WAITING_PAGE, Aria2Ops, Observation
from manager.config import ManagerConfig
from manager.downloads import LiveDownload, LiveDownloads, remove_control_file
from manager.errors import Aria2Error, Aria2Unavailable, ManagerError, StoreError
from manager.models import TorrentState
from manager.store import DownloadRecord
from manager.tracking.pacing import in_steps, release
from manager.tracking.statuses import DUPLICATE, Applied, StatusApplier
from manager.tracking.sweep import QueueSweep

__all__ = ["Submit", "Sync"]

log = logging.getLogger(__name__)

_STORE_RETRY_FIRST = 1.0
"""Seconds before a reconcile the store refused runs again (doubling)."""
_STORE_RETRY_MAX = 30.0

_RUNS = frozenset(s.value for s in (TorrentState.QUEUED, TorrentState.METADATA,
                                     TorrentState.DOWNLOADING, TorrentState.SEEDING))
"""Row states of a download nobody paused."""

_NOT_TAKEN_BACK = "the downloader did not take it back after a restart"
"""What the user reads of a download that reconcile could not hand to aria2 again."""


class Submit(Protocol):
    """Hands a stored download to aria2 again (:meth:`manager.actions.intake.Intake.submit`)."""

    def __call__(self, record: DownloadRecord, *,
                 paused: bool = False) -> Awaitable[DownloadRecord]: ...


class Sync:
    """Refreshes, polls and reconciles.

    Parameters:
        live: the shared lock and tracked downloads.
        ops: aria2 operations.
        applier: folds statuses into the rows.
        config: the poll interval.
        submit: re-adds a download aria2 lost.

    Attributes:
        aria2_up: False while the supervisor says aria2c is down (polls are skipped).
    """

    def __init__(self, live: LiveDownloads, ops: Aria2Ops, applier: StatusApplier,
                 config: ManagerConfig, submit: Submit) -> None:
        self._live = live
        self._ops = ops
        self._applier = applier
        self._config = config
        self._submit = submit
        self.aria2_up = True
        self._sweep = QueueSweep(live)
        self._pending_gids: set[str] = set()
        self._poller: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self._reconcile_asked = False
        self._matched = False  # a reconcile has matched aria2c's session since it started
        self._closing = False

    def aria2_restarted(self) -> None:
        """aria2c runs a new session: until a reconcile has matched it with the rows (by
        GID, or by info-hash when it restored one under another), its counts say nothing
        of what it lost, and a poll does not sweep for them."""
        self._matched = False

    def start_polling(self) -> None:
        """Poll every ``progress_interval`` seconds from now on."""
        self._poller = asyncio.create_task(self._poll_forever(), name="manager-poll")

    def stop_scheduling(self) -> None:
        """Start no refresh or reconcile from now on (the manager is closing)."""
        self._closing = True

    async def close(self) -> None:
        """Stop polling and refreshing, and wait (bounded) for the tasks to end."""
        self.stop_scheduling()
        tasks = {t for t in (self._poller, self._refresher, self._reconciler) if t is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded, so that one stuck call can never hang ariabot's shutdown.
            _done, stuck = await asyncio.wait(tasks, timeout=10)
            if stuck:
                log.warning("%d manager task(s) did not stop in 10 s", len(stuck))

    # --- notifications and refreshes ---------------------------------------------------------

    def on_notification(self, method: str, gid: str) -> None:
        """aria2 said something happened to ``gid`` (called on the event loop)."""
        log.debug("aria2 %s %s", method, gid)
        self.refresh_soon(gid)

    def refresh_soon(self, gid: str) -> None:
        """Read this GID's status as soon as the loop is free (coalescing bursts)."""
        self._pending_gids.add(gid)
        if self._closing:
            return
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_pending(), name="refresh")

    async def _refresh_pending(self) -> None:
        while self._pending_gids:
            gids = sorted(self._pending_gids)
            self._pending_gids.clear()
            try:
                await self.refresh_now(gids)
            except Aria2Unavailable:
                log.info("aria2 did not answer a refresh; the next poll catches up")
            except StoreError as error:
                log.warning("could not store what aria2 said (%s); the next poll tries again",
                            error)
            except Exception:
                log.exception("refresh after a notification failed")

    async def refresh_now(self, gids: Sequence[str]) -> None:
        """Read these GIDs' status (one request) and apply what changed."""
        if not gids:
            return
        async with self._live.lock:
            await self.refresh_locked(gids)

    async def refresh_locked(self, gids: Sequence[str]) -> None:
        """:meth:`refresh_now` for a caller that holds the lock.

        Read and apply under the same lock: an answer read before a pause or resume and
        applied after it would undo what the user just did.
        """
        self._sweep.moved()  # a start, pause or end moves the queue behind it
        statuses = await self._ops.statuses(gids)
        self._follow_up(await self._applier.apply(statuses, waiting_order=None))

    def _follow_up(self, applied: Applied) -> None:
        if applied.look_again:
            self._sweep.moved()
        for gid in sorted(applied.refresh):
            self.refresh_soon(gid)

    # --- the progress poll -------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.progress_interval)
            if not self.aria2_up:
                continue
            try:
                await self.poll_once()
            except Aria2Unavailable:
                log.info("aria2 did not answer the progress poll")
            except StoreError as error:
                log.warning("could not store the progress poll (%s); the next one tries again",
                            error)
            except Exception:
                log.exception("progress poll failed")

    async def poll_once(self, *, sweep: bool = False) -> None:
        """One progress cycle: ONE RPC request, ONE transaction for the rows that changed.

        The request reads what runs and what finished, and aria2's counts; aria2's waiting
        list only when it may have moved (:mod:`manager.tracking.sweep`), or with ``sweep``:
        then in pages, and the waiting downloads that changed in full in one more request.
        """
        async with self._live.lock:
            # Read and apply under the lock: a list read before an add/pause and applied
            # after it would undo what the user just did.
            drop = sorted(self._live.results_to_drop)
            purge = [("aria2.removeDownloadResult", [gid]) for gid in drop]
            waiting: list[Any] | None = None
            changed: list[Any] = []
            try:
                swept = self._sweep.next_poll(force=sweep)
                if not swept:
                    active, stopped, counts = await self._ops.list_running(purge)
                    purge = []  # sent
                    if self._matched and not self._sweep.agrees(counts):
                        # The queue's length moved and nobody said so: this poll sweeps.
                        swept = self._sweep.next_poll(force=True)
                if swept:
                    active, waiting, stopped = await self._ops.list_everything(
                        purge, waiting_keys=WAITING_KEYS)
                    self._sweep.swept(len(waiting))
                    # Only the waiting downloads that changed, in full (a second request).
                    if stale := await self._to_read(waiting):
                        changed = await self._ops.statuses(stale)
            except BaseException:
                self._sweep.moved()  # not read: the next poll tries again
                raise
            self._live.results_to_drop.difference_update(drop)
            applied = await self._applier.apply([*active, *changed, *stopped],
                                                waiting_order=waiting)
            self._follow_up(applied)
        if applied.missing and self._matched:
            # (Before that, aria2c may still be restoring its session: the reconcile that
            # matches it is on its way.)
            log.warning("aria2 lost %d download(s); re-adding them", len(applied.missing))
            self.schedule_reconcile()
        if waiting is not None:
            await release(waiting)  # out of the lock: what the user asks for goes first

    async def _to_read(self, waiting: Sequence[dict[str, Any]], *,
                       rows_known: bool = False) -> list[str]:
        """:meth:`StatusApplier.to_read` a page at a time, letting others run between."""
        gids: list[str] = []
        async for page in in_steps(waiting, WAITING_PAGE):
            gids += self._applier.to_read(page, rows_known=rows_known)
        return gids

    # --- reconcile ---------------------------------------------------------------------------

    def schedule_reconcile(self) -> None:
        """Reconcile soon: once for all the requests made before it reads aria2's lists.

        A request made while a reconcile runs past its reads (aria2c restarted since, say)
        has one more run after it: coalesced, never dropped.
        """
        if self._closing:
            return
        self._reconcile_asked = True
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.create_task(self._reconcile_quietly(), name="reconcile")

    async def _reconcile_quietly(self) -> None:
        delay = _STORE_RETRY_FIRST
        while self._reconcile_asked and not self._closing:
            try:
                await self.reconcile()
            except Aria2Unavailable:
                log.info("aria2 is not answering; reconcile waits for its restart")
            except StoreError as error:
                # A busy or failing database is no bug: what aria2 said is read again
                # and written once the store answers.
                log.warning("reconcile could not be stored (%s); trying again in %.0f s",
                            error, delay)
                self._reconcile_asked = True
                await asyncio.sleep(delay)
                delay = min(_STORE_RETRY_MAX, delay * 2)
            except Exception:
                log.exception("reconcile failed")

    async def reconcile(self) -> None:
        """Match every unfinished download with aria2's list; re-add what aria2 lost.

        Raises:
            Aria2Unavailable: aria2 does not answer.
        """
        async with self._live.lock:
            self._reconcile_asked = False  # what this reads answers every request made so far
            # The waiting list, 100,000 long at scale, is read short (its order); only the
            # entries the rows do not already account for are read in full, in a second
            # request, and the info-hashes only when downloads are missing.
            active, waiting, stopped = await self._ops.list_everything(
                waiting_keys=WAITING_KEYS, whole=True)
            seen = {str(status.get("gid", "")) for status in (*active, *waiting, *stopped)}
            lost = [live for live in self._live
                    if not (live.record.gid in seen and self._live.knows_gid(live.record.gid))]
            by_hash = await self._find_by_info_hash(lost, active, stopped)
            for live in lost:
                # Each on its own: one that cannot be taken back is told as its own failure
                # and the others are still matched or re-added.
                try:
                    await self._match_or_resubmit(live, seen, by_hash)
                except (Aria2Unavailable, StoreError):
                    raise  # nothing else can be done either: the whole reconcile is retried
                except (Aria2Error, ManagerError) as error:
                    log.warning("download #%s could not be taken back (in %s): %s",
                                live.record.id, live.record.directory, error)
                    await self._live.fail(live, _NOT_TAKEN_BACK)
                except Exception:
                    log.exception("download #%s could not be taken back", live.record.id)
                    await self._live.fail(live, _NOT_TAKEN_BACK)
            await self._start_restored_paused(waiting)
            changed = await self._ops.statuses(await self._to_read(waiting, rows_known=True))
            self._follow_up(await self._applier.apply([*active, *changed, *stopped],
                                                      waiting_order=waiting))
            await self._applier.settle(waiting)
            self._matched = not self._reconcile_asked  # else aria2c restarted meanwhile
        await release(waiting)
        finished = sum(1 for live in self._live if live.record.completed_at is not None)
        log.info("reconciled %d unfinished download(s) with aria2%s",
                 len(self._live) - finished,
                 f" (and {finished} finished, seeding or paused)" if finished else "")

    async def _start_restored_paused(self, waiting: Sequence[dict[str, Any]]) -> None:
        """Start what aria2 holds paused though its row says it runs.

        aria2 saves its session every few seconds. A download ariabot held paused for a
        moment (a magnet's real download until its names are stored, a file choice) and
        started since comes back paused after a kill -9 of aria2c. Nobody paused it (its
        row would say so): left so, it would wait for ever under a row that says queued.
        A magnet whose files are still to be checked is left to that check.
        """
        for entry in waiting:
            gid = str(entry.get("gid", ""))
            live = self._live.by_gid(gid)
            if (entry.get("status") != "paused" or live is None or live.awaiting_metadata
                    or live.record.state not in _RUNS):
                continue
            log.info("#%d: aria2 restored it paused, though nobody paused it: starting it",
                     live.record.id)
            try:
                await self._ops.verify_existing_data(live.record, gid, live.record.name)
                await self._ops.rpc.call("aria2.unpause", gid)
            except Aria2Unavailable:
                raise
            except Aria2Error as error:
                log.warning("#%d could not be started again: %s", live.record.id, error)
            self._sweep.moved()  # its status changed: the next poll reads it

    async def _find_by_info_hash(self, lost: Sequence[LiveDownload], active: list[Any],
                                 stopped: list[Any]) -> dict[str, Observation]:
        """aria2's downloads of the torrents of ``lost`` by info-hash (the running and
        waiting ones of them read in full: whether one is stale needs its bytes)."""
        if not lost:
            return {}
        wanted = await self._ops.gids_by_info_hash({live.record.info_hash for live in lost})
        full = await self._ops.statuses(wanted) if wanted else []
        return _by_info_hash([*active, *full, *stopped])

    async def _match_or_resubmit(self, live: LiveDownload, seen: set[str],
                                 by_hash: dict[str, Observation]) -> None:
        """Keep ``live``'s GID, adopt aria2's download of its torrent, or submit it again."""
        record = live.record
        download_id = record.id
        # A row without a GID (an add that timed out) counts as missing.
        if record.gid in seen and self._live.knows_gid(record.gid):
            return
        match = by_hash.get(record.info_hash)
        if match is not None and not _restored_stale(record, match):
            await self._live.set_gid(download_id, match.gid)
            return
        if match is not None:
            # Finished data that aria2 restored from a session saved before the end,
            # with a control file that says less (or none): check it, keep it.
            log.info("#%d was complete; aria2 restored it as %s: checking its data",
                     download_id, match.status)
            await self._ops.remove(match.gid)
            await asyncio.to_thread(remove_control_file, Path(record.directory), record.name)
        await self._submit(record, paused=record.state == TorrentState.PAUSED.value)


def _by_info_hash(statuses: Sequence[dict[str, Any]]) -> dict[str, Observation]:
    """aria2's downloads by info-hash, to find a download whose GID changed."""
    by_hash: dict[str, Observation] = {}
    for status in statuses:
        observation = Observation.parse(status)
        if observation.followed_by or observation.error_code == DUPLICATE:
            continue
        current = by_hash.get(observation.info_hash)
        # Prefer what is running over a finished result of the same torrent.
        if current is None or current.status in ("complete", "error", "removed"):
            by_hash[observation.info_hash] = observation
    return by_hash


def _restored_stale(record: DownloadRecord, observation: Observation) -> bool:
    """aria2 holds a download the row knows to be complete, but not as complete.

    A kill -9 of aria2c in the second after a download completes leaves a session and a
    control file from before the end: restored from them, aria2 would fetch again what the
    control file does not list, or refuse the files (errorCode 13) when it is gone.
    """
    if record.completed_at is None or observation.status == "paused":
        return False
    if observation.status == "error":
        return True
    return observation.status in ("active", "waiting") and not observation.data_complete

