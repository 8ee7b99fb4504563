"""Applying what aria2 reports to the rows: state, numbers, stuck reasons, completions, and
the events they make; one store transaction per batch of statuses."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from manager.aria2 import (
    WAITING_PAGE,
    Aria2Rpc,
    Observation,
    RpcFault,
    derive_state,
    error_text,
    unreachable_reason,
)
from manager.clock import utcnow
from manager.config import ManagerConfig
from manager.downloads import LiveDownload, LiveDownloads, snapshot
from manager.errors import Aria2Error
from manager.events import (
    Event,
    Publisher,
    TorrentCancelled,
    TorrentCompleted,
    TorrentFailed,
    TorrentPaused,
    TorrentProgress,
    TorrentStateChanged,
)
from manager.models import TorrentState
from manager.store import DownloadRecord, Store
from manager.tracking.metadata import MetadataCheck
from manager.tracking.pacing import in_steps, paced_missing

__all__ = ["DUPLICATE", "Applied", "StatusApplier"]

DUPLICATE = 12
"""aria2's error code for "InfoHash … is already registered"."""

_ROW_SAYS = {TorrentState.QUEUED.value: "waiting", TorrentState.PAUSED.value: "paused"}
"""aria2's status of a waiting download that a row in this state already accounts for."""


@dataclass
class Applied:
    """What one :meth:`StatusApplier.apply` found besides the rows it changed.

    Attributes:
        missing: ids of unfinished downloads that aria2 does not hold under their GID, or
            that have none yet (an add that timed out: aria2 may or may not have taken it);
            only known when the full list was applied.
        refresh: GIDs to read again soon (a magnet's real download, one just started).
        look_again: a download must be read again at the next poll (a magnet's real
            download that aria2 is still setting up, waiting or paused).
    """

    missing: list[int] = field(default_factory=list)
    refresh: set[str] = field(default_factory=set)
    look_again: bool = False


@dataclass(frozen=True)
class _Observed:
    """One download's change found in aria2's answer, not yet written nor remembered."""

    live: LiveDownload
    gid: str
    values: dict[str, Any]
    """The columns to write (empty when only the stuck reason changed)."""
    stuck_reason: str | None


class StatusApplier:
    """Folds aria2's statuses into the store and emits the events. The caller holds the lock.

    Parameters:
        live: the tracked downloads.
        store: the opened store.
        rpc: the aria2 adapter (saveSession, a download's trackers).
        config: the DHT setting and aria2's dead-torrent timeout.
        metadata: checks a magnet's metadata when it arrives.
        publisher: where the events go.
        clock: monotonic clock (stall watches).
    """

    def __init__(self, live: LiveDownloads, *, store: Store, rpc: Aria2Rpc,
                 config: ManagerConfig, metadata: MetadataCheck, publisher: Publisher,
                 clock: Callable[[], float]) -> None:
        self._live = live
        self._store = store
        self._rpc = rpc
        self._config = config
        self._metadata = metadata
        self._publisher = publisher
        self._clock = clock

    async def apply(
        self, statuses: Iterable[dict[str, Any]], waiting_order: Sequence[dict[str, Any]] | None
    ) -> Applied:
        """Fold aria2's statuses into the store and emit events.

        Memory follows the store: the tracked rows change only once the batch's one
        transaction has been written. When it fails (the database is locked or full), it
        raises and nothing is remembered, so the next poll finds the same changes (a
        completion among them) and writes them again.

        Parameters:
            statuses: ``tellStatus``-shaped answers (faults are skipped).
            waiting_order: aria2's waiting list when ``statuses`` and it are everything
                aria2 holds (queue positions and missing downloads are known then), else
                None. Its entries need only ``gid`` and ``status``: the waiting downloads
                whose full status is needed (:meth:`to_read`) come in ``statuses``.

        Raises:
            StoreError: the batch could not be written.
        """
        now = self._clock()
        positions: dict[str, int] = {}
        seen: set[int] = set()
        if waiting_order is not None:
            await self._place(waiting_order, positions, seen)
        stored: list[Event] = []  # news of writes already made (a magnet's metadata)
        observed: list[_Observed] = []
        read: list[tuple[LiveDownload, str]] = []
        applied = Applied()
        observations = [Observation.parse(status) for status in statuses
                        if not isinstance(status, RpcFault)]
        await self._check_trackers(observations)
        for observation in observations:
            # Looked up in turn: a magnet followed to its real download earlier in this
            # batch makes that download's status the row's.
            live = self._live.by_gid(observation.gid)
            if live is None:
                continue
            if observation.error_code == DUPLICATE:
                # A second add of a torrent aria2 already holds: not this row's real state.
                # Forget that GID; reconcile finds the real one by info-hash.
                self._live.drop_gid(observation.gid)
                self._live.results_to_drop.add(observation.gid)
                continue
            seen.add(live.record.id)
            read.append((live, observation.status))
            if observation.followed_by:
                if observation.status in ("complete", "removed", "error"):
                    self._live.results_to_drop.add(observation.gid)
                await self._follow(live, observation.followed_by[0], applied.refresh)
                continue
            if waiting_order is not None:
                live.queue_position = positions.get(observation.gid)
            found = await self._observe(live, observation, now, stored, applied)
            if found is not None:
                observed.append(found)
        changes = {found.live.record.id: found.values for found in observed if found.values}
        if any("completed_at" in values for values in changes.values()):
            # Before anyone is told: aria2's session (saved every few seconds) still lists a
            # download that has just finished; saved now, a kill -9 of aria2c cannot bring
            # it back as unfinished.
            with contextlib.suppress(Aria2Error):
                await self._rpc.call("aria2.saveSession")
        try:
            await self._store.downloads.update_many(changes)
        except BaseException:
            # Memory follows the store: nothing of this batch is remembered, so the next
            # poll finds the same differences and writes them again.
            self._emit(stored)
            raise
        for live, status in read:
            live.last_status = status
        self._emit([*stored, *(self._remember(found) for found in observed)])
        if waiting_order is not None:
            applied.missing = await paced_missing(self._live.ids(), seen)  # 100,000
        return applied

    async def _place(self, waiting_order: Sequence[dict[str, Any]], positions: dict[str, int],
                     seen: set[int]) -> None:
        """Queue positions from aria2's waiting list, into ``positions`` (by GID) and the
        tracked downloads; the ids of those it holds into ``seen``."""
        async for page in in_steps(waiting_order, WAITING_PAGE):  # 100,000 of them
            for entry in page:
                gid = str(entry.get("gid", ""))
                if entry.get("status") == "waiting":
                    positions[gid] = len(positions) + 1
                if (waiting := self._live.by_gid(gid)) is not None:
                    waiting.queue_position = positions.get(gid)
                    seen.add(waiting.record.id)

    def _emit(self, events: Iterable[Event]) -> None:
        for event in events:
            self._publisher.emit(event)

    def _remember(self, found: _Observed) -> Event:
        """After the write: keep what was stored in memory; returns the change's event."""
        live, values = found.live, found.values
        live.stuck_reason = found.stuck_reason
        record = replace(live.record, **values)
        if TorrentState(record.state).is_final:
            self._live.forget(record.id)
            self._live.results_to_drop.add(found.gid)
        else:
            live.record = record
        return _event_for(record, values, live)

    def to_read(self, waiting: Sequence[dict[str, Any]], *,
                rows_known: bool = False) -> list[str]:
        """GIDs in aria2's waiting list (asked with :data:`~manager.aria2.observation.WAITING_KEYS`)
        whose full status the next :meth:`apply` needs.

        A download that waits or is paused does not change: its bytes, speeds and peers
        stay what they were while its status stays. So only these are read in full: a
        tracked download whose status differs from the one last applied (new, started,
        paused, queued again), and a magnet's real download whose metadata is still to be
        checked (:class:`~manager.tracking.metadata.MetadataCheck`, which is retried until aria2 has
        set it up).

        Parameters:
            rows_known: reconcile's read after a (re)start: a download never applied yet
                whose row already says what aria2 says (queued and waiting, paused and
                paused) is left out too, so 100,000 restored downloads are not read twice;
                :meth:`settle` then records their status.
        """
        gids = []
        for entry in waiting:
            gid = str(entry.get("gid", ""))
            live = self._live.by_gid(gid)
            if live is None:
                continue
            real_download = str(entry.get("numPieces", "0")) != "0"
            last = live.last_status
            if last is None and rows_known:
                last = _ROW_SAYS.get(live.record.state)
            if (entry.get("status") != last
                    or (live.awaiting_metadata and real_download
                        and gid not in live.metadata_gids)):
                gids.append(gid)
        return gids

    async def settle(self, waiting: Sequence[dict[str, Any]]) -> None:
        """After :meth:`to_read` with ``rows_known`` and :meth:`apply`: the waiting downloads
        left unread because their rows already said so are taken as applied."""
        async for page in in_steps(waiting, WAITING_PAGE):  # 100,000 of them
            for entry in page:
                live = self._live.by_gid(str(entry.get("gid", "")))
                if (live is not None and live.last_status is None
                        and entry.get("status") == _ROW_SAYS.get(live.record.state)):
                    live.last_status = str(entry.get("status"))

    async def _observe(self, live: LiveDownload, observation: Observation, now: float,
                       stored: list[Event], applied: Applied) -> _Observed | None:
        """What one observation changes of ``live`` (None: nothing); memory is not touched
        until the batch is written (:meth:`_remember`). A magnet's metadata check writes on
        its own: its events go to ``stored``."""
        record = live.record
        if observation.verifying and record.completed_at is not None:
            # Finished data handed back to aria2 (after a restart, a resume): while it is
            # checked it looks like a download that starts; the row stays as it is.
            return None
        state = derive_state(observation)
        if live.awaiting_metadata and not state.is_final:
            if not (observation.is_metadata or observation.gid in live.metadata_gids):
                # Perhaps the real download, paused by pause-metadata: check it, start it.
                news = await self._metadata.arrived(live, observation, applied.refresh)
                stored.extend(news)
                if observation.gid not in live.metadata_gids:
                    applied.look_again = applied.look_again or not news
                    return None
            if state in (TorrentState.DOWNLOADING, TorrentState.SEEDING):
                state = TorrentState.METADATA
        values = self._values(record, observation, state)
        stuck = live.watch.update(observation, state, now)
        if not values and stuck == live.stuck_reason:
            return None
        return _Observed(live, observation.gid, values, stuck)

    async def _check_trackers(self, observations: Sequence[Observation]) -> None:
        """With DHT off, see once per download whether aria2 has a tracker it can use for it.

        The announce lists (kept out of the poll's keys) of every download that starts come
        in one ``tellStatus`` request: at start-up 50 of them start at once, and one request
        each, to an aria2c still restoring its session, made the reconcile 0.4 to 1.7 s
        longer at 100,000 downloads. The verdict becomes the stuck reason from the first
        poll instead of minutes of "metadata 0.0%".
        """
        due = [(live, observation.gid) for observation in observations
               if (live := self._live.by_gid(observation.gid)) is not None
               and self._tracker_check_due(live, observation)]
        if not due:
            return
        try:
            answers = await self._rpc.multicall(
                [("aria2.tellStatus", [gid, ["bittorrent"]]) for _live, gid in due])
        except Aria2Error:
            return  # aria2 is down: asked again at a later poll
        for (live, _gid), status in zip(due, answers, strict=True):
            if not isinstance(status, dict):
                continue  # gone meanwhile: asked again if it comes back
            tiers = (status.get("bittorrent") or {}).get("announceList") or []
            urls = [url for tier in tiers if isinstance(tier, list) for url in tier
                    if isinstance(url, str)]
            live.trackers_checked = True
            live.watch.unreachable = unreachable_reason(urls, dht_enabled=False)

    def _tracker_check_due(self, live: LiveDownload, observation: Observation) -> bool:
        """Whether ``observation`` is of a download that looks for peers, DHT off, and
        whose trackers were never checked."""
        if (self._config.enable_dht or live.trackers_checked or observation.followed_by
                or observation.error_code == DUPLICATE):
            return False
        state = derive_state(observation)
        return state in (TorrentState.METADATA, TorrentState.DOWNLOADING) or (
            live.awaiting_metadata and state is TorrentState.SEEDING)

    def _values(self, record: DownloadRecord, observation: Observation,
                state: TorrentState) -> dict[str, Any]:
        """The columns that differ from the stored row."""
        wanted: dict[str, Any] = {
            "state": state.value,
            "completed_bytes": observation.completed,
            "upload_bytes": observation.uploaded,
            # A seeding download fetches nothing: aria2's last figure would linger.
            "download_speed": observation.download_speed if state.value in (
                "downloading", "metadata") else 0,
            "upload_speed": observation.upload_speed if state.value in (
                "downloading", "seeding") else 0,
            "seeders": observation.seeders,
            "peers": observation.connections,
        }
        if state is TorrentState.METADATA or (
            state is TorrentState.PAUSED and observation.completed < record.completed_bytes
        ):
            # Metadata: bytes of the metadata itself, not of the torrent. Paused: aria2 has
            # not read the data of a download restored paused, and says 0; the row knows.
            del wanted["completed_bytes"]
        elif observation.total:
            wanted["total_bytes"] = observation.total
        if state is TorrentState.ERROR:
            wanted["error"] = error_text(observation, self._config.bt_stop_timeout)
        if (state in (TorrentState.SEEDING, TorrentState.COMPLETE)
                and record.completed_at is None):
            wanted["completed_at"] = utcnow()
        return {k: v for k, v in wanted.items() if getattr(record, k) != v}

    async def _follow(self, live: LiveDownload, real_gid: str, refresh: set[str]) -> None:
        """A magnet's metadata download finished: its real download is ``real_gid``."""
        if live.record.gid == real_gid:
            return
        await self._live.set_gid(live.record.id, real_gid)
        refresh.add(real_gid)


def _event_for(record: DownloadRecord, values: dict[str, Any], live: LiveDownload) -> Event:
    torrent = snapshot(record, live)
    if "completed_at" in values:
        return TorrentCompleted(torrent)
    new_state = values.get("state")
    if new_state == TorrentState.ERROR.value:
        return TorrentFailed(torrent)
    if new_state == TorrentState.CANCELLED.value:
        return TorrentCancelled(torrent)
    if new_state == TorrentState.PAUSED.value:
        return TorrentPaused(torrent)
    if new_state is not None:
        return TorrentStateChanged(torrent)
    return TorrentProgress(torrent)
