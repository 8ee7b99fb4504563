"""The promises machine's I1 releases what a purge with files removed from the list, however
late the purge sees it finished (:mod:`tests.promises`).

With ``ARIABOT_SEED_TIME=0`` a finished download is ``seeding`` for about a second, then
``complete``. The machine's purge rule released only the rows it saw finished before it
sent ``purge``; one that turned complete in between (a loaded CI machine, 2 cores) went with
its files, as it may, and I1 reported them lost: ``I1: downloads/torrents/0/movie.mkv (#3's
file) disappeared`` (main 7c0d4f4, a clean-clone CI run). Here the purge is sent once the
row is complete, the order that run met by chance.

A move to the mirror releases the download's files too, and the release must hold when its
group becomes a supergroup: the machine took the row under the new chat id for another
download, dropped the release, took the file (still there) as the download's again, and I1
said ``#1's file disappeared`` once the move deleted it, as asked (soak seed 1070685111).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.promises import Catalog, make_machine
from tests.promises.machine import PromisesMachine
from tests.promises.world import GROUP, GROUP_MIGRATED, LOCAL, USER, LoopThread
from tests.runner import wait_until
from tests.swarm import Swarm

pytestmark = pytest.mark.slow


@pytest.fixture
def machine(swarm: Swarm, tmp_path: Path) -> Iterator[PromisesMachine]:
    loop = LoopThread()
    try:
        machine = make_machine(Catalog(swarm), tmp_path, loop)()
        try:
            yield machine
        finally:
            machine.teardown()
    finally:
        loop.close()


def test_a_download_finished_while_the_purge_starts_may_go_with_its_files(
    machine: PromisesMachine,
) -> None:
    machine.add(("movie-a", LOCAL, "local file"))
    movie = machine.stack.downloads / "torrents" / str(LOCAL) / "movie.mkv"

    def owned_while_seeding() -> bool:
        machine.promises()  # the invariant after a step: it takes the finished file as #1's
        owner = machine.owned.get(movie)
        return owner is not None and owner.owner == 1 and _state(machine) == "seeding"

    wait_until(owned_while_seeding, 60, "#1's file to be fingerprinted while it seeds",
               describe=lambda: f"#1 is {_state(machine)}")
    send = machine.stack.control

    def purge_once_complete(operation: str, **fields: Any) -> dict[str, Any]:
        if operation == "purge":  # what a slow machine did between the look and the purge
            wait_until(lambda: _state(machine) == "complete", 30, "#1 to stop seeding")
        return send(operation, **fields)

    machine.stack.control = purge_once_complete  # type: ignore[method-assign]
    machine.purge(True)

    assert _state(machine) is None and not movie.exists()  # purged, with its file
    machine.promises()


def test_a_move_to_the_mirror_keeps_its_release_when_the_group_becomes_a_supergroup(
    machine: PromisesMachine,
) -> None:
    machine.restart("sigterm")  # the mirror's mode, copy -> move
    assert machine.stack.mode == "move"
    machine.add(("movie-a", GROUP, "command"))
    movie = machine.stack.downloads / "torrents" / str(GROUP) / "movie.mkv"

    def owned_and_complete() -> bool:
        machine.promises()
        owner = machine.owned.get(movie)
        return owner is not None and owner.owner == 1 and _state(machine) == "complete"

    wait_until(owned_and_complete, 60, "#1 complete, its file fingerprinted")
    # Telegram upgrades the group; the bot learns it from its answer to /status there,
    # and the rows follow: the machine has not looked at them since.
    machine.telegram_fault(("migrated", GROUP, 3.0))
    machine.stack.say(GROUP, USER, "/status")
    wait_until(lambda: machine.stack.rows()[0]["chat_id"] == GROUP_MIGRATED, 30,
               "the row to follow the supergroup")
    machine.work_on(("mirror", 0, "local", {1}))  # in move mode: its files are released
    machine.promises()  # the machine sees the row under the supergroup's id
    wait_until(lambda: any(m["state"] == "done" for m in machine.stack.rows("mirrors")), 60,
               "the move to finish")
    assert not movie.exists()  # moved to the mirror, as asked
    machine.promises()


def _state(machine: PromisesMachine) -> str | None:
    rows = machine.stack.rows()
    return str(rows[0]["state"]) if rows else None
