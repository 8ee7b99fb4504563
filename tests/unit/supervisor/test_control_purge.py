"""The control socket's "purge" operation: what it passes to the manager, what it refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from supervisor.control import ControlClient, ControlServer


class FakeManager:
    def __init__(self) -> None:
        self.calls: list[tuple[timedelta, bool]] = []

    async def purge_finished(self, older_than: timedelta, *, delete_files: bool = False) -> int:
        self.calls.append((older_than, delete_files))
        return 4


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FakeManager, ControlClient]]:
    manager = FakeManager()
    server = ControlServer(manager, tmp_path / "control.sock")  # type: ignore[arg-type]
    await server.start()
    try:
        yield manager, ControlClient(tmp_path / "control.sock", timeout=10)
    finally:
        await server.stop()


async def ask(client: ControlClient, **fields: Any) -> dict[str, Any]:
    return await asyncio.to_thread(client.request, "purge", **fields)


async def test_purge_passes_days_and_the_files_choice(served) -> None:
    manager, client = served
    assert await ask(client, older_than_days=2.5) == {"ok": True, "purged": 4}
    assert await ask(client, older_than_days=0, delete_files=True) == {"ok": True, "purged": 4}
    assert manager.calls == [(timedelta(days=2.5), False), (timedelta(0), True)]


@pytest.mark.parametrize("fields", [
    {}, {"older_than_days": -1}, {"older_than_days": "7"}, {"older_than_days": True},
    {"older_than_days": float("nan")}, {"older_than_days": float("inf")},
    {"older_than_days": 40000}, {"older_than_days": 7, "delete_files": "yes"},
])
async def test_bad_purge_requests_are_refused(served, fields: dict[str, Any]) -> None:
    manager, client = served
    answer = await ask(client, **fields)
    assert answer["ok"] is False and answer["error"].startswith("bad request: ")
    assert manager.calls == []
