"""The store on a PostgreSQL server that restarts or goes away: the real server of
tests/pgserver.py, restarted (``pg_ctl restart``) or stopped under an open store."""

from __future__ import annotations

import pytest

from manager.errors import StoreError
from manager.store import Store
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.postgresql

HASH = "a" * 40


async def _add(store: Store, name: str, info_hash: str = HASH) -> int:
    record = await store.downloads.create(info_hash=info_hash, chat_id=1, user_id=2, name=name,
                                          source_kind="magnet", source=b"magnet:?", directory="/d",
                                          state="downloading")
    return record.id


async def test_after_a_server_restart_the_next_read_and_write_work(
        postgresql_server: PostgresServer, postgresql_url: str) -> None:
    store = Store(postgresql_url)
    await store.open()
    try:
        first = await _add(store, "before")
        postgresql_server.restart()
        # The connection the server dropped is found at the first statement (a SELECT, or
        # the BEGIN of a write): nothing of the call was written, so it is made again.
        assert [r.name for r in await store.downloads.list()] == ["before"]
        postgresql_server.restart()
        second = await _add(store, "after", "b" * 40)
        assert [r.id for r in await store.downloads.list()] == [second, first]
    finally:
        await store.close()


async def test_while_the_server_is_down_calls_fail_as_unavailable_and_work_again_after(
        postgresql_server: PostgresServer, postgresql_url: str) -> None:
    store = Store(postgresql_url)
    await store.open()
    try:
        first = await _add(store, "before")
        with postgresql_server.outage():
            for _ in range(2):  # each call tries a new connection, refused
                with pytest.raises(StoreError, match="the database is unavailable"):
                    await store.downloads.list()
            with pytest.raises(StoreError, match="the database is unavailable"):
                await _add(store, "refused", "c" * 40)
        assert [r.id for r in await store.downloads.list()] == [first]  # nothing half-written
        await store.downloads.update(first, state="complete")
        assert (await store.downloads.get(first)).state == "complete"
    finally:
        await store.close()


async def test_a_lone_write_that_lost_its_connection_is_not_made_again(
        postgresql_server: PostgresServer, postgresql_url: str) -> None:
    """A statement sent outside a transaction may have committed before the answer was
    lost: it fails as unavailable, and only the next call uses a new connection."""
    store = Store(postgresql_url)
    await store.open()
    try:
        first = await _add(store, "before")
        postgresql_server.restart()
        table = store.database.tables.download
        with pytest.raises(StoreError, match="the connection to the server was lost"):
            await store.database.run(lambda: table.update(name="once").where(
                table.id == first).execute())
        assert (await store.downloads.get(first)).name == "before"
    finally:
        await store.close()
