"""When the progress poll reads aria2's whole waiting list, not only what runs.

With 10,000 tracked downloads, 50 run and the rest wait. A waiting or paused download does
not move: its bytes, speeds and peers stay what they were until aria2 starts, pauses or
stops it, and aria2 says so (a WebSocket notification, which refreshes that download at
once). Reading the whole waiting list every cycle made each poll cost O(N) in aria2 and here
(230 ms at N = 10,000, against 3 ms for the running downloads alone; ``python -m tests.bench
--only monitor``), so the poll reads it only when it can have changed, and then only
:data:`~manager.aria2.observation.WAITING_KEYS` of each (queue positions, what aria2 lost), in full
only those whose status changed (:meth:`~manager.tracking.statuses.StatusApplier.to_read`). It is
read:

* something happened since the last sweep: a notification or a user's action refreshed a
  download (a start, pause or end moves every queue position behind it), or the tracked
  downloads, their GIDs or states changed
  (:attr:`~manager.downloads.live.LiveDownloads.changes`: an add, a pause, a resume, a cancel,
  a magnet followed to its real download; aria2 says nothing when it pauses a waiting
  download);
* the last apply asked to look again (a magnet's real download that aria2 was still setting
  up when its metadata was checked);
* aria2's waiting list is not as long as the last sweep found it (each poll reads aria2's
  counts with what runs): a download lost or added that nobody told of;
* and at least every :data:`SWEEP_EVERY` polls whatever happened, for what aria2 does not
  notify (a waiting download paused behind the manager's back, a lost notification). That
  many polls per :data:`~manager.aria2.ops.WAITING_PAGE` waiting downloads: at 100,000 (100
  pages) every 1,200 polls, so that an idle poll costs the same whatever the number of
  downloads (the lost ones are the counts' to find).

A sweep reads the list in pages and works through it in chunks that let the event loop run
(:meth:`~manager.aria2.ops.Aria2Ops.list_everything`): no single step holds the bot up.
"""

from __future__ import annotations

from manager.aria2 import WAITING_PAGE, Counts
from manager.downloads import LiveDownloads

__all__ = ["SWEEP_EVERY", "QueueSweep"]

SWEEP_EVERY = 12
"""A poll reads the waiting list at least this often (at the default 5 s: every minute)."""


class QueueSweep:
    """Decides, poll by poll, whether the waiting list is read too.

    Parameters:
        live: the tracked downloads (their :attr:`~manager.downloads.live.LiveDownloads.changes`).
        every: the longest run of polls without a sweep.
    """

    def __init__(self, live: LiveDownloads, every: int = SWEEP_EVERY) -> None:
        self._live = live
        self._every = every
        self._moved = True  # the first poll sweeps
        self._seen_changes = live.changes
        self._since = 0
        self._length = 0  # the waiting list's length at the last sweep

    def moved(self) -> None:
        """Something may have moved the waiting list (or a download needs another look):
        the next poll reads it."""
        self._moved = True

    def next_poll(self, *, force: bool = False) -> bool:
        """Whether the poll about to run reads the waiting list; counts the poll.

        The tracked downloads' changes are noted now, before the poll reads aria2: a change
        made while it runs is seen by the poll after.

        Parameters:
            force: read it whatever happened (the caller asks for a full poll).
        """
        pages = max(1, -(-self._length // WAITING_PAGE))
        sweep = (force or self._moved or self._live.changes != self._seen_changes
                 or self._since + 1 >= self._every * pages)
        if sweep:
            self._since = 0
            self._moved = False
            self._seen_changes = self._live.changes
        else:
            self._since += 1
        return sweep

    def swept(self, length: int) -> None:
        """The sweep just made read ``length`` waiting downloads."""
        self._length = length

    def agrees(self, counts: Counts | None) -> bool:
        """Whether aria2's counts, read by a poll that did not sweep, say its waiting list
        is as long as the last sweep found it (unknown counts do not agree)."""
        return counts is not None and counts.waiting == self._length
