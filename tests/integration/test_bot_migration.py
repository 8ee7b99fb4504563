"""A group upgraded to a supergroup keeps working, as its users expect: Telegram's word on the
move (its service messages, or its answer to a request to the old id) lets the supergroup in
where the group was allowed, across restarts; the downloads made before still find their files
in the old chat's folder; and a torrent the supergroup already lists is no dead end.

The real bot (python-telegram-bot) against the fake Bot API server, on the real manager,
store, aria2c and local swarm (the ``stack`` of test_bot.py, the group of test_bot_news.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from manager import TorrentState
from supervisor.config import Settings
from tests.integration.test_bot import (
    LONG,
    MIB,
    USER,
    Stack,
    _download_id,
    _result_id,
    running_stack,
)
from tests.integration.test_bot_news import BOUND, GROUP, _completed_at, _no_pending, _until
from tests.swarm import Swarm

SUPERGROUP = -1004555
"""What the fake server makes of GROUP (``-100`` and the group's number)."""


@pytest.fixture
async def both_stack(engine_settings: Callable[..., Settings],
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """GROUP and its supergroup are both listed (an owner who added the new id by hand)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings,
                             ARIABOT_ALLOWED_CHATS=f"{GROUP},{SUPERGROUP},{USER}") as built:
        built.server.set_member(GROUP, USER, "administrator")
        yield built


async def test_a_torrent_the_supergroup_already_lists_stays_with_the_old_group(
    both_stack: Stack, swarm: Swarm,
) -> None:
    stack, server, manager = both_stack, both_stack.server, both_stack.manager
    # The same torrent in the group (cancelled there) and, later, in the supergroup.
    twice = swarm.add("migrated-twice.bin", MIB, seed=941)
    reply = await stack.say(GROUP, f"/torrent {twice.magnet}", user=USER)
    old_copy = _download_id(reply.params["text"])
    await manager.cancel(old_copy, delete_files=True)
    reply = await stack.say(SUPERGROUP, f"/torrent {twice.magnet}", user=USER)
    new_copy = _download_id(reply.params["text"])
    assert new_copy != old_copy
    # Another download of the group is under way when Telegram upgrades it: its news meets
    # the refusal naming the supergroup (no service message reached the bot).
    seeded = swarm.add("migrated-news.bin", 2 * MIB, seed=942)
    with swarm.throttled(128 * 1024):
        reply = await stack.say(GROUP, f"/torrent {seeded.magnet}", user=USER)
        progress_id, download_id = _result_id(reply), _download_id(reply.params["text"])
        await server.wait_for("editMessageText", lambda r: r.status == 200
                              and r.params.get("message_id") == progress_id, timeout=LONG)
        mark = server.mark()
        server.migrate(GROUP)
    completed = await server.wait_until(lambda: _completed_at(stack, download_id),
                                        timeout=LONG, what="the completion")
    news = await stack.answer(SUPERGROUP, mark, f"is downloaded (#{download_id})",
                              timeout=BOUND + LONG / 4)
    assert news.time - completed < BOUND
    assert (await manager.get(download_id)).chat_id == SUPERGROUP
    # The supergroup's own copy is the one it sees; the old row stays with the old id.
    assert (await manager.get(new_copy)).chat_id == SUPERGROUP
    old = await manager.get(old_copy)
    assert (old.chat_id, old.state) == (GROUP, TorrentState.CANCELLED)
    await _until(lambda: _no_pending(stack), "the news to be sent or given up")
    assert 1 <= sum(1 for r in server.requests[mark:]
                    if r.params.get("chat_id") == GROUP and r.status == 400) <= 3
