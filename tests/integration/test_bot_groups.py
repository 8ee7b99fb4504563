"""Groups: where the bot works, and who may act on whose download there.

The rule (README, "The bot"): a group is served only when ``ARIABOT_ALLOWED_CHATS`` lists
it. In a group, pausing, resuming, cancelling, deleting and choosing files are for the user
who added the download and for the chat's administrators (Telegram's
``getChatAdministrators``, remembered for a minute); everyone may look. Commands and buttons
are checked alike. Private chats are not looked up at all.

The real bot against the fake Bot API server, on the real manager, aria2c and local swarm.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from manager import TorrentState
from supervisor.config import Settings
from tests.integration import test_bot
from tests.integration.test_bot import (
    MIB,
    OTHER,
    USER,
    Stack,
    _download_id,
    _result_id,
    running_stack,
)
from tests.swarm import Swarm

stack = test_bot.stack  # the fixture: fake Telegram + real bot + real manager and aria2c

GROUP = -100555
ADMIN = 1003  # allowed, and an administrator of GROUP


def _refusal(download_id: int) -> str:
    return f"Only the user who added #{download_id} or an admin of this chat can do that."


@pytest.fixture
async def group_stack(engine_settings: Callable[..., Settings],
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """USER, OTHER and ADMIN allowed, in GROUP and USER's private chat; ADMIN administers
    GROUP, the others are plain members."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings,
                             ARIABOT_ALLOWED_USERS=f"{USER},{OTHER},{ADMIN}",
                             ARIABOT_ALLOWED_CHATS=f"{GROUP},{USER}") as built:
        built.server.set_member(GROUP, 1, "creator")
        built.server.set_member(GROUP, ADMIN, "administrator")
        built.server.set_member(GROUP, USER, "member")
        built.server.set_member(GROUP, OTHER, "member")
        yield built


async def test_only_the_adder_and_admins_act_on_a_download_in_a_group(
    group_stack: Stack, swarm: Swarm,
) -> None:
    stack, server = group_stack, group_stack.server
    seeded = swarm.add("group-share", [2 * MIB, 2 * MIB], seed=71)
    folder = stack.settings.download_dir / "torrents" / str(GROUP)
    with swarm.throttled(128 * 1024):
        mark = server.mark()
        server.push_document(GROUP, USER, seeded.torrent_bytes, "share.torrent")
        reply = await stack.answer(GROUP, mark)
        progress_id, number = _result_id(reply), _download_id(reply.params["text"])
        await stack.shown(GROUP, progress_id, lambda t: "\nDownloading" in t)

        # Another member: every command and every button that changes it is refused.
        refusal = _refusal(number)
        for command in (f"/pause {number}", f"/resume {number}", f"/cancel {number}",
                        f"/cancel {number} delete", f"/files {number} 1"):
            answer = await stack.say(GROUP, command, user=OTHER)
            assert answer.params["text"] == refusal, command
        for data in (f"pause:{number}", f"cancel:{number}", f"cancel:{number}:delete"):
            answer = await stack.press(GROUP, progress_id, data, user=OTHER)
            assert (answer.params.get("text"), answer.params.get("show_alert")) == (
                refusal, True), data
        untouched = await stack.manager.get(number)
        assert untouched.state is TorrentState.DOWNLOADING
        assert untouched.total_bytes == 4 * MIB  # both files still chosen
        assert "Cancel this download?" not in server.message(GROUP, progress_id)["text"]
        assert (folder / "group-share").is_dir()
        # Looking is for everyone.
        listing = await stack.say(GROUP, f"/files {number}", user=OTHER)
        assert "2 files, 2 chosen:" in listing.params["text"]
        status = await stack.say(GROUP, "/status", user=OTHER)
        assert "group-share" in status.params["text"]

        # An administrator may.
        answer = await stack.say(GROUP, f"/pause {number}", user=ADMIN)
        assert answer.params["text"] == f"⏸ #{number} is paused."
        answer = await stack.press(GROUP, progress_id, f"resume:{number}", user=ADMIN)
        assert answer.params.get("text") == "Resumed"

        # The user who added it may.
        await stack.press(GROUP, progress_id, f"cancel:{number}", user=USER)
        await stack.shown(GROUP, progress_id, lambda t: "Cancel this download?" in t)
        answer = await stack.press(GROUP, progress_id, f"cancel:{number}:delete", user=USER)
        assert answer.params.get("text") == "Cancelled; its files are deleted."
    assert (await stack.manager.get(number)).state is TorrentState.CANCELLED
    assert not (folder / "group-share").exists()
    actions = {(entry.action, entry.user_id) for entry in await stack.manager.activity(GROUP)}
    assert {("pause", ADMIN), ("resume", ADMIN), ("cancel", USER)} <= actions
    assert not any(user == OTHER for _, user in actions)

    # One administrator lookup served the whole burst; the adder needed none.
    lookups = server.requests_for("getChatAdministrators")
    assert [r.params["chat_id"] for r in lookups] == [GROUP]

    # A private chat is its user's alone: no lookup.
    private = (await stack.manager.add(swarm.dead_magnet("mine"), USER, USER)).torrent
    answer = await stack.say(USER, f"/pause {private.id}")
    assert answer.params["text"] == f"⏸ #{private.id} is paused."
    assert len(server.requests_for("getChatAdministrators")) == 1


async def test_when_telegram_cannot_name_the_admins_only_the_adder_acts(
    group_stack: Stack, swarm: Swarm,
) -> None:
    stack, server = group_stack, group_stack.server
    reply = await stack.say(GROUP, f"/torrent {swarm.dead_magnet('group-dead')}", user=USER)
    number = _download_id(reply.params["text"])
    server.fail_next("getChatAdministrators", status=500)
    answer = await stack.say(GROUP, f"/cancel {number}", user=ADMIN)
    assert answer.params["text"].startswith(_refusal(number)[:-1])
    assert "try again" in answer.params["text"]
    assert (await stack.manager.get(number)).state is TorrentState.METADATA
    answer = await stack.say(GROUP, f"/cancel {number}", user=ADMIN)  # Telegram is back
    assert answer.params["text"] == f"✖ #{number} is cancelled; its files are kept."


async def test_without_allowed_chats_groups_are_refused_private_chats_served(
    stack: Stack, swarm: Swarm,
) -> None:
    refusal = await stack.say(GROUP, f"/torrent {swarm.dead_magnet('in-a-group')}", user=USER)
    assert refusal.params["text"] == (
        f"Sorry, this bot does not work in this chat. The chat id is {GROUP}; the owner can "
        "allow it with ARIABOT_ALLOWED_CHATS.")
    assert await stack.manager.list(GROUP) == []
    answer = await stack.say(USER, f"/torrent {swarm.dead_magnet('in-private')}")
    assert "in-private" in answer.params["text"]
    assert [t.name for t in await stack.manager.list(USER)] == ["in-private"]


async def test_only_the_adder_and_admins_stop_a_send_in_a_group(
    group_stack: Stack, swarm: Swarm,
) -> None:
    """"Stop sending" changes something, like Pause or Cancel: in a group, another member's
    press is refused and the send goes on; an administrator's stops it."""
    stack, server = group_stack, group_stack.server
    seeded = swarm.add("group-send.bin", MIB, seed=72)
    mark = server.mark()
    server.push_document(GROUP, USER, seeded.torrent_bytes, "send.torrent")
    number = _download_id((await stack.answer(GROUP, mark)).params["text"])
    news = await stack.answer(GROUP, mark, "is downloaded", timeout=test_bot.LONG)
    server.fail_next("sendDocument", status=500, times=50)  # the send keeps retrying
    mark = server.mark()
    answer = await stack.press(GROUP, _result_id(news), f"send:{number}", user=USER)
    assert answer.params.get("text") == "Sending…"
    await server.wait_for("sendDocument", lambda r: r.status == 500, since=mark,
                          timeout=test_bot.LONG)
    status = await server.wait_for("sendMessage", lambda r: "Sending" in str(
        r.params.get("text")), since=mark)

    refused = await stack.press(GROUP, _result_id(status), f"unsend:{number}", user=OTHER)
    assert (refused.params.get("text"), refused.params.get("show_alert")) == (
        _refusal(number), True)
    assert stack.bot.application.bot_data["deliveries"].busy(GROUP, number)

    stopped = await stack.press(GROUP, _result_id(status), f"unsend:{number}", user=ADMIN)
    assert stopped.params.get("text") == "Stopping…"
    await server.wait_until(
        lambda: not stack.bot.application.bot_data["deliveries"].busy(GROUP, number) or None,
        timeout=test_bot.LONG, what="the send to stop")
