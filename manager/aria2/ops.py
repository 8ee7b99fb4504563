"""The manager's verbs on aria2: the few call sequences it needs, on top of :class:`Aria2Rpc`.

:class:`~manager.aria2.rpc.Aria2Rpc` runs every call in its own worker threads and maps
errors; this module knows which calls make one operation (a removal that waits for its
result to land, an option change on a paused download) and which refusals are the user's
business (:class:`~manager.errors.InvalidState`) rather than aria2 being away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manager.aria2.observation import POLL_KEYS
from manager.aria2.rpc import Aria2Rpc
from manager.errors import Aria2Error, Aria2Unavailable, InvalidState
from manager.files import has_unverified_data
from manager.models import TorrentState
from manager.store import DownloadRecord

__all__ = ["Aria2Ops"]

log = logging.getLogger(__name__)

_LIST_ALL = 2**31 - 1
"""tellStopped's length (and tellWaiting's in one request): all of it, whatever its size
(aria2 clamps it to the list's). It was 100,000: past that many downloads, a reconcile
would have taken the rest of the waiting list for lost."""

WAITING_PAGE = 1_000
"""Waiting downloads read per request. An answer's JSON is parsed in a worker thread that
holds the GIL, so the event loop waits for it: 100,000 entries in one answer held it over
100 ms, a page of 1,000 about 1 ms."""

_PAGED_ATTEMPTS = 3
"""Reads page by page of a waiting list that moved meanwhile, before one whole read."""


@dataclass(frozen=True)
class Counts:
    """aria2's ``getGlobalStat`` counts: equal before and after a paged read, no download
    changed list meanwhile (the manager's own changes wait for the lock the reader holds)."""

    active: int
    waiting: int
    stopped_total: int

    @classmethod
    def parse(cls, stat: Any) -> Counts | None:
        """From ``getGlobalStat``'s answer (None: a fault, or not its shape)."""
        try:
            return cls(int(stat["numActive"]), int(stat["numWaiting"]),
                       int(stat["numStoppedTotal"]))
        except (TypeError, KeyError, ValueError):
            return None


class Aria2Ops:
    """aria2 operations of the manager.

    Parameters:
        rpc: the aria2 adapter; looked up at each call (tests may wrap its methods).
        clock: monotonic clock, for the deadline of :meth:`wait_status`.
    """

    def __init__(self, rpc: Aria2Rpc, clock: Callable[[], float]) -> None:
        self.rpc = rpc
        self._clock = clock

    async def call_on(self, record: DownloadRecord, method: str) -> None:
        """``method(gid)`` on a download the user acts on.

        Raises:
            Aria2Unavailable: aria2 does not answer.
            InvalidState: aria2 refused (logged with its words; the user sees ours).
        """
        assert record.gid is not None
        try:
            await self.rpc.call(method, record.gid)
        except Aria2Unavailable:
            raise
        except Aria2Error as error:
            log.warning("aria2 refused %s of download #%s (GID %s): %s", method, record.id,
                        record.gid, error)
            raise InvalidState("the downloader refused that just now; try again") from None

    async def remove(self, gid: str) -> None:
        """Remove a download from aria2 and drop its result (aria2 keeps it otherwise).

        Raises:
            Aria2Unavailable: aria2 does not answer.
        """
        try:
            await self.rpc.call("aria2.forceRemove", gid)
        except Aria2Unavailable:
            raise
        except Aria2Error:
            pass  # already stopped: only its result is left
        # Wait for the removal to land, then drop its result.
        for _ in range(50):
            try:
                status = await self.rpc.call("aria2.tellStatus", gid, ["status"])
            except Aria2Error:
                return
            if status.get("status") in ("removed", "complete", "error"):
                break
            await asyncio.sleep(0.02)
        with contextlib.suppress(Aria2Error):
            await self.rpc.call("aria2.removeDownloadResult", gid)

    async def change_paused(self, record: DownloadRecord, options: dict[str, str]) -> None:
        """Change options that aria2 accepts only on a paused (or waiting) download.

        A running download is paused for it and always started again, also when a step
        fails: a failed file choice must not leave the download stopped.
        """
        assert record.gid is not None
        was_running = record.state != TorrentState.PAUSED.value
        try:
            if was_running:
                await self.call_on(record, "aria2.forcePause")
                await self._wait_status(record.gid, {"paused"})
            await self.rpc.call("aria2.changeOption", record.gid, options)
        finally:
            if was_running:
                await self.call_on(record, "aria2.unpause")

    async def _wait_status(self, gid: str, wanted: set[str]) -> None:
        deadline = self._clock() + 5.0
        while self._clock() < deadline:
            status = await self.rpc.call("aria2.tellStatus", gid, ["status"])
            if status.get("status") in wanted:
                return
            await asyncio.sleep(0.02)
        raise InvalidState("aria2 did not pause the download in time")

    async def verify_existing_data(self, record: DownloadRecord, gid: str, name: str) -> None:
        """Before a paused download starts: have aria2 hash-check finished data it would
        otherwise refuse (errorCode 13) because its control file is gone."""
        if await asyncio.to_thread(has_unverified_data, Path(record.directory), name):
            await self.rpc.call("aria2.changeOption", gid, {"check-integrity": "true"})

    async def statuses(self, gids: Sequence[str]) -> list[dict[str, Any]]:
        """These GIDs' status (:data:`~manager.aria2.observation.POLL_KEYS`) in one request; the
        GIDs aria2 does not know are left out."""
        answers = await self.rpc.multicall(
            [("aria2.tellStatus", [gid, list(POLL_KEYS)]) for gid in gids]
        )
        return [a for a in answers if isinstance(a, dict)]

    async def gids_by_info_hash(self, info_hashes: set[str]) -> list[str]:
        """The GIDs of the downloads aria2 runs or holds waiting whose torrent is one of
        ``info_hashes`` (lowercase), in one request.

        Only a reconcile that found downloads missing under their GIDs asks for it: the
        info-hash of 100,000 waiting downloads nearly doubles the size of the waiting list's
        answer, and most restarts lose nothing.
        """
        keys = ["gid", "infoHash"]
        answers = await self.rpc.multicall([("aria2.tellActive", [keys]),
                                            ("aria2.tellWaiting", [0, _LIST_ALL, keys])])
        return [str(entry.get("gid", "")) for answer in answers for entry in _listed(answer)
                if str(entry.get("infoHash", "")).lower() in info_hashes]

    async def list_everything(
        self, extra: Sequence[tuple[str, list[Any]]] = (), *,
        waiting_keys: Sequence[str] = POLL_KEYS, whole: bool = False,
    ) -> tuple[list[Any], list[Any], list[Any]]:
        """Every download aria2 holds, as one consistent view: (active, waiting, stopped).

        The running and finished ones and the first :data:`WAITING_PAGE` waiting ones come in
        one request with aria2's counts; a longer waiting list in further pages, each with
        the counts again, so that no answer holds the event loop while it is parsed. Counts
        that moved between the pages mean a download changed list meanwhile (one started,
        one ended): the pages are read again; after :data:`_PAGED_ATTEMPTS` such reads,
        the lists in one request.

        Parameters:
            extra: calls sent in the first request, after the lists (their answers are
                dropped).
            waiting_keys: the keys asked of the waiting ones (the others get
                :data:`~manager.aria2.observation.POLL_KEYS`).
            whole: in one request, not in pages (a reconcile: aria2c restoring its
                session starts downloads all the while, so the pages would be read again
                and again; at 100,000 that made the start-up 2.8 s longer).
        """
        keys, wanted = list(POLL_KEYS), list(waiting_keys)
        for _attempt in range(0 if whole else _PAGED_ATTEMPTS):
            answers = await self.rpc.multicall([
                ("aria2.tellActive", [keys]),
                ("aria2.tellWaiting", [0, WAITING_PAGE, wanted]),
                ("aria2.tellStopped", [0, _LIST_ALL, keys]),
                ("aria2.getGlobalStat", []),
                *extra,
            ])
            extra = ()  # sent once
            active, waiting, stopped = (_listed(answer) for answer in answers[:3])
            counts = Counts.parse(answers[3])
            if counts is None:
                break
            if await self._rest_of_waiting(waiting, counts, wanted):
                return active, waiting, stopped
        answers = await self.rpc.multicall([
            ("aria2.tellActive", [keys]),
            ("aria2.tellWaiting", [0, _LIST_ALL, wanted]),
            ("aria2.tellStopped", [0, _LIST_ALL, keys]),
            *extra,
        ])
        active, waiting, stopped = (_listed(answer) for answer in answers[:3])
        return active, waiting, stopped

    async def _rest_of_waiting(self, waiting: list[Any], counts: Counts,
                               keys: list[str]) -> bool:
        """Read the waiting list on, page by page, into ``waiting``; False when aria2's
        counts moved meanwhile (then ``waiting`` is not one view)."""
        while len(waiting) < counts.waiting:
            page, stat = await self.rpc.multicall([
                ("aria2.tellWaiting", [len(waiting), WAITING_PAGE, keys]),
                ("aria2.getGlobalStat", []),
            ])
            if Counts.parse(stat) != counts or not isinstance(page, list) or not page:
                return False
            waiting.extend(page)
        return len(waiting) == counts.waiting

    async def list_running(
        self, extra: Sequence[tuple[str, list[Any]]] = ()
    ) -> tuple[list[Any], list[Any], Counts | None]:
        """What aria2 runs and what it finished, in one request: (active, stopped, counts).

        Both are bounded whatever the number of downloads (``max-concurrent-downloads``, and
        the finished results the poll purges); the waiting list, the one that grows with
        them, is left out: its length is in the counts (see :mod:`manager.tracking.sweep`).

        Parameters:
            extra: calls sent in the same request, after the two lists (their answers are
                dropped).
        """
        keys = list(POLL_KEYS)
        answers = await self.rpc.multicall([
            ("aria2.tellActive", [keys]),
            ("aria2.tellStopped", [0, _LIST_ALL, keys]),
            ("aria2.getGlobalStat", []),
            *extra,
        ])
        active, stopped = (_listed(answer) for answer in answers[:2])
        return active, stopped, Counts.parse(answers[2])


def _listed(answer: Any) -> list[Any]:
    """A list call's slot of a multicall (a fault: nothing listed)."""
    return answer if isinstance(answer, list) else []
