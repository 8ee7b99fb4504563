"""aria2c alerts the store refuses: kept in order, and a stop that does not wait for ever."""

from __future__ import annotations

import asyncio
import logging

import pytest

import manager.outbox
from manager.events import Aria2Down, Event, Publisher
from manager.outbox import Outbox
from manager.store import Store
from tests.dbfaults import hold_writes


async def test_close_gives_up_on_an_alert_the_store_keeps_refusing(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds the database's write lock for the whole test: the alert
    cannot be stored, and closing says so instead of hanging the shutdown."""
    monkeypatch.setattr(manager.outbox, "_CLOSE_WAIT", 0.2)
    store = Store(database_url)
    await store.open()
    published: list[Event] = []
    publisher = Publisher()
    publisher.subscribe(published.append)
    outbox = Outbox(store, publisher)
    try:
        with hold_writes(database_url):
            outbox.alert(Aria2Down("aria2c exited with code -9"))
            loop = asyncio.get_running_loop()
            started = loop.time()
            with caplog.at_level(logging.ERROR, logger="manager.outbox"):
                await outbox.close()
            assert loop.time() - started < 2  # _CLOSE_WAIT, not the 5 s lock wait or more
    finally:
        await store.close()
    assert published == []  # never published as if it were stored
    assert ("stopping with 1 aria2c alert(s) the database has not taken: aria2c exited "
            "with code -9") in caplog.text
