"""GroupRights with a real Bot against the fake Bot API server and an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot, Chat

from bot.errors import ActionRefused
from bot.rights import ADMINS_TTL, GroupRights
from manager import SourceKind, Torrent, TorrentState
from tests.fakes.telegram_api import FakeTelegramServer

GROUP = -100321
ADDER, ADMIN, MEMBER = 11, 12, 13


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def download(user_id: int = ADDER, chat_id: int = GROUP) -> Torrent:
    return Torrent(id=7, info_hash="ab" * 20, name="x", chat_id=chat_id, user_id=user_id,
                   state=TorrentState.DOWNLOADING, source_kind=SourceKind.MAGNET)


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as fake:
        fake.set_member(GROUP, ADMIN, "administrator")
        fake.set_member(GROUP, MEMBER, "member")
        yield fake


@pytest.fixture
async def bot(server: FakeTelegramServer) -> AsyncIterator[Bot]:
    async with Bot(server.token, base_url=f"{server.url}/bot") as running:
        yield running


async def refused(rights: GroupRights, chat: Chat, user_id: int) -> bool:
    try:
        await rights.check(chat, user_id, download())
    except ActionRefused:
        return True
    return False


async def test_adder_and_admins_may_members_may_not(server: FakeTelegramServer,
                                                    bot: Bot) -> None:
    rights = GroupRights(bot, clock=Clock())
    group = Chat(GROUP, Chat.SUPERGROUP)
    assert not await refused(rights, group, ADDER)
    assert server.count("getChatAdministrators") == 0  # the adder needs no lookup
    assert not await refused(rights, group, ADMIN)
    assert await refused(rights, group, MEMBER)
    assert server.count("getChatAdministrators") == 1


async def test_private_chats_are_never_looked_up(server: FakeTelegramServer, bot: Bot) -> None:
    rights = GroupRights(bot, clock=Clock())
    assert not await refused(rights, Chat(MEMBER, Chat.PRIVATE), MEMBER)
    assert server.count("getChatAdministrators") == 0


async def test_the_admin_list_is_kept_for_the_ttl_then_asked_again(
    server: FakeTelegramServer, bot: Bot,
) -> None:
    clock = Clock()
    rights = GroupRights(bot, clock=clock)
    group = Chat(GROUP, Chat.SUPERGROUP)
    assert await refused(rights, group, MEMBER)
    server.set_member(GROUP, MEMBER, "administrator")  # promoted
    clock.now += ADMINS_TTL - 1
    assert await refused(rights, group, MEMBER)  # not yet seen
    clock.now += 1
    assert not await refused(rights, group, MEMBER)
    assert server.count("getChatAdministrators") == 2


async def test_a_failed_lookup_refuses_and_is_not_remembered(server: FakeTelegramServer,
                                                             bot: Bot) -> None:
    rights = GroupRights(bot, clock=Clock())
    group = Chat(GROUP, Chat.SUPERGROUP)
    server.fail_next("getChatAdministrators", status=500)
    with pytest.raises(ActionRefused, match="Telegram did not say who the admins are"):
        await rights.check(group, ADMIN, download())
    assert not await refused(rights, group, ADMIN)
