"""What "Send" sends: a finished download's own files that are whole on disk.

Shared by the Send buttons (:mod:`bot.handlers.callbacks`) and the Mini App's "Send to
chat" (:mod:`bot.websend`), so both refuse the same things with the same words.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.delivery import OutFile
from bot.files import out_file
from manager import FileEntry, Torrent, TorrentManager, TorrentState

__all__ = ["NothingToSend", "files_to_send", "finished_files", "on_disk"]


class NothingToSend(Exception):
    """A download whose files cannot be sent now; ``str()`` says why, for the user."""


async def finished_files(manager: TorrentManager, download_id: int,
                         chat_id: int) -> tuple[Torrent, tuple[FileEntry, ...]]:
    """A finished download of the chat and its own files.

    Raises:
        NothingToSend: not finished, or its file list is not known here.
        DownloadNotFound: no such download in the chat.
    """
    torrent = await manager.get(download_id, chat_id)
    if torrent.state not in (TorrentState.COMPLETE, TorrentState.SEEDING):
        raise NothingToSend(f"#{torrent.id} is not finished.")
    entries = await manager.own_files(torrent.id, chat_id)
    if not entries:
        raise NothingToSend(f"The file list of #{torrent.id} is not known here, so nothing "
                            "can be sent.")
    return torrent, entries


def on_disk(torrent: Torrent, entries: list[FileEntry]) -> list[OutFile | None]:
    """The files on disk, in the download's own folder (a download made before its chat
    moved to a new id keeps the old id's folder); None for one that is not there whole.
    Reads the disk: call it in a thread."""
    if torrent.directory is None:
        return [None for _ in entries]
    folder = Path(torrent.directory)
    return [out_file(folder, entry.index, entry.path, entry.length) for entry in entries]


async def files_to_send(manager: TorrentManager, download_id: int,
                        chat_id: int) -> tuple[Torrent, list[OutFile]]:
    """Every chosen file of a finished download that is whole on disk ("Send all").

    Raises:
        NothingToSend: not finished, its list unknown, or none of its files on disk.
        DownloadNotFound: no such download in the chat.
    """
    torrent, entries = await finished_files(manager, download_id, chat_id)
    wanted = [e for e in entries if e.selected and e.completed == e.length]
    outs = [o for o in await asyncio.to_thread(on_disk, torrent, wanted) if o is not None]
    if not outs:
        raise NothingToSend(f"The files of #{torrent.id} are no longer on disk.")
    return torrent, outs
