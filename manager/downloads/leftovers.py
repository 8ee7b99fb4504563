"""aria2's control files left beside finished downloads, removed while aria2c is not running.

aria2 deletes a torrent's ``<name>.aria2`` about a second after its data is complete (at its
next auto-save) and on a clean exit. An aria2c killed in that second (it did not exit in
time, or the machine went down) leaves it beside the finished files, where the user sees
it, and where it would have aria2 fetch again what it does not list. The supervisor calls
:func:`remove_finished_control_files` after aria2c exited and before it starts: then nothing
can be writing one.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from manager.downloads.contents import remove_control_file
from manager.downloads.live import LIVE_STATES
from manager.models import TorrentState
from manager.store import DownloadRecord, Store

__all__ = ["remove_finished_control_files"]

log = logging.getLogger(__name__)

_FINISHED = (TorrentState.COMPLETE.value, TorrentState.SEEDING.value)


async def remove_finished_control_files(store: Store, node: str | None) -> int:
    """Delete the control file of every download of ``node`` (None: of all) whose data is
    complete (complete or seeding); a name an unfinished download of the same folder uses
    is left alone. Another node's downloads are on its disk, not here.

    Returns:
        How many were deleted.
    """
    finished = [record for record in await store.downloads.list(states=_FINISHED, node=node)
                if record.completed_at is not None]
    if not finished:
        return 0
    unfinished = await store.downloads.list(states=[state.value for state in LIVE_STATES
                                                    if state is not TorrentState.SEEDING],
                                            node=node)
    return await asyncio.to_thread(_remove, finished, unfinished)


def _remove(finished: list[DownloadRecord], unfinished: list[DownloadRecord]) -> int:
    in_use = {(record.directory, record.name) for record in unfinished}
    removed = 0
    for record in finished:
        if (record.directory, record.name) in in_use:
            continue
        folder = Path(record.directory)
        if (folder / f"{record.name}.aria2").is_file():
            remove_control_file(folder, record.name)
            removed += 1
    if removed:
        log.info("removed aria2's control file left beside %d finished download(s)", removed)
    return removed
