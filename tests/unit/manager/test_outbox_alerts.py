"""aria2c alerts the store refuses: kept in order, and a stop that does not wait for ever."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

import manager.delivery.outbox
from manager.delivery.outbox import Outbox
from manager.events import Aria2Down, Event, Publisher
from manager.store import Store


async def test_close_gives_up_on_an_alert_the_store_keeps_refusing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds the database's write lock for the whole test: the alert
    cannot be stored, and closing says so instead of hanging the shutdown."""
    monkeypatch.setattr(manager.delivery.outbox, "_CLOSE_WAIT", 0.2)
    database = tmp_path / "ariabot.db"
    store = Store(f"sqlite:///{database}")
    await store.open()
    holder = sqlite3.connect(database, isolation_level=None, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    published: list[Event] = []
    publisher = Publisher()
    publisher.subscribe(published.append)
    outbox = Outbox(store, publisher)
    try:
        outbox.alert(Aria2Down("aria2c exited with code -9"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with caplog.at_level(logging.ERROR, logger="manager.delivery.outbox"):
            await outbox.close()
        assert loop.time() - started < 2  # _CLOSE_WAIT, not the 5 s busy_timeout or more
        assert published == []  # never published as if it were stored
        assert ("stopping with 1 aria2c alert(s) the database has not taken: aria2c exited "
                "with code -9") in caplog.text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await store.close()
