"""What the store keeps per chat: the message ids the bot keeps editing (the ``/status``
overview), and the groups Telegram upgraded to supergroups, whose rows follow the new id."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from manager.store.database import StoreDatabase, utc_now
from manager.store.downloads import DownloadRecord, Downloads
from manager.store.feeds import Feeds
from manager.store.mirrors import Mirrors
from manager.store.outbox import Notices

__all__ = ["Chats", "MovedChat"]


@dataclass(frozen=True)
class MovedChat:
    """What :meth:`Chats.move` did: the rows that follow the chat to its new id, and those
    that stay with the old one (their torrent is already listed in the new chat)."""

    moved: list[DownloadRecord]
    stayed: list[DownloadRecord]
    replaced: list[int]
    """The new chat's rows (ids) that gave way to a moved one, now removed."""


class Chats:
    """Chat views and chat moves of one store (``store.chats``), used from asyncio.

    Parameters:
        database: the store's database and thread.
        downloads, mirrors, notices, feeds: the families whose rows follow a moved chat.
    """

    def __init__(self, database: StoreDatabase, *, downloads: Downloads, mirrors: Mirrors,
                 notices: Notices, feeds: Feeds) -> None:
        self._database = database
        self._downloads = downloads
        self._mirrors = mirrors
        self._notices = notices
        self._feeds = feeds

    async def overview_message(self, chat_id: int) -> int | None:
        """The message id of the chat's ``/status`` overview, if one is stored."""
        def query() -> int | None:
            view = self._database.tables.chat_view
            row = view.select().where(view.chat_id == chat_id).first()
            return row.overview_message_id if row else None

        return await self._database.run(query)

    async def set_overview_message(self, chat_id: int, message_id: int) -> None:
        """Store the message id of the chat's ``/status`` overview."""
        def write() -> None:
            view = self._database.tables.chat_view
            (view.insert(chat_id=chat_id, overview_message_id=message_id)
             .on_conflict(conflict_target=[view.chat_id],
                          update={view.overview_message_id: message_id}).execute())

        await self._database.run(write)

    async def move(self, old_chat_id: int, new_chat_id: int, *,
                   giving_way: Collection[str] = ()) -> MovedChat:
        """A group became a supergroup (Telegram's ``migrate_to_chat_id``): its downloads,
        mirrors, feeds and pending notices belong to the new chat id from now on, and the move
        itself is kept (:meth:`moves`), in ONE transaction. The old chat's messages cannot
        be edited any more (Telegram answers every request there with the migration), so
        the downloads' progress messages are forgotten and the chat's overview too. Files
        stay where they are (each row keeps its ``directory``).

        A download whose torrent the new chat already lists (one row per torrent and chat)
        stays with the old id, its progress message forgotten: the new chat's own row is the
        one its users see and act on, and the old row keeps its files until it is purged.
        Unless the new chat's row is in a state of ``giving_way`` and the old one is not:
        then the new chat's row is removed (with its mirror, notices and sent parts) and the
        old one takes its place.

        Parameters:
            old_chat_id: the id Telegram no longer serves.
            new_chat_id: the chat's id from now on.
            giving_way: states (values) of a new chat's row that owns nothing (cancelled).

        Returns:
            The downloads moved (none when the chat was moved before) and those that stayed,
            as now stored, and the rows that gave way.
        """
        def write() -> MovedChat:
            table = self._database.tables.download
            view, moves = self._database.tables.chat_view, self._database.tables.chat_move
            with self._database.db.atomic():
                held = {row.info_hash: row for row in table.select(
                    table.id, table.info_hash, table.state).where(table.chat_id == new_chat_id)}
                rows = list(table.select(table.id, table.info_hash, table.state).where(
                    table.chat_id == old_chat_id))
                replaced = [held[row.info_hash].id for row in rows if row.info_hash in held
                            and held[row.info_hash].state in giving_way
                            and row.state not in giving_way]
                self._downloads.remove_rows(replaced)
                ids = [row.id for row in rows if row.info_hash not in held
                       or held[row.info_hash].id in replaced]
                kept = [row.id for row in rows if row.id not in ids]
                table.update(chat_id=new_chat_id, message_id=None, updated_at=utc_now()).where(
                    table.id.in_(ids)).execute()
                table.update(message_id=None, updated_at=utc_now()).where(
                    table.id.in_(kept) & table.message_id.is_null(False)).execute()
                self._mirrors.follow_chat(old_chat_id, new_chat_id, ids)
                self._notices.follow_chat(old_chat_id, new_chat_id)
                self._feeds.follow_chat(old_chat_id, new_chat_id)
                view.delete().where(view.chat_id == old_chat_id).execute()
                (moves.insert(old_chat_id=old_chat_id, new_chat_id=new_chat_id,
                              moved_at=utc_now())
                 .on_conflict(conflict_target=[moves.old_chat_id],
                              update={moves.new_chat_id: new_chat_id}).execute())
                found = {record.id: record
                         for record in self._downloads.records(table.id.in_(ids + kept))}
                return MovedChat([found[i] for i in ids], [found[i] for i in kept], replaced)

        return await self._database.run(write)

    async def moves(self) -> dict[int, int]:
        """Every group Telegram upgraded to a supergroup: old chat id → new chat id."""
        def query() -> dict[int, int]:
            moves = self._database.tables.chat_move
            return {row.old_chat_id: row.new_chat_id for row in moves.select()}

        return await self._database.run(query)
