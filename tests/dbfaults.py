"""A database that refuses the store, the same way on SQLite and on PostgreSQL, for the tests
that check what the store does then: another connection holding the write lock, a shorter
wait for it, a trigger that refuses some notices."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from manager.store import Store

__all__ = ["LOCKED", "hold_writes", "refuse_notices", "wait_for_locks"]

LOCKED = r"database is locked|lock timeout"
"""What each engine says when a write waited for a lock too long."""

_TABLES = "downloads, activity, mirrors, notices, chat_views, sent_parts, chat_moves"


@contextmanager
def hold_writes(url: str) -> Iterator[None]:
    """Another connection holds the database's write lock (reads still go through)."""
    if url.startswith("sqlite"):
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None,
                                 timeout=0)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with psycopg.connect(url) as holder:
        holder.execute(f"LOCK TABLE {_TABLES} IN EXCLUSIVE MODE")  # allows reads only
        try:
            yield
        finally:
            holder.rollback()


async def wait_for_locks(store: Store, milliseconds: int) -> None:
    """Make the store wait at most this long for another connection's lock."""
    sql = (f"PRAGMA busy_timeout = {milliseconds}" if store.url.startswith("sqlite")
           else f"SET lock_timeout = {milliseconds}")
    await store.database.run(lambda: store.database.db.execute_sql(sql))


async def refuse_notices(store: Store, download_id: int | None = None) -> None:
    """A trigger makes the database refuse (an integrity error, "refused") every insert of a
    notice, or only those of ``download_id``."""
    if store.url.startswith("sqlite"):
        when = f"WHEN NEW.download_id = {download_id} " if download_id is not None else ""
        statements = [f"CREATE TRIGGER refuse AFTER INSERT ON notices {when}"
                      "BEGIN SELECT RAISE(ABORT, 'refused'); END"]
    else:
        when = f"WHEN (NEW.download_id = {download_id}) " if download_id is not None else ""
        statements = [
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$",
            f"CREATE TRIGGER refuse AFTER INSERT ON notices FOR EACH ROW {when}"
            "EXECUTE FUNCTION refuse()",
        ]
    for sql in statements:
        await store.database.run(lambda sql=sql: store.database.db.execute_sql(sql))
