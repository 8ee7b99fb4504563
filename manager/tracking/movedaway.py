"""What a node that comes back after it was declared dead finds moved: it lets go of it.

While this node was not heard from, another one took its unfinished downloads
(:meth:`~manager.store.nodes.Nodes.take_over`), and they are fetched again (on a shared
database by the node that claims them from the queue). Their rows are not this node's now;
this node's aria2c still holds them (its session was restored at start, or it ran on while
this process was frozen) and its disk holds what they wrote here. Before the reconcile at
start, each is removed from this node's aria2c and its data here is deleted (only the files
the download owns, as a cancel deletes them), then the move is forgotten. Nothing of it is
announced: the download goes on, elsewhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from manager.aria2 import Aria2Ops
from manager.downloads import Contents, LiveDownloads
from manager.errors import Aria2Unavailable, StoreError
from manager.files import control_file, is_inside, top_entry
from manager.models import TorrentState
from manager.store import Move, Store

__all__ = ["MovedAway"]

log = logging.getLogger(__name__)


class MovedAway:
    """Lets go of the downloads other nodes took from this one.

    Parameters:
        live: this node's tracked downloads (a GID of theirs is never touched).
        store: the opened store.
        ops: this node's aria2c.
        contents: deletes a download's files, as a cancel does.
        node: this node's name.
        home: the id of this node's data dir (what another data dir took is not its own).
        download_dir: this node's download dir: nothing outside it is deleted.
    """

    def __init__(self, live: LiveDownloads, *, store: Store, ops: Aria2Ops,
                 contents: Contents, node: str, home: str, download_dir: Path) -> None:
        self._live = live
        self._store = store
        self._ops = ops
        self._contents = contents
        self._node = node
        self._home = home
        self._download_dir = download_dir

    async def let_go(self) -> int:
        """Remove from aria2c, and from the disk, every download taken from this node;
        returns how many. One that fails is tried again at the next start.

        Raises:
            Aria2Unavailable: aria2 does not answer (nothing more is done).
            StoreError: the store cannot be read.
        """
        moves = await self._store.nodes.moves_from(self._node, self._home)
        if not moves:
            return 0
        done = []
        for move in moves:
            try:
                await self._let_go(move)
            except (Aria2Unavailable, StoreError):
                raise
            except OSError as error:
                log.warning("#%d: its data left here when node %r took it could not be "
                            "deleted (%s); tried again at the next start", move.download_id,
                            move.to_node, error)
                continue
            done.append(move.id)
        await self._store.nodes.forget_moves(done)
        return len(done)

    async def _written(self, gids: set[str]) -> bool:
        """This node's aria2c says it downloaded some of the torrent (not only its
        metadata); one restored from its session says so only once started again."""
        statuses = await self._ops.statuses(sorted(gids)) if gids else []
        return any(not status.get("followedBy") and int(status.get("completedLength") or 0)
                   for status in statuses)

    async def _let_go(self, move: Move) -> None:
        gids = {gid for gid in await self._ops.gids_by_info_hash({move.info_hash})
                if not self._live.knows_gid(gid)}
        if move.gid is not None and not self._live.knows_gid(move.gid):
            gids.add(move.gid)  # a finished one (aria2's stopped list)
        record = await self._store.downloads.get(move.download_id)
        here = record and dataclasses.replace(record, directory=move.directory, node=None,
                                              gid=move.gid)
        paths = await self._contents.paths(here) if here is not None else []
        if here is not None and paths and (await self._written(gids) or await asyncio.to_thread(
                _control_file_left, Path(move.directory), paths)):
            # The row says how far it got where it runs now (perhaps nowhere yet: a magnet
            # without its size, which owns no name); this node's aria2c wrote these here.
            here = dataclasses.replace(here, state=TorrentState.DOWNLOADING.value)
        for gid in sorted(gids):
            await self._ops.remove(gid)
        deleted = 0
        # The row gone (purged since) leaves no list of its files: they stay.
        if here is not None and await asyncio.to_thread(
                is_inside, Path(move.directory), self._download_dir):
            deleted = (await self._contents.delete(here, paths)).files
        log.warning("#%d was taken over by node %r while this node was not heard from: "
                    "removed from this node's aria2c (%d GID(s)), %d file(s) of its data here "
                    "deleted", move.download_id, move.to_node, len(gids), deleted)


def _control_file_left(folder: Path, paths: list[Path]) -> bool:
    """aria2's control file is beside the download's top entry: this node's aria2c was
    writing it here (runs in a worker thread)."""
    top = top_entry(folder, paths)
    return top is not None and control_file(top).exists()
