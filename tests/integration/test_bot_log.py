"""/log: a chat's own activity log, through the real bot against the fake Bot API server.

The real Application, manager and aria2c (see :mod:`tests.integration.test_bot`): what is
done in one chat shows in that chat's /log and in no other; the allow-list applies as for
every command; names are escaped and no server path appears.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from supervisor.config import Settings
from tests.integration.test_bot import OTHER, STRANGER, USER, Stack, running_stack
from tests.swarm import Swarm

GROUP = -100777


@pytest.fixture
async def log_stack(engine_settings: Callable[..., Settings],
                    monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """USER and OTHER allowed, in their private chats and in GROUP."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings,
                             ARIABOT_ALLOWED_CHATS=f"{GROUP},{USER},{OTHER}") as built:
        yield built


async def test_log_shows_the_chats_own_entries_only(log_stack: Stack, swarm: Swarm) -> None:
    stack = log_stack
    mine = await stack.say(USER, f"/torrent {swarm.dead_magnet('mine <b>&')}")
    assert mine.status == 200
    [own] = await stack.manager.list(USER)
    assert (await stack.say(USER, f"/pause {own.id}")).params["text"] == (
        f"⏸ #{own.id} is paused.")
    theirs = (await stack.manager.add(swarm.dead_magnet("their-secret"), OTHER, OTHER)).torrent
    await stack.manager.pause(theirs.id, OTHER, OTHER)
    group = (await stack.manager.add(swarm.dead_magnet("group-secret"), GROUP, OTHER)).torrent
    local = (await stack.manager.add(swarm.dead_magnet("local-secret"), 0, 0)).torrent

    answer = await stack.say(USER, "/log")
    text = answer.params["text"]
    assert answer.params.get("parse_mode") == "HTML"
    lines = text.splitlines()
    assert lines[0].startswith("<b>Activity</b>")
    assert len(lines) == 3, text
    assert f"pause #{own.id} · by {USER}" in lines[1]  # newest first
    assert f"add #{own.id} · by {USER}" in lines[2]
    assert "mine &lt;b&gt;&amp;" in lines[2] and "<b>&" not in text
    for foreign in ("their-secret", "group-secret", "local-secret", f"#{theirs.id} ",
                    f"#{group.id} ", f"#{local.id} ", f"by {OTHER}"):
        assert foreign not in text, foreign
    for path in (stack.settings.download_dir, stack.settings.data_dir):
        assert str(path) not in text

    group_log = (await stack.say(GROUP, "/log", user=USER)).params["text"]
    assert f"add #{group.id} · by {OTHER}" in group_log and "group-secret" in group_log
    assert "mine" not in group_log and "their-secret" not in group_log
    assert "local-secret" not in group_log

    latest = (await stack.say(USER, "/log 1")).params["text"].splitlines()
    assert len(latest) == 2 and latest[1] == lines[1]
    for bad in ("/log 0", "/log 51", "/log x", "/log 1 2"):
        assert (await stack.say(USER, bad)).params["text"].startswith("Usage: /log"), bad
    empty = await stack.say(OTHER + 1000, "/log", user=USER)  # not an allowed chat
    assert "does not work in this chat" in empty.params["text"]


async def test_log_is_refused_to_strangers(log_stack: Stack, swarm: Swarm) -> None:
    stack = log_stack
    await stack.manager.add(swarm.dead_magnet("private-name"), STRANGER, USER)
    refusal = await stack.say(STRANGER, "/log")
    assert refusal.params["text"].startswith("Sorry, this is a private bot.")
    assert "private-name" not in refusal.params["text"]
