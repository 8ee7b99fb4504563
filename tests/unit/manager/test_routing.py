"""Actions asked of the node that holds a download, on a real PostgreSQL server: answered,
refused with the owner's own error, and given up (never run late) when nobody answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from manager import InvalidState, OnAnotherNode, Store
from manager.nodes import Router, routing
from manager.store import CommandRecord

pytestmark = pytest.mark.postgresql


def _beta() -> OnAnotherNode:
    return OnAnotherNode("#7 is on node beta; only that node has it", node="beta", online=True)


async def test_the_owner_runs_what_it_is_asked_once_and_the_asker_gets_its_answer(
        pg_store: Store) -> None:
    ran: list[tuple[str, int, dict[str, Any]]] = []

    async def run(command: CommandRecord) -> Mapping[str, Any]:
        ran.append((command.action, command.download_id, command.arguments))
        if command.action == "pause":
            raise InvalidState("#7 is already paused")
        return {"files_deleted": True}

    asker = Router(pg_store, "alpha", run)
    owner = Router(pg_store, "beta", run)
    for router in (asker, owner):
        router.start()
    try:
        did = await asker.ask(_beta(), 7, "cancel", {"delete_files": True}, chat_id=5,
                              user_id=6)
        assert did == {"files_deleted": True}
        with pytest.raises(InvalidState, match=r"^#7 is already paused$"):
            await asker.ask(_beta(), 7, "pause", {}, chat_id=5, user_id=6)
        assert ran == [("cancel", 7, {"delete_files": True}), ("pause", 7, {})]
    finally:
        for router in (asker, owner):
            await router.close()


async def test_a_command_nobody_takes_is_given_up_and_never_runs_late(
        pg_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "ANSWER_WAIT", 0.5)

    async def never(command: CommandRecord) -> Mapping[str, Any]:
        raise AssertionError(f"{command} ran late")

    asker = Router(pg_store, "alpha", never)
    asker.start()
    try:
        with pytest.raises(OnAnotherNode, match="which did not answer; nothing was done"):
            await asker.ask(_beta(), 7, "pause", {}, chat_id=5, user_id=6)
    finally:
        await asker.close()
    assert await pg_store.commands.take("beta", 3600) == []  # beta, back, finds nothing
