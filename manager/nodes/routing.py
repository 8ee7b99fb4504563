"""Actions that reach the node holding the download: asked through the database, answered.

Only the node whose aria2c and disk hold a download can pause, resume, cancel it or choose
its files. A user asks the front; when the download is on another live node, the front asks
that node (:meth:`Router.ask`, a row of :mod:`manager.store.commands` announced by
``NOTIFY``) and waits for its answer. The owner runs each command it is asked through its
own manager (:meth:`Router.serve`, called on each announcement and after each reconnection
of its listener) and writes the answer; a refusal comes back as the same error, with the same
sentence. An asker that waits :data:`ANSWER_WAIT` seconds in vain, or finds that the owner's
listening session left the database (a node killed loses it at once, long before its
heartbeat is too old), gives the command up: if the owner had not taken it yet, it never
runs, and the user is told nothing was done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import manager.errors as known_errors
from manager.errors import ManagerError, OnAnotherNode, StoreError
from manager.nodes.passes import Passes
from manager.store import (
    ANSWERS_CHANNEL,
    COMMANDS_CHANNEL,
    CommandRecord,
    Listener,
    Store,
    listener_name,
)

__all__ = ["ANSWER_WAIT", "Router"]

log = logging.getLogger(__name__)

ANSWER_WAIT = 15.0
"""Seconds an asker waits for the owner to take a command (and as long again for the answer
of one it took): a live node takes it within a second."""

_LOOK_AGAIN = 1.0
"""Seconds between two reads of a command's row while waiting (a lost announcement)."""

_GONE_FOR = 3.0
"""Seconds the owner's listening session must be missing before an asker gives up: a live
node's listener is back within about 2 s (its retry period) of a database restart."""

_KEEP = 3600.0
"""Seconds a command's row is kept after it was asked."""

Runner = Callable[[CommandRecord], Awaitable[Mapping[str, Any]]]
"""Runs a command on this node; returns what it did (JSON), raises a ManagerError."""


class Router:
    """Asks other nodes, and answers what they ask of this one.

    Parameters:
        store: the opened store.
        node: this node's name.
        run: runs a command asked of this node (the manager's own actions).
    """

    def __init__(self, store: Store, node: str, run: Runner) -> None:
        self._store = store
        self._node = node
        self._run = run
        self._waiting: dict[int, asyncio.Event] = {}
        self._serving = Passes(self._serve_once)
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener = Listener(store.url, (COMMANDS_CHANNEL, ANSWERS_CHANNEL),
                                  self._heard, self._connected, listener_name(node))

    def start(self) -> None:
        """Listen for commands and answers from now on."""
        self._spawn(self._listener.run(), "node commands")
        self._spawn(self._store.commands.forget(_KEEP), "forget old commands")

    async def close(self) -> None:
        """Stop listening (a command not yet taken is taken at the next start, if its asker
        still waits)."""
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreError):
                await task

    def _spawn(self, work: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _heard(self, channel: str, payload: str) -> None:
        if channel == COMMANDS_CHANNEL and payload == self._node:
            self._spawn(self.serve(), "run node commands")
        elif channel == ANSWERS_CHANNEL and payload.isdigit():
            event = self._waiting.get(int(payload))
            if event is not None:
                event.set()

    def _connected(self) -> None:
        self._spawn(self.serve(), "run node commands")  # those asked while not listening
        for event in self._waiting.values():
            event.set()  # their answers may have come meanwhile

    async def serve(self) -> None:
        """Run every command asked of this node that nobody took yet, one at a time."""
        await self._serving.run()

    async def _serve_once(self) -> bool:
        try:
            commands = await self._store.commands.take(self._node, ANSWER_WAIT)
        except StoreError as error:
            log.warning("cannot read the commands asked of this node (%s)", error)
            return False
        for command in commands:
            await self._answer(command)
        return False

    async def _answer(self, command: CommandRecord) -> None:
        try:
            answer, error = dict(await self._run(command)), None
        except ManagerError as refused:
            answer, error = {"message": str(refused)}, type(refused).__name__
        log.info("#%d: %s asked of this node: %s", command.download_id, command.action,
                 f"refused ({answer['message']})" if error else "done")
        try:
            await self._store.commands.answer(command.id, answer, error=error)
        except StoreError as failed:
            log.warning("#%d: the answer to its %s cannot be stored (%s); its asker is told "
                        "it got none", command.download_id, command.action, failed)

    async def ask(self, elsewhere: OnAnotherNode, download_id: int, action: str,
                  arguments: Mapping[str, Any], *, chat_id: int | None,
                  user_id: int) -> Mapping[str, Any]:
        """Have ``action`` done by the node that holds the download; returns what it did.

        Raises:
            ManagerError: the owner refused it (the same class and sentence), or did not
                answer (OnAnotherNode: nothing was done, or what it did is unknown).
            StoreError: the database cannot be written.
        """
        command_id = await self._store.commands.ask(elsewhere.node, download_id, action,
                                                    arguments, chat_id=chat_id,
                                                    user_id=user_id)
        event = self._waiting[command_id] = asyncio.Event()
        try:
            command = await self._answered(command_id, event, elsewhere.node)
            if command is None:
                if await self._store.commands.give_up(command_id):
                    raise OnAnotherNode(f"#{download_id} is on node {elsewhere.node}, which "
                                        "did not answer; nothing was done", node=elsewhere.node)
                # Taken: it is running (unless its node is gone meanwhile).
                command = await self._answered(command_id, event, elsewhere.node)
            if command is None:
                raise OnAnotherNode(f"#{download_id} is on node {elsewhere.node}, which took "
                                    f"the {action} but did not say how it went; look again "
                                    "in a moment", node=elsewhere.node)
        finally:
            del self._waiting[command_id]
        if command.error is not None:
            raise _error(command.error, str(command.answer.get("message", "")))
        return command.answer

    async def _answered(self, command_id: int, event: asyncio.Event,
                        owner: str) -> CommandRecord | None:
        """The command once answered; None after :data:`ANSWER_WAIT` seconds, or once
        ``owner`` has not been listening for :data:`_GONE_FOR` seconds."""
        clock = asyncio.get_running_loop().time
        deadline = clock() + ANSWER_WAIT
        gone_since: float | None = None
        while True:
            command = await self._store.commands.get(command_id)
            if command is not None and command.answered:
                return command
            left = deadline - clock()
            if left <= 0:
                return None
            if await self._store.commands.listening(owner):
                gone_since = None
            elif gone_since is None:
                gone_since = clock()
            elif clock() - gone_since >= _GONE_FOR:
                return None
            event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, _LOOK_AGAIN)):
                    await event.wait()


def _error(name: str, message: str) -> ManagerError:
    """The error the owner raised, as this side's class (a ManagerError by default)."""
    kind = getattr(known_errors, name, None)
    if isinstance(kind, type) and issubclass(kind, ManagerError) and kind is not OnAnotherNode:
        with contextlib.suppress(TypeError):
            return kind(message)
    return ManagerError(message)
