"""ChatOrderedUpdates: one chat's updates in order, other chats not held (no sleeps)."""

from __future__ import annotations

import asyncio
import datetime as dt

from telegram import Chat, Message, Update

from bot.updates import ChatOrderedUpdates


def _update(update_id: int, chat_id: int) -> Update:
    chat = Chat(chat_id, Chat.PRIVATE)
    return Update(update_id, message=Message(update_id, dt.datetime.now(dt.UTC), chat))


async def test_one_chats_updates_wait_for_each_other_other_chats_do_not() -> None:
    processor = ChatOrderedUpdates()
    gate = asyncio.Event()
    order: list[str] = []

    async def handle(name: str, wait: bool) -> None:
        order.append(f"{name} starts")
        if wait:
            await gate.wait()
        order.append(f"{name} ends")

    first = asyncio.create_task(processor.process_update(_update(1, 1), handle("a1", True)))
    second = asyncio.create_task(processor.process_update(_update(2, 1), handle("a2", False)))
    other = asyncio.create_task(processor.process_update(_update(3, 2), handle("b", False)))
    await other  # chat 2 is done while chat 1's first update still waits
    assert order == ["a1 starts", "b starts", "b ends"]
    gate.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["a1 ends", "a2 starts", "a2 ends"]
