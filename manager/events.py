"""What the manager tells its subscribers. Every event carries snapshots, never live objects.

::

    Event
    ├── TorrentEvent (.torrent: Torrent)
    │   ├── TorrentAdded        stored and handed to aria2 (or queued for it)
    │   ├── MetadataReceived    a magnet's metadata arrived: name, size and files are known
    │   ├── TorrentProgress     bytes, speeds or peers moved (one per download per poll)
    │   ├── TorrentStateChanged any other change of state (queued → downloading, stuck…)
    │   ├── TorrentPaused / TorrentResumed
    │   ├── TorrentCompleted    all selected data is on disk (it may go on seeding)
    │   ├── TorrentFailed       ended in error; ``torrent.error`` says why
    │   ├── TorrentCancelled
    │   ├── MirrorChanged       its upload to the mirror moved (state, bytes, a retry)
    │   ├── MirrorDone          uploaded and verified; ``torrent.mirror`` says where
    │   └── MirrorFailed        the upload failed for good; ``torrent.mirror.error`` why
    ├── DownloadsPurged     finished downloads left the list (``.purged``: id, chat pairs)
    └── EngineEvent (.detail: str)
        ├── Aria2Down           aria2c died or hung; the supervisor is restarting it
        ├── Aria2Restarted      aria2c answers again (new session); downloads reconciled
        └── Aria2Fatal          aria2c could not be kept alive; ariabot is exiting

A :class:`Publisher` hands each event to the subscribers (the bot's progress board, the
supervisor's state log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from manager.models import Torrent

__all__ = [
    "Aria2Down",
    "Aria2Fatal",
    "Aria2Restarted",
    "DownloadsPurged",
    "EngineEvent",
    "Event",
    "MetadataReceived",
    "MirrorChanged",
    "MirrorDone",
    "MirrorFailed",
    "Publisher",
    "Subscriber",
    "TorrentAdded",
    "TorrentCancelled",
    "TorrentCompleted",
    "TorrentEvent",
    "TorrentFailed",
    "TorrentPaused",
    "TorrentProgress",
    "TorrentResumed",
    "TorrentStateChanged",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base of everything the manager emits."""


@dataclass(frozen=True)
class TorrentEvent(Event):
    """Something happened to one download; ``torrent`` is its snapshot right after."""

    torrent: Torrent


@dataclass(frozen=True)
class TorrentAdded(TorrentEvent):
    pass


@dataclass(frozen=True)
class MetadataReceived(TorrentEvent):
    pass


@dataclass(frozen=True)
class TorrentProgress(TorrentEvent):
    pass


@dataclass(frozen=True)
class TorrentStateChanged(TorrentEvent):
    pass


@dataclass(frozen=True)
class TorrentPaused(TorrentEvent):
    pass


@dataclass(frozen=True)
class TorrentResumed(TorrentEvent):
    pass


@dataclass(frozen=True)
class TorrentCompleted(TorrentEvent):
    pass


@dataclass(frozen=True)
class TorrentFailed(TorrentEvent):
    pass


@dataclass(frozen=True)
class TorrentCancelled(TorrentEvent):
    pass


@dataclass(frozen=True)
class MirrorChanged(TorrentEvent):
    pass


@dataclass(frozen=True)
class MirrorDone(TorrentEvent):
    pass


@dataclass(frozen=True)
class MirrorFailed(TorrentEvent):
    pass


@dataclass(frozen=True)
class DownloadsPurged(Event):
    """Finished downloads left the list (a purge, the daily retention): nothing of them is
    shown any more. Not a :class:`TorrentEvent`: there is no state to show, and their
    progress messages stay as they were."""

    purged: tuple[tuple[int, int], ...]
    """(download id, chat id) of each."""


@dataclass(frozen=True)
class EngineEvent(Event):
    """Something happened to aria2c itself."""

    detail: str


@dataclass(frozen=True)
class Aria2Down(EngineEvent):
    pass


@dataclass(frozen=True)
class Aria2Restarted(EngineEvent):
    session_id: str = ""


@dataclass(frozen=True)
class Aria2Fatal(EngineEvent):
    pass


Subscriber = Callable[[Event], None]
"""Called with every event, on the event loop; must not block."""


class Publisher:
    """Hands every event to every subscriber, in the order they subscribed.

    A failing subscriber is logged and skipped: one broken view must not keep the news from
    the others, nor break the tracking that emits it.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._enrich: Callable[[Event], Event] | None = None

    def enrich_with(self, enrich: Callable[[Event], Event]) -> None:
        """Pass every event through ``enrich`` before it goes out: the mirror jobs add a
        download's upload to the snapshots that the tracking emits without knowing it."""
        self._enrich = enrich

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that removes it again."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def emit(self, event: Event) -> None:
        """Give ``event`` to every subscriber (a copy of the list: one may unsubscribe)."""
        if self._enrich is not None:
            event = self._enrich(event)
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("an event subscriber failed on %s; skipped", type(event).__name__)
