"""The allow-list gate with fake updates and an injected clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import ApplicationHandlerStop

from bot.auth import AuthGate
from bot.chatmoves import MovedChats
from bot.config import BotConfig

OWNER = 10
STRANGER = 666
GROUP = -100123


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeMessage:
    replies: list[str] = field(default_factory=list)
    migrate_to_chat_id: int | None = None
    migrate_from_chat_id: int | None = None

    async def reply_text(self, text: str, **_: Any) -> None:
        self.replies.append(text)


@dataclass
class FakeQuery:
    answers: list[tuple[str | None, bool]] = field(default_factory=list)

    async def answer(self, text: str | None = None, show_alert: bool = False) -> None:
        self.answers.append((text, show_alert))


@dataclass
class Who:
    id: int
    type: str = "private"


def chat_of(chat_id: int) -> Who:
    """A chat as Telegram types it: a private chat's id is its user's, groups are negative."""
    return Who(chat_id, "private" if chat_id > 0 else "supergroup")


@dataclass
class FakeUpdate:
    effective_user: Who | None
    effective_chat: Who | None
    effective_message: FakeMessage | None = None
    callback_query: FakeQuery | None = None


def message_from(user: int | None, chat: int | None = None) -> FakeUpdate:
    return FakeUpdate(Who(user) if user is not None else None,
                      chat_of(chat if chat is not None else user or 0), FakeMessage())


def press_from(user: int, chat: int | None = None) -> FakeUpdate:
    return FakeUpdate(Who(user), chat_of(chat or user), FakeMessage(), FakeQuery())


def gate(clock: Clock, users: set[int], chats: set[int] | None = None) -> AuthGate:
    config = BotConfig(token="t", download_dir=Path("/nowhere"),
                       allowed_users=frozenset(users), allowed_chats=frozenset(chats or ()),
                       refusal_interval=600)
    return AuthGate(config, clock)


async def run(auth: AuthGate, update: FakeUpdate) -> bool:
    """True when the gate let the update through."""
    try:
        await auth(update, None)  # type: ignore[arg-type]
    except ApplicationHandlerStop:
        return False
    return True


async def test_allowed_user_passes_silently() -> None:
    auth = gate(Clock(), {OWNER})
    update = message_from(OWNER)
    assert await run(auth, update)
    assert update.effective_message is not None and update.effective_message.replies == []


async def test_stranger_gets_one_refusal_per_interval_with_the_id() -> None:
    clock = Clock()
    auth = gate(clock, {OWNER})
    first, second, later = message_from(STRANGER), message_from(STRANGER), message_from(STRANGER)
    assert not await run(auth, first)
    clock.now += 599
    assert not await run(auth, second)
    clock.now += 1
    assert not await run(auth, later)
    assert first.effective_message is not None and len(first.effective_message.replies) == 1
    assert f"Your Telegram user id is {STRANGER}" in first.effective_message.replies[0]
    assert second.effective_message is not None and second.effective_message.replies == []
    assert later.effective_message is not None and len(later.effective_message.replies) == 1
    assert auth.refusals == 2


async def test_stranger_button_press_is_answered_but_refused() -> None:
    auth = gate(Clock(), {OWNER})
    first, second = press_from(STRANGER), press_from(STRANGER)
    assert not await run(auth, first)
    assert not await run(auth, second)
    assert first.callback_query is not None and second.callback_query is not None
    text, alert = first.callback_query.answers[0]
    assert text is not None and str(STRANGER) in text and alert
    assert second.callback_query.answers == [(None, False)]  # answered, no second refusal
    assert first.effective_message is not None and first.effective_message.replies == []


async def test_allowed_chats_restrict_where_the_owner_is_served() -> None:
    auth = gate(Clock(), {OWNER}, {GROUP})
    assert await run(auth, message_from(OWNER, GROUP))
    private = message_from(OWNER, OWNER)
    assert not await run(auth, private)
    assert private.effective_message is not None
    assert "ARIABOT_ALLOWED_CHATS" in private.effective_message.replies[0]
    assert not await run(auth, message_from(STRANGER, GROUP))


async def test_without_allowed_chats_only_private_chats_are_served() -> None:
    auth = gate(Clock(), {OWNER})
    assert await run(auth, message_from(OWNER, OWNER))
    in_group = message_from(OWNER, GROUP)
    assert not await run(auth, in_group)
    assert in_group.effective_message is not None
    assert in_group.effective_message.replies == [
        f"Sorry, this bot does not work in this chat. The chat id is {GROUP}; the owner can "
        "allow it with ARIABOT_ALLOWED_CHATS."]
    press = press_from(OWNER, GROUP)
    assert not await run(auth, press)


async def test_empty_allow_list_refuses_everyone_and_says_how_to_allow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = gate(Clock(), set())
    with caplog.at_level(logging.INFO, logger="bot.auth"):
        auth.log_startup()
        assert not await run(auth, message_from(OWNER))
    assert "ARIABOT_ALLOWED_USERS is empty" in caplog.text
    assert f"refused Telegram user {OWNER}" in caplog.text


async def test_updates_without_a_user_stop_quietly() -> None:
    auth = gate(Clock(), {OWNER})
    update = message_from(None, GROUP)
    assert not await run(auth, update)
    assert update.effective_message is not None and update.effective_message.replies == []


OLD_GROUP = -4555
NEW_GROUP = -1004555


def service_message(chat: int, *, to: int | None = None, came_from: int | None = None,
                    user: int = STRANGER) -> FakeUpdate:
    """Telegram's service message of a group's upgrade, sent in the old or the new chat."""
    return FakeUpdate(Who(user), chat_of(chat),
                      FakeMessage(migrate_to_chat_id=to, migrate_from_chat_id=came_from))


async def test_an_allowed_groups_upgrade_passes_whoever_did_it_and_its_supergroup_follows(
) -> None:
    moved = MovedChats()
    config = BotConfig(token="t", download_dir=Path("/nowhere"), allowed_users=frozenset({OWNER}),
                       allowed_chats=frozenset({OLD_GROUP}), refusal_interval=600)
    auth = AuthGate(config, Clock(), moved=moved)
    assert not await run(auth, message_from(OWNER, NEW_GROUP))  # not yet known
    for update in (service_message(OLD_GROUP, to=NEW_GROUP),
                   service_message(NEW_GROUP, came_from=OLD_GROUP)):
        assert await run(auth, update)  # the migration handler follows it (and stores it)
        assert update.effective_message is not None
        assert update.effective_message.replies == []
    assert moved.learn(OLD_GROUP, NEW_GROUP)
    assert not moved.learn(OLD_GROUP, NEW_GROUP)  # said once
    assert await run(auth, message_from(OWNER, NEW_GROUP))
    assert not await run(auth, message_from(STRANGER, NEW_GROUP))  # users stay as listed


async def test_an_upgrade_of_a_chat_nobody_allowed_ends_silently_and_lets_nothing_in() -> None:
    moved = MovedChats()
    auth = AuthGate(BotConfig(token="t", download_dir=Path("/nowhere"),
                              allowed_users=frozenset({OWNER}),
                              allowed_chats=frozenset({GROUP})), Clock(), moved=moved)
    update = service_message(NEW_GROUP, came_from=OLD_GROUP, user=OWNER)
    assert not await run(auth, update)
    assert update.effective_message is not None and update.effective_message.replies == []
    moved.learn(OLD_GROUP, NEW_GROUP)  # stored because the news met it: still not allowed
    assert not await run(auth, message_from(OWNER, NEW_GROUP))
    assert moved.current(OLD_GROUP) == NEW_GROUP and moved.current(GROUP) == GROUP
