"""Actions on a download asked of the node that holds it: asked, taken once, answered.

A user pressed Pause on the front, and the download is on node beta: the front writes the
command and announces it on :data:`COMMANDS_CHANNEL` (its payload: the node asked); beta
takes it (once: ``taken_at`` is set where it was empty), runs it through its own manager and
writes the answer, announced on :data:`ANSWERS_CHANNEL` (its payload: the command's id). An
asker that stops waiting marks a command nobody took as given up, so it never runs late:
either the owner took it first and answers, or it never runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from manager.store.database import StoreDatabase
from manager.store.engine import engine_of

__all__ = ["ANSWERS_CHANNEL", "COMMANDS_CHANNEL", "CommandRecord", "Commands", "listener_name"]

COMMANDS_CHANNEL = "ariabot_commands"
ANSWERS_CHANNEL = "ariabot_answers"


def listener_name(node: str) -> str:
    """The ``application_name`` of the session in which ``node`` listens for its commands
    (PostgreSQL keeps 63 bytes of it): an asker sees there whether anyone can take them."""
    return f"ariabot commands {node}"[:63]


@dataclass(frozen=True)
class CommandRecord:
    """A stored command."""

    id: int
    node: str
    download_id: int
    action: str
    arguments: dict[str, Any]
    chat_id: int | None
    user_id: int
    answered: bool
    error: str | None
    """The name of the :mod:`manager.errors` class the owner raised; None: done."""
    answer: dict[str, Any]


def _record(row: Any) -> CommandRecord:
    return CommandRecord(row.id, row.node, row.download_id, row.action,
                         json.loads(row.arguments), row.chat_id, row.user_id,
                         row.answered_at is not None, row.error, json.loads(row.answer))


class Commands:
    """The commands of one store (``store.commands``), used from asyncio.

    Parameters:
        database: the store's database and thread.
    """

    def __init__(self, database: StoreDatabase) -> None:
        self._database = database

    async def ask(self, node: str, download_id: int, action: str,
                  arguments: Mapping[str, Any], *, chat_id: int | None, user_id: int) -> int:
        """Ask ``node`` to do ``action`` to a download; returns the command's id.

        Raises:
            StoreError: the database cannot be written.
        """
        def write() -> int:
            database = self._database.db
            engine = engine_of(database)
            with database.atomic():
                command_id = self._database.tables.node_command.insert(
                    node=node, download_id=download_id, action=action,
                    arguments=json.dumps(dict(arguments)), chat_id=chat_id, user_id=user_id,
                    asked_at=engine.clock(database)).execute()
                engine.announce(database, COMMANDS_CHANNEL, node)
            return int(command_id)

        return await self._database.run(write)

    async def take(self, node: str, max_age: float) -> list[CommandRecord]:
        """The commands asked of ``node`` that nobody took yet, now taken by it (asked
        within ``max_age`` seconds: an older one's asker has given up), oldest first.

        Raises:
            StoreError: the database cannot be written.
        """
        def write() -> list[CommandRecord]:
            database = self._database.db
            command = self._database.tables.node_command
            now = engine_of(database).clock(database)
            taken = []
            for row in command.select().where(
                    (command.node == node) & command.taken_at.is_null()
                    & (command.asked_at > now - max_age)).order_by(command.id):
                # One by one, each where nobody took it: the asker may give up meanwhile.
                if command.update(taken_at=now).where(
                        (command.id == row.id) & command.taken_at.is_null()).execute():
                    taken.append(_record(row))
            return taken

        return await self._database.run(write)

    async def answer(self, command_id: int, answer: Mapping[str, Any], *,
                     error: str | None = None) -> None:
        """Write what the command did (or the error it met) and announce it.

        Raises:
            StoreError: the database cannot be written.
        """
        def write() -> None:
            database = self._database.db
            engine = engine_of(database)
            command = self._database.tables.node_command
            with database.atomic():
                command.update(answered_at=engine.clock(database), error=error,
                               answer=json.dumps(dict(answer))).where(
                    command.id == command_id).execute()
                engine.announce(database, ANSWERS_CHANNEL, str(command_id))

        await self._database.run(write)

    async def listening(self, node: str) -> bool:
        """Whether ``node``'s session that listens for its commands is connected to the
        database now. A node killed loses its sessions at once, long before its heartbeat
        reads as too old (a machine gone, once the server's TCP keepalives find it silent:
        by its default, the heartbeat limit comes first). Always on SQLite: it has no
        other node.

        Raises:
            StoreError: the database cannot be read.
        """
        def query() -> bool:
            database = self._database.db
            if not engine_of(database).shared:
                return True
            (found,) = database.execute_sql(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = "
                "current_database() AND application_name = %s)", (listener_name(node),)
            ).fetchone()
            return bool(found)

        return await self._database.run(query)

    async def give_up(self, command_id: int) -> bool:
        """The asker stops waiting: True when nobody had taken the command (it never runs),
        False when its owner took it (its answer is coming).

        Raises:
            StoreError: the database cannot be written.
        """
        def write() -> bool:
            database = self._database.db
            command = self._database.tables.node_command
            now = engine_of(database).clock(database)
            return bool(command.update(taken_at=-now).where(
                (command.id == command_id) & command.taken_at.is_null()).execute())

        return await self._database.run(write)

    async def get(self, command_id: int) -> CommandRecord | None:
        """The command, None when it is gone.

        Raises:
            StoreError: the database cannot be read.
        """
        def query() -> CommandRecord | None:
            command = self._database.tables.node_command
            row = command.select().where(command.id == command_id).first()
            return _record(row) if row is not None else None

        return await self._database.run(query)

    async def forget(self, older_than: float) -> int:
        """Remove the commands asked more than ``older_than`` seconds ago; returns how many.

        Raises:
            StoreError: the database cannot be written.
        """
        def write() -> int:
            database = self._database.db
            command = self._database.tables.node_command
            now = engine_of(database).clock(database)
            return command.delete().where(command.asked_at < now - older_than).execute()

        return await self._database.run(write)
