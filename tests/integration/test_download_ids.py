"""A download's ``#id`` is never given to another download, not even after a purge: users act
on downloads by id from old messages (buttons' ``verb:id``, ``/cancel <id>``, notices, mirror
places), so a reused id would let an old button act on a new download. Real aria2c, the local
swarm, and the real bot against the fake Bot API server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from manager import TorrentManager, TorrentState
from supervisor.config import Settings
from tests.integration.conftest import Engine
from tests.integration.test_bot import (
    LONG,
    USER,
    Stack,
    _download_id,
    _result_id,
    running_stack,
)
from tests.integration.test_manager import wait_state
from tests.runner import until
from tests.swarm import Swarm, file_digests

MiB = 1024 * 1024

pytestmark = pytest.mark.usefixtures("database_url")  # ids never reused, on both engines


async def test_an_id_purged_as_the_only_row_is_not_given_again(
    engine: Engine, swarm: Swarm
) -> None:
    first = swarm.add("ids-only.bin", 1 * MiB, seed=61)
    added = await engine.manager.add(first.magnet, chat_id=9, user_id=1)
    await wait_state(engine, added.torrent.id, TorrentState.COMPLETE)
    assert await engine.manager.purge_finished(timedelta(0)) == 1
    assert await engine.manager.list(chat_id=9) == []  # the table is empty now

    second = swarm.add("ids-next.bin", 1 * MiB, seed=62)
    again = await engine.manager.add(second.magnet, chat_id=9, user_id=1)
    assert again.torrent.id > added.torrent.id


async def test_an_id_purged_as_the_newest_row_is_not_given_again(
    engine: Engine, swarm: Swarm
) -> None:
    waiting = await engine.manager.add(swarm.dead_magnet("ids-waiting"), chat_id=9, user_id=1)
    newest = swarm.add("ids-newest.bin", 1 * MiB, seed=63)
    added = await engine.manager.add(newest.magnet, chat_id=9, user_id=1)
    await wait_state(engine, added.torrent.id, TorrentState.COMPLETE)
    assert await engine.manager.purge_finished(timedelta(0)) == 1  # only the newest goes
    assert [t.id for t in await engine.manager.list(chat_id=9)] == [waiting.torrent.id]

    later = swarm.add("ids-later.bin", 1 * MiB, seed=64)
    again = await engine.manager.add(later.magnet, chat_id=9, user_id=1)
    assert again.torrent.id > added.torrent.id


async def _until_state(manager: TorrentManager, download_id: int, state: TorrentState) -> None:
    """Wait (with a deadline) until the download's stored state is ``state``."""
    deadline = time.monotonic() + LONG
    while (await manager.get(download_id)).state is not state:
        assert time.monotonic() < deadline, f"#{download_id} never became {state}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def stack(engine_settings: Callable[..., Settings],
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """The real bot on the real manager and aria2c (see test_bot.running_stack)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings) as built:
        yield built


async def test_an_old_cancel_button_after_a_purge_leaves_the_new_download_alone(
    stack: Stack, swarm: Swarm
) -> None:
    old = swarm.add("ids-old.bin", 1 * MiB, seed=65)
    start = stack.server.mark()
    reply = await stack.say(USER, f"/torrent {old.magnet}")
    old_message, old_id = _result_id(reply), _download_id(reply.params["text"])
    await stack.answer(USER, start, "ids-old.bin</b> is downloaded", timeout=LONG)
    await _until_state(stack.manager, old_id, TorrentState.COMPLETE)  # seeding is not final
    assert await stack.manager.purge_finished(timedelta(0)) == 1

    new = swarm.add("ids-new.bin", 4 * MiB, seed=66)
    with swarm.throttled(128 * 1024):  # still downloading when the old button is pressed
        reply = await stack.say(USER, f"/torrent {new.magnet}")
        new_id = _download_id(reply.params["text"])
        folder = stack.settings.download_dir / "torrents" / str(USER)
        await until((folder / "ids-new.bin").exists, timeout=LONG,
                    what="the new download's file to appear")

        # The old message's "Cancel + delete files", pressed after the purge and the new add.
        answer = await stack.press(USER, old_message, f"cancel:{old_id}:delete")
        assert answer.params.get("text") == (
            f"No download #{old_id} in this chat; /status lists this chat's downloads.")
        new_state = (await stack.manager.get(new_id)).state
    assert new_id != old_id
    assert new_state not in {TorrentState.CANCELLED, TorrentState.ERROR}
    assert (folder / "ids-new.bin").exists()
    await stack.shown(USER, _result_id(reply), lambda t: "Complete" in t)
    assert file_digests(folder / "ids-new.bin") == file_digests(new.content_path)
