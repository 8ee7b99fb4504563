"""The daily retention job: purge at start, then once per interval, surviving failures."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from supervisor.retention import RETENTION_INTERVAL, run_retention


class FakeManager:
    def __init__(self, results: list[int | Exception]) -> None:
        self.results = results
        self.calls: list[tuple[timedelta, bool]] = []

    async def purge_finished(self, older_than: timedelta, *, delete_files: bool = False) -> int:
        self.calls.append((older_than, delete_files))
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


async def test_purges_at_start_then_every_interval_and_logs_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = FakeManager([2, RuntimeError("database is locked"), 0])
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            raise asyncio.CancelledError

    caplog.set_level(logging.INFO, "supervisor.retention")
    with pytest.raises(asyncio.CancelledError):
        await run_retention(manager, 30, sleep=sleep)
    assert manager.calls == [(timedelta(days=30), False)] * 3  # files are never deleted
    assert pauses == [RETENTION_INTERVAL] * 3
    assert "2 finished download(s) older than 30 days" in caplog.text
    assert "daily purge of finished downloads failed" in caplog.text


async def test_zero_days_is_not_a_retention() -> None:
    with pytest.raises(ValueError, match="above 0"):
        await run_retention(FakeManager([]), 0)
