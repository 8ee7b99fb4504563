"""What a user does to a download that is there: pause, resume, cancel (with or without
its files), choose its files. Each change goes to aria2 and the store under the lock.

A cancel also stops the download's upload to the mirror: the user dropped the download,
so nothing more of it is uploaded (what was uploaded stays), and a move never deletes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from manager.actions.unplaced import Unplaced
from manager.aria2 import Aria2Ops
from manager.downloads import Contents, Deletion, LiveDownloads, SpaceCheck
from manager.errors import DownloadNotFound, InvalidSource, InvalidState
from manager.events import (
    Publisher,
    TorrentCancelled,
    TorrentPaused,
    TorrentResumed,
    TorrentStateChanged,
)
from manager.models import Torrent, TorrentState
from manager.nodes import Ownership
from manager.store import DownloadRecord, Store

__all__ = ["Cancellation", "Control", "Refresh", "StopMirror"]

Refresh = Callable[[Sequence[str]], Awaitable[None]]
"""Reads these GIDs' status from aria2 and applies it (see :mod:`manager.tracking.sync`)."""

StopMirror = Callable[[int, int], Awaitable[bool]]
"""Stops a download's upload to the mirror (by id, for a user id); whether one ran."""


@dataclass(frozen=True)
class Cancellation:
    """What :meth:`TorrentManager.cancel` did, so the answer tells the truth.

    Attributes:
        torrent: the download after the cancel.
        files_deleted: its files were asked to go and went (none kept).
        kept_for: asked to go, its files were kept: this download in the list (its id)
            owns their name (the ownership rule of :mod:`manager.downloads.contents`).
        upload_stopped: its upload to the mirror was under way, and is stopped.
        never_started: it was waiting for a node: it had no files anywhere.
    """

    torrent: Torrent
    files_deleted: bool = False
    kept_for: int | None = None
    upload_stopped: bool = False
    never_started: bool = False
    """It waited in the queue nodes share: no node ever wrote a file of it."""

    @property
    def outcome(self) -> str:
        """What became of its files and its upload, said after "cancelled" the same way in
        the chat and the Mini App: what really happened to the files (kept when another
        download owns their name, though asked to go) and whether the upload stopped."""
        if self.never_started:
            text = "; it had not started, so it had no files."
        elif self.kept_for is not None:
            text = f"; its files were kept: #{self.kept_for} uses the same name."
        elif self.files_deleted:
            text = "; its files are deleted."
        else:
            text = "; its files are kept."
        if self.upload_stopped:
            text += " Its upload to the mirror is stopped."
        return text

_PAUSABLE = frozenset(s.value for s in (TorrentState.QUEUED, TorrentState.METADATA,
                                        TorrentState.DOWNLOADING, TorrentState.SEEDING))
_FINISHED = frozenset({TorrentState.COMPLETE.value, TorrentState.SEEDING.value})


class Control:
    """Pause, resume, cancel and file choice.

    Parameters:
        live: the shared lock and tracked downloads.
        store: the opened store.
        ops: aria2 operations.
        contents: finding and deleting a download's files.
        space: the disk space check (a resume must fit).
        publisher: where the events go.
        refresh: takes the lock, reads and applies GIDs' status.
        refresh_locked: the same, for a caller that holds the lock.
        stop_mirror: stops a cancelled download's upload (see :data:`StopMirror`).
        ownership: refuses another node's downloads before anything is done.
        unplaced: changes the downloads no node claimed yet (their row only).
    """

    def __init__(self, live: LiveDownloads, *, store: Store, ops: Aria2Ops,
                 contents: Contents, space: SpaceCheck, publisher: Publisher,
                 refresh: Refresh, refresh_locked: Refresh, stop_mirror: StopMirror,
                 ownership: Ownership, unplaced: Unplaced) -> None:
        self._live = live
        self._ownership = ownership
        self._unplaced = unplaced
        self._store = store
        self._ops = ops
        self._contents = contents
        self._space = space
        self._publisher = publisher
        self._refresh = refresh
        self._refresh_locked = refresh_locked
        self._stop_mirror = stop_mirror

    async def pause(self, download_id: int, chat_id: int | None, user_id: int) -> Torrent:
        """:meth:`TorrentManager.pause` (see there)."""
        async with self._live.lock:
            record = await self._own(download_id, chat_id)  # as it is now
            if record.state not in _PAUSABLE:
                raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}; "
                                   "only a running or queued download can be paused")
            if self._ownership.unplaced(record):
                torrent = await self._unplaced.pause(record, user_id)
            else:
                if record.gid is not None:
                    await self._ops.call_on(record, "aria2.forcePause")
                await self._set_state(record, TorrentState.PAUSED, user_id=user_id,
                                      action="pause")
                torrent = await self._current(download_id)
        # None: a node claimed it meanwhile, and pauses it (the next read routes there).
        return torrent or await self.pause(download_id, chat_id, user_id)

    async def resume(self, download_id: int, chat_id: int | None, user_id: int) -> Torrent:
        """:meth:`TorrentManager.resume` (see there)."""
        async with self._live.lock:
            record = await self._own(download_id, chat_id)  # as it is now
            if record.state != TorrentState.PAUSED.value:
                raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}; "
                                   "only a paused download can be resumed")
            unplaced = self._ownership.unplaced(record)
            if unplaced:  # the node that claims it checks its room
                torrent = await self._unplaced.resume(record, user_id)
            else:
                self._space.check(Path(record.directory),
                                  record.total_bytes - record.completed_bytes,
                                  download_id=record.id)
                if record.gid is not None:
                    await self._ops.verify_existing_data(record, record.gid, record.name)
                    await self._ops.call_on(record, "aria2.unpause")
                await self._set_state(record, TorrentState.QUEUED, user_id=user_id,
                                      action="resume")
        if unplaced:  # None: a node claimed it meanwhile, and resumes it
            return torrent or await self.resume(download_id, chat_id, user_id)
        await self._refresh([record.gid] if record.gid else [])
        return await self._current(download_id)

    async def cancel(self, download_id: int, chat_id: int | None, user_id: int, *,
                     delete_files: bool) -> Cancellation:
        """:meth:`TorrentManager.cancel` (see there).

        The row is read under the lock: read before, it could name a GID a poll has
        replaced since (a magnet's metadata download, whose real one would stay in aria2).
        Its upload is stopped after the cancel is stored (a move finishing meanwhile finds
        it cancelled) and before its files go (rclone never reads half-deleted files).
        """
        paths: list[Path] = []
        async with self._live.lock:
            record = await self._own(download_id, chat_id)  # as it is now
            unplaced = self._ownership.unplaced(record) and not TorrentState(
                record.state).is_final
            if unplaced:  # nothing of it is anywhere yet: its row is all there is
                torrent = await self._unplaced.cancel(record, user_id)
        if unplaced:  # None: a node claimed it meanwhile, and cancels it
            if torrent is None:
                return await self.cancel(download_id, chat_id, user_id,
                                         delete_files=delete_files)
            return Cancellation(torrent, never_started=True)
        async with self._live.lock:
            record = await self._own(download_id, chat_id)  # as it is now
            if record.state == TorrentState.CANCELLED.value and not delete_files:
                return Cancellation(self._live.snapshot(record))
            if delete_files:
                paths = await self._contents.paths(record)
            if record.gid is not None:
                await self._ops.remove(record.gid)
            if record.state != TorrentState.CANCELLED.value:
                await self._set_state(record, TorrentState.CANCELLED, user_id=user_id,
                                      action="cancel", extra={"download_speed": 0,
                                                              "upload_speed": 0})
        upload_stopped = await self._stop_mirror(download_id, user_id)
        deletion = None
        if delete_files:
            deletion = await self._contents.delete(record, paths)
            detail = f"{deletion.files} files"
            if deletion.kept is not None:
                detail += f"; kept its data: {deletion.kept}"
            await self._store.activity.log("delete-files", chat_id=record.chat_id, user_id=user_id,
                                           download_id=record.id, detail=detail)
        return Cancellation(
            await self._current(download_id),
            files_deleted=deletion is not None and deletion.kept is None,
            kept_for=deletion.kept_for if deletion is not None else None,
            upload_stopped=upload_stopped)

    async def stop_seeding(self, download_id: int) -> None:
        """End a seeding download's upload to peers: it becomes complete (its files stay).

        A mirror in move mode does this before it uploads. The row is read under the lock:
        a cancel stored meanwhile must not be overwritten with "complete".
        """
        async with self._live.lock:
            record = await self._live.record(download_id)  # as it is now
            if record.state != TorrentState.SEEDING.value:
                return
            updated = await self._stop_seeding_locked(record)
        await self._seeding_stopped(updated)

    async def delete_moved(self, download_id: int, names: Sequence[str]) -> Deletion | None:
        """Delete a finished download's files once a mirror's move has uploaded them
        (``names``: relative to its folder); None when it is no longer finished.

        The decision and the delete are one step under the lock, against the row as it is
        then: a cancel that kept the files (answered before) keeps them, and one that comes
        after finds them moved. The files come from the upload, and go only through the
        ownership rule (:meth:`Contents.delete`).
        """
        stopped = None
        async with self._live.lock:
            try:
                record = await self._live.record(download_id)  # as it is now
            except DownloadNotFound:  # purged meanwhile
                return None
            if record.state not in _FINISHED:  # cancelled, or added again
                return None
            if record.state == TorrentState.SEEDING.value:
                record = stopped = await self._stop_seeding_locked(record)
            folder = Path(record.directory)
            deletion = await self._contents.delete(record, [folder / name for name in names])
        if stopped is not None:
            await self._seeding_stopped(stopped)
        return deletion

    async def _stop_seeding_locked(self, record: DownloadRecord) -> DownloadRecord:
        """Under the lock: take a seeding download out of aria2 and store it complete."""
        if record.gid is not None:
            await self._ops.remove(record.gid)
        updated = await self._store.downloads.update(record.id, state=TorrentState.COMPLETE.value,
                                                     download_speed=0, upload_speed=0, peers=0,
                                                     seeders=0)
        assert updated is not None
        self._live.forget(record.id)
        return updated

    async def _seeding_stopped(self, updated: DownloadRecord) -> None:
        await self._store.activity.log("stop-seeding", chat_id=updated.chat_id, user_id=0,
                                       download_id=updated.id, detail="before a move to the mirror")
        self._publisher.emit(TorrentStateChanged(self._live.snapshot(updated)))

    async def set_files(self, download_id: int, indexes: Iterable[int], chat_id: int | None,
                        user_id: int) -> Torrent:
        """:meth:`TorrentManager.set_files` (see there)."""
        record = await self._own(download_id, chat_id)
        if self._ownership.unplaced(record) and not TorrentState(record.state).is_final:
            raise InvalidState(f"#{download_id} waits for a node with a free slot; its "
                               "files can be chosen once it starts")
        if TorrentState(record.state).is_final or record.gid is None:
            raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}; "
                               "files can be chosen only while it is in the list")
        if record.state == TorrentState.METADATA.value:
            raise InvalidState("the file list is not known yet: wait for the metadata")
        files = await self._contents.current_files(record, final=False)
        wanted = sorted(set(indexes))
        if not wanted:
            raise InvalidSource("choose at least one file")
        if not files or wanted[0] < 1 or wanted[-1] > len(files):
            raise InvalidSource(f"file numbers go from 1 to {len(files)}")
        entries = [files[number - 1] for number in wanted]
        selection = ",".join(str(entry.index) for entry in entries)
        chosen = sum(entry.length for entry in entries)
        async with self._live.lock:
            record = await self._live.record(download_id, chat_id)  # as it is now
            if record.gid is None or TorrentState(record.state).is_final:
                raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}")
            await self._ops.change_paused(record, {"select-file": selection})
            updated = await self._store.downloads.update(record.id, selected_files=selection,
                                                         total_bytes=chosen)
            assert updated is not None
            self._live.remember(updated)
            await self._refresh_locked([record.gid])
        await self._store.activity.log("select-files", chat_id=record.chat_id, user_id=user_id,
                                       download_id=record.id, detail=selection)
        return await self._current(download_id)

    async def set_message(self, download_id: int, message_id: int) -> None:
        """Remember which chat message shows this download's progress.

        Under the lock, and only that column: a row read here while a poll stores a
        completion, put back in memory after it, would have the next poll store (and
        announce) the completion again.
        """
        async with self._live.lock:
            await self._store.downloads.update_many({download_id: {"message_id": message_id}})
            if (live := self._live.get(download_id)) is not None:
                live.record = replace(live.record, message_id=message_id)

    async def _own(self, download_id: int, chat_id: int | None) -> DownloadRecord:
        """The download's row, when this node holds it.

        Raises:
            DownloadNotFound: no such id (or another chat's).
            OnAnotherNode: another node holds it.
        """
        record = await self._live.record(download_id, chat_id)
        await self._ownership.check(record)
        return record

    async def _current(self, download_id: int) -> Torrent:
        """The download as it is after the change (what the caller shows)."""
        return self._live.snapshot(await self._live.record(download_id))

    async def _set_state(self, record: DownloadRecord, state: TorrentState, *, user_id: int,
                         action: str, extra: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = {"state": state.value, "error": None, **(extra or {})}
        updated = await self._store.downloads.update(record.id, **values)
        assert updated is not None
        if state.is_final:
            self._live.forget(record.id)
        else:
            self._live.remember(updated)
        await self._store.activity.log(action, chat_id=record.chat_id, user_id=user_id,
                                       download_id=record.id)
        torrent = self._live.snapshot(updated)
        event_type = {TorrentState.PAUSED: TorrentPaused, TorrentState.QUEUED: TorrentResumed,
                      TorrentState.CANCELLED: TorrentCancelled}[state]
        self._publisher.emit(event_type(torrent))
