"""Fixtures the manager's unit tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from manager.store import Store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """An opened store on an empty database of each engine (``database_url``)."""
    opened = Store(database_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def pg_store(postgresql_url: str) -> AsyncIterator[Store]:
    """An opened store on an empty database of the session's PostgreSQL server (what
    only several nodes do)."""
    opened = Store(postgresql_url)
    await opened.open()
    yield opened
    await opened.close()
