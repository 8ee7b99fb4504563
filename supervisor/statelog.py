"""One INFO log line per state change of each download, from the manager's events.

The manager emits many events per download (a progress event per poll); the log wants only
the moments a download changes state. :class:`DownloadStateLog` is a manager subscriber that
remembers the last state it saw of each download and logs when it differs::

    download #3 added in chat 77 (queued): 'ubuntu-24.04.iso'
    download #3 queued -> downloading: 'ubuntu-24.04.iso'
    download #3 downloading -> seeding: 'ubuntu-24.04.iso'
    download #3 seeding -> complete: 'ubuntu-24.04.iso'

aria2c's own states are logged by :mod:`supervisor.process`; a mirror's upload changes no
download state (the manager's mirror jobs log their own lines).
"""

from __future__ import annotations

import logging

from manager import (
    Event,
    MirrorChanged,
    MirrorDone,
    MirrorFailed,
    TorrentAdded,
    TorrentEvent,
    TorrentProgress,
    TorrentState,
)

__all__ = ["DownloadStateLog"]

log = logging.getLogger("ariabot.downloads")


class DownloadStateLog:
    """A manager subscriber (``manager.subscribe(DownloadStateLog())``).

    Parameters:
        logger: where the lines go (``ariabot.downloads`` by default).
    """

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger
        self._states: dict[int, TorrentState] = {}

    def __call__(self, event: Event) -> None:
        if not isinstance(event, TorrentEvent) or isinstance(
                event, MirrorChanged | MirrorDone | MirrorFailed):
            return
        torrent = event.torrent
        if torrent.elsewhere is not None:
            return  # another node's (the front follows it): that node logs its own
        old = self._states.get(torrent.id)
        new = torrent.state
        self._states[torrent.id] = new
        if isinstance(event, TorrentAdded):
            self._log.info("download #%d added in chat %d (%s): %r", torrent.id,
                           torrent.chat_id, new.value, torrent.name)
        elif old is None and isinstance(event, TorrentProgress):
            # First sight after a restart: the state did not change, it was just not known.
            return
        elif old is not new:
            reason = f" ({torrent.error})" if new is TorrentState.ERROR and torrent.error else ""
            self._log.info("download #%d %s -> %s: %r%s", torrent.id,
                           old.value if old else "?", new.value, torrent.name, reason)
