"""What "Send" sends: a finished download's own files that are whole on disk.

Shared by the Send buttons (:mod:`bot.handlers.callbacks`), the Mini App's "Send to chat"
(:mod:`bot.websend`) and a node's sends asked by the front (:mod:`bot.senddesk`), so all
refuse the same things with the same words.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.delivery import Deliveries, OutFile
from bot.files import out_file
from manager import FileEntry, Torrent, TorrentManager, TorrentState

__all__ = ["NothingToSend", "SentByItsNode", "files_for_send", "start_send"]


class NothingToSend(Exception):
    """A download whose files cannot be sent now; ``str()`` says why, for the user."""


class SentByItsNode(Exception):
    """Another node holds the finished download: its files are on that node's disk, and
    that node sends them (:meth:`manager.TorrentManager.send_on_owner`)."""


async def _finished_files(manager: TorrentManager, download_id: int,
                         chat_id: int) -> tuple[Torrent, tuple[FileEntry, ...]]:
    """A finished download of the chat and its own files.

    Raises:
        NothingToSend: not finished, or its file list is not known here.
        SentByItsNode: another node holds it.
        DownloadNotFound: no such download in the chat.
    """
    torrent = await manager.get(download_id, chat_id)
    if torrent.state not in (TorrentState.COMPLETE, TorrentState.SEEDING):
        raise NothingToSend(f"#{torrent.id} is not finished.")
    if torrent.elsewhere is not None:
        raise SentByItsNode(torrent.elsewhere)
    entries = await manager.own_files(torrent.id, chat_id)
    if not entries:
        raise NothingToSend(f"The file list of #{torrent.id} is not known here, so nothing "
                            "can be sent.")
    return torrent, entries


def _on_disk(torrent: Torrent, entries: list[FileEntry]) -> list[OutFile | None]:
    """The files on disk, in the download's own folder (a download made before its chat
    moved to a new id keeps the old id's folder); None for one that is not there whole.
    Reads the disk: call it in a thread."""
    if torrent.directory is None:
        return [None for _ in entries]
    folder = Path(torrent.directory)
    return [out_file(folder, entry.index, entry.path, entry.length) for entry in entries]


async def files_for_send(manager: TorrentManager, download_id: int, chat_id: int,
                         number: int | None = None) -> tuple[Torrent, list[OutFile]]:
    """Every chosen file of a finished download that is whole on disk ("Send all"), or
    only its file ``number`` (1-based, as its /files list numbers them: "Send" of one).

    Raises:
        NothingToSend: not finished, its list unknown, no such file, or not on disk.
        SentByItsNode: another node holds it.
        DownloadNotFound: no such download in the chat.
    """
    torrent, entries = await _finished_files(manager, download_id, chat_id)
    if number is None:
        wanted = [e for e in entries if e.selected and e.completed == e.length]
        outs = [o for o in await asyncio.to_thread(_on_disk, torrent, wanted) if o is not None]
        if not outs:
            raise NothingToSend(f"The files of #{torrent.id} are no longer on disk.")
        return torrent, outs
    if not 1 <= number <= len(entries):
        raise NothingToSend(f"#{torrent.id} has no file {number}: its files go from 1 to "
                            f"{len(entries)}.")
    entry = entries[number - 1]
    out = (await asyncio.to_thread(_on_disk, torrent, [entry]))[0] if entry.selected else None
    if out is None:
        raise NothingToSend(f"File {number} of #{torrent.id} is not on disk (not chosen, "
                            "deleted or changed).")
    return torrent, [out]


def start_send(deliveries: Deliveries, chat_id: int, torrent: Torrent, outs: list[OutFile],
               reply_to: int | None) -> str:
    """Start sending ``outs`` into the chat; the sentence for the user.

    Raises:
        NothingToSend: this download is already being sent there.
    """
    title = torrent.name or torrent.info_hash[:16]
    if not deliveries.start(chat_id, torrent.id, title, outs, reply_to):
        raise NothingToSend(f"#{torrent.id} is already being sent here; its status message "
                            "shows how far.")
    count = f"{len(outs)} file" + ("s" if len(outs) != 1 else "")
    return f"Sending #{torrent.id} ({count}) to the chat."
