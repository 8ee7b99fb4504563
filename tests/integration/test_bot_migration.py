"""A group upgraded to a supergroup keeps working, as its users expect: Telegram's word on the
move (its service messages, or its answer to a request to the old id) lets the supergroup in
where the group was allowed, across restarts; the downloads made before still find their files
in the old chat's folder; and a torrent the supergroup already lists is no dead end.

The real bot (python-telegram-bot) against the fake Bot API server, on the real manager,
store, aria2c and local swarm (the ``stack`` of test_bot.py, the group of test_bot_news.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import pytest

from bot.app import EmbeddedBot, build_application
from manager import NoticeKind, TorrentState
from supervisor.config import Settings
from supervisor.root import bot_config
from tests.integration.test_bot import (
    LONG,
    MIB,
    OTHER,
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
STRANGE_GROUP = -4777
"""A group nobody allowed."""
NOT_ALLOWED = "does not work in this chat"


@pytest.fixture
async def admin_group_stack(engine_settings: Callable[..., Settings],
                            monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """GROUP is allowed and is the admin chat; its supergroup is listed nowhere."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings, ARIABOT_ALLOWED_CHATS=f"{GROUP},{USER}",
                             ARIABOT_ADMIN_CHAT=str(GROUP)) as built:
        built.server.set_member(GROUP, USER, "administrator")
        yield built


@pytest.fixture
async def both_stack(engine_settings: Callable[..., Settings],
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """GROUP and its supergroup are both listed (an owner who added the new id by hand)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with running_stack(engine_settings,
                             ARIABOT_ALLOWED_CHATS=f"{GROUP},{SUPERGROUP},{USER}") as built:
        built.server.set_member(GROUP, USER, "administrator")
        yield built


async def _restart_bot(stack: Stack) -> None:
    """A new Application on the same manager and store (what ``ariabot run`` builds anew)."""
    await stack.bot.stop()
    stack.bot = EmbeddedBot(build_application(bot_config(stack.settings), stack.manager),
                            stack.manager)
    await stack.bot.start()


async def test_an_upgraded_group_is_served_in_its_supergroup_across_restarts(
    admin_group_stack: Stack,
) -> None:
    stack, server = admin_group_stack, admin_group_stack.server
    mark = server.mark()
    server.migrate(GROUP, by=USER)  # Telegram's two service messages
    # The supergroup's first message is Telegram's own: no refusal is posted there.
    answer = await stack.say(SUPERGROUP, "/status", user=USER)
    assert NOT_ALLOWED not in answer.params["text"]
    assert not [r for r in server.requests[mark:] if NOT_ALLOWED in str(r.params.get("text"))]

    # A user's words claim nothing: a group nobody allowed stays refused, its "move" too
    # (its service messages end silently; a refusal is sent once per user and interval).
    refusal = await stack.say(STRANGE_GROUP, f"migrate_to_chat_id {GROUP}", user=USER)
    assert NOT_ALLOWED in refusal.params["text"]
    strange_super = server.migrate(STRANGE_GROUP, by=USER)
    refusal = await stack.say(strange_super, "/status", user=OTHER)
    assert NOT_ALLOWED in refusal.params["text"]

    # Stored, not held in memory: after a restart the supergroup is still served, and the
    # admin chat's alerts go there.
    await _restart_bot(stack)
    again = await stack.say(SUPERGROUP, "/status", user=USER)
    assert NOT_ALLOWED not in again.params["text"]
    mark = server.mark()
    await stack.manager.store.notices.add(NoticeKind.ARIA2_RESTARTED, "a test alert")
    alert = await stack.answer(SUPERGROUP, mark, "a test alert", timeout=BOUND)
    assert alert.status == 200
    refusal = await stack.say(strange_super, "/status", user=USER)
    assert NOT_ALLOWED in refusal.params["text"]
    await _until(lambda: _no_pending(stack), "the alert to be marked")


async def test_files_from_before_the_upgrade_are_found_in_the_old_chats_folder(
    both_stack: Stack, swarm: Swarm,
) -> None:
    stack, server, manager = both_stack, both_stack.server, both_stack.manager
    seeded = swarm.add("migrated-files.bin", 2 * MIB, seed=931)
    with swarm.throttled(128 * 1024):
        reply = await stack.say(GROUP, f"/torrent {seeded.magnet}", user=USER)
        progress_id, download_id = _result_id(reply), _download_id(reply.params["text"])
        await server.wait_for("editMessageText", lambda r: r.status == 200
                              and r.params.get("message_id") == progress_id, timeout=LONG)
        mark = server.mark()
        server.migrate(GROUP, by=USER)

        async def moved() -> bool:
            return (await manager.get(download_id)).chat_id == SUPERGROUP

        await _until(moved, "the download to follow its chat")
    # Its files stay where aria2 writes them: the old chat's folder.
    old_folder = stack.settings.download_dir / "torrents" / str(GROUP)
    await server.wait_until(lambda: _completed_at(stack, download_id), timeout=LONG,
                            what="the completion")
    assert (old_folder / "migrated-files.bin").read_bytes() == seeded.content_path.read_bytes()
    news = await stack.answer(SUPERGROUP, mark, f"is downloaded (#{download_id})",
                              timeout=BOUND + LONG / 4)
    assert "<code>migrated-files.bin</code>" in news.params["text"]
    button = news.params["reply_markup"]["inline_keyboard"][0][0]
    assert button["callback_data"] == f"send:{download_id}"

    # "Send file" there, and the Send button of /files: the bytes are the seeded file's.
    mark = server.mark()
    answer = await stack.press(SUPERGROUP, _result_id(news), f"send:{download_id}", user=USER)
    assert answer.params.get("text") == "Sending…"
    upload = await server.wait_for("sendDocument", since=mark, timeout=LONG)
    assert upload.status == 200 and upload.params.get("chat_id") == SUPERGROUP
    file_id = upload.response["result"]["document"]["file_id"]
    assert server.file(file_id).data == seeded.content_path.read_bytes()
    listing = await stack.say(SUPERGROUP, f"/files {download_id}", user=USER)
    assert "migrated-files.bin" in listing.params["text"]
    sendfile = next(button["callback_data"]
                    for row in listing.params["reply_markup"]["inline_keyboard"]
                    for button in row if button["callback_data"].startswith("sendfile:"))
    answer = await stack.press(SUPERGROUP, _result_id(listing), sendfile, user=USER)
    assert answer.params.get("text") == "Sending…"  # found (what Telegram has is not resent)
    assert (old_folder / "migrated-files.bin").exists()  # nothing moved on disk


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


async def test_a_message_from_the_group_answered_after_its_upgrade_follows_it_quietly(
    admin_group_stack: Stack, swarm: Swarm, caplog: pytest.LogCaptureFixture,
) -> None:
    """A /torrent sent in the group just before the upgrade reaches the bot after it (and no
    service message told it): its answer gets ChatMigrated. The download is added, the bot
    follows the group to its supergroup, and nothing is logged as a crash (the soak found
    the traceback: seed 1301820956)."""
    stack, server = admin_group_stack, admin_group_stack.server
    torrent = swarm.add("sent-before-upgrade.bin", 256 * 1024, seed=2614)
    server.migrate(GROUP)  # Telegram says nothing: only its answers tell
    mark = server.mark()
    server.push_text(GROUP, USER, f"/torrent {torrent.magnet}")
    await server.wait_for("sendMessage", lambda r: r.status == 400
                          and r.params.get("chat_id") == GROUP, since=mark, timeout=LONG)
    await _until(lambda: _moved(stack), "the move to be stored")
    assert [t.name for t in await stack.manager.list(SUPERGROUP)] == [torrent.name]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def _moved(stack: Stack) -> bool:
    return (await stack.manager.chat_moves()).get(GROUP) == SUPERGROUP
