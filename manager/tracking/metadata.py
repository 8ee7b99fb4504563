"""A magnet's metadata has arrived: check the real download's names and size before its
first byte is written, keep its pad files out of the chat folder, then start it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from manager.aria2 import Aria2Ops, Aria2Rpc, Observation
from manager.downloads import (
    Contents,
    LiveDownload,
    LiveDownloads,
    SpaceCheck,
    all_file_entries,
    file_entries,
)
from manager.errors import Aria2Error, NotEnoughSpace
from manager.events import Event, MetadataReceived, TorrentFailed
from manager.files import is_inside
from manager.models import TorrentState
from manager.store import Store

__all__ = ["MetadataCheck"]

log = logging.getLogger(__name__)


class MetadataCheck:
    """Checks and starts a magnet's real download (aria2 holds it paused: pause-metadata).

    Parameters:
        live: the tracked downloads.
        store: the opened store.
        rpc: the aria2 adapter.
        ops: aria2 operations (removal, the data check before a start).
        contents: name clashes and pad file options.
        space: the disk space check, now that the size is known.
    """

    def __init__(self, live: LiveDownloads, *, store: Store, rpc: Aria2Rpc, ops: Aria2Ops,
                 contents: Contents, space: SpaceCheck) -> None:
        self._live = live
        self._store = store
        self._rpc = rpc
        self._ops = ops
        self._contents = contents
        self._space = space

    async def arrived(self, live: LiveDownload, observation: Observation,
                      refresh: set[str]) -> list[Event]:
        """Check a magnet's metadata (names, space) before its first byte is written.

        Parameters:
            live: the magnet's download, still without a size.
            observation: what may be its real download.
            refresh: GIDs to read again soon; the real download's is added once started.

        Returns:
            The events to emit (none while aria2 still fetches or sets it up).
        """
        record = live.record
        try:
            details = await self._rpc.call("aria2.tellStatus", observation.gid,
                                           ["bittorrent", "files", "status"])
        except Aria2Error:
            return []
        raw_files = details.get("files") or []
        if raw_files and str(raw_files[0].get("path", "")).startswith("[METADATA]"):
            live.metadata_gids |= {observation.gid}  # still fetching: nothing to check yet
            return []
        if not raw_files:
            return []  # aria2 is still setting the real download up: look again next time
        name = str(((details.get("bittorrent") or {}).get("info") or {}).get("name") or "")
        folder = Path(record.directory)
        files = file_entries(record, raw_files)
        problem = (_unsafe_metadata(folder, name, raw_files)
                   or await self._contents.name_clash(folder, name, record.info_hash,
                                                    claimed=live.claimed_name == name))
        # A download paused by pause-metadata reports totalLength 0: add up its files.
        total = sum(f.length for f in files if f.selected)
        if problem is not None:
            await self._drop(observation.gid)
            return [TorrentFailed(await self._live.fail(live, problem))]
        padding = self._contents.pad_options(record, all_file_entries(record, raw_files))
        if padding and details.get("status") == "paused":
            # Before its first byte: pad files are never selected, and go to the scratch.
            try:
                await self._rpc.call("aria2.changeOption", observation.gid, padding)
            except Aria2Error as error:
                log.warning("#%d: could not move its pad files out of the chat folder: %s",
                            record.id, error)
                await self._drop(observation.gid)
                return [TorrentFailed(await self._live.fail(
                    live, "aria2 could not set the torrent up"))]
        values: dict[str, Any] = {"name": name or record.name, "total_bytes": total}
        start = False
        try:
            self._space.check(folder, total, download_id=record.id)
        except NotEnoughSpace as error:
            values.update(state=TorrentState.PAUSED.value, error=str(error))
            if details.get("status") != "paused":
                with contextlib.suppress(Aria2Error):  # stopping it writes nothing
                    await self._rpc.call("aria2.forcePause", observation.gid)
        else:
            if record.state != TorrentState.PAUSED.value:  # unless the user paused it
                values["state"] = TorrentState.QUEUED.value
                start = details.get("status") == "paused"
        # The row takes the name and size before aria2 may write a byte: files of this
        # torrent on disk are then always its row's (claims_its_files). Should this write
        # fail, aria2 keeps it paused and the next poll comes back here.
        updated = await self._store.downloads.update(record.id, **values)
        assert updated is not None
        live.record = updated
        if start:
            with contextlib.suppress(Aria2Error):
                await self._ops.verify_existing_data(updated, observation.gid, name)
                await self._rpc.call("aria2.unpause", observation.gid)
        refresh.add(observation.gid)
        torrent = replace(self._live.snapshot(updated, live), files=files)
        return [MetadataReceived(torrent)]

    async def _drop(self, gid: str) -> None:
        """Remove a refused download from aria2, and save aria2's session at once: the
        session saved a moment ago lists it (paused, its metadata saved beside it), and an
        aria2c killed before the next save would bring it back, unpaused, to check and
        write over the very files it was refused for (the nodes' promises machine found a
        user's file overwritten so)."""
        await self._ops.remove(gid)
        with contextlib.suppress(Aria2Error):
            await self._rpc.call("aria2.saveSession")


def _unsafe_metadata(folder: Path, name: str, files: Sequence[dict[str, Any]]) -> str | None:
    """Why the torrent's names are unsafe (a path outside its folder), or None."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        return "unsafe torrent: its name is not a plain file name"
    for entry in files:
        path = str(entry.get("path") or "")
        if not path or not is_inside(Path(path), folder / name):
            return "unsafe torrent: a file would be written outside its folder"
    return None
