"""How each engine keeps a table's id sequence: the one place ``db copy`` speaks SQL of its own.

Copied rows keep their ids, and the target must go on *after* the highest id the source ever
gave, not after the highest still stored: a download's id is public (migration 8) and a purged
one must never come back. The engines keep that number differently, and peewee has no
portable way to read or set it:

* SQLite: a table declared ``AUTOINCREMENT`` keeps it in ``sqlite_sequence``; any other table
  gives ``max(id) + 1`` (so does the copy there: there is nothing to continue);
* PostgreSQL: the column's sequence (``pg_get_serial_sequence``), read from the sequence
  itself and moved on with ``setval``.

Other engines are refused (:class:`UnsupportedEngine`) rather than copied with ids that
could be given again.
"""

from __future__ import annotations

import peewee

__all__ = ["UnsupportedEngine", "continue_ids", "engine_of", "highest_id", "keeps_sequence",
           "read_snapshot"]


class UnsupportedEngine(peewee.DatabaseError):
    """An engine whose id sequences this module does not know."""


def engine_of(database: peewee.Database) -> str:
    """``"sqlite"`` or ``"postgresql"``; :class:`UnsupportedEngine` for any other."""
    if isinstance(database, peewee.SqliteDatabase):
        return "sqlite"
    if isinstance(database, peewee.PostgresqlDatabase):
        return "postgresql"
    raise UnsupportedEngine(type(database).__name__)


def read_snapshot(database: peewee.Database) -> None:
    """Make the transaction just begun read one consistent state of every table.

    SQLite's read transaction already is one snapshot; PostgreSQL's default (READ COMMITTED)
    takes a new one per statement, so a writer elsewhere could make the tables disagree.
    Call first thing inside ``database.atomic()``.
    """
    if engine_of(database) == "postgresql":
        database.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def highest_id(database: peewee.Database, table: str) -> int:
    """The highest id ``table`` ever gave (0 if none): its sequence, or its largest id.

    Parameters:
        database: a connected SQLite or PostgreSQL database.
        table: a table whose primary key is an auto-incremented ``id``.
    """
    engine = engine_of(database)
    (largest,) = database.execute_sql(f"SELECT MAX(id) FROM {table}").fetchone()  # noqa: S608 (a table name of the schema)
    kept = 0
    if engine == "sqlite":
        if database.table_exists("sqlite_sequence"):
            row = database.execute_sql(
                "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
            kept = row[0] if row else 0
    else:
        # The sequence's name as PostgreSQL quotes it; a sequence is read like a table.
        (sequence,) = database.execute_sql(
            "SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
        (kept,) = database.execute_sql(
            f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}"  # noqa: S608
        ).fetchone()
    return max(largest or 0, kept or 0)


def keeps_sequence(database: peewee.Database, table: str) -> bool:
    """Whether ``table`` remembers ids beyond its largest row (so :func:`continue_ids` holds).

    True for every PostgreSQL serial column; on SQLite only for an ``AUTOINCREMENT`` table.
    """
    if engine_of(database) == "postgresql":
        return True
    row = database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
        (table,)).fetchone()
    return bool(row) and "AUTOINCREMENT" in row[0].upper()


def continue_ids(database: peewee.Database, table: str, highest: int) -> None:
    """Make ``table``'s next new id ``highest + 1`` or above, where the engine keeps one.

    Call after the rows are copied, inside the copy's transaction. A SQLite table without
    ``AUTOINCREMENT`` gives ``max(id) + 1`` whatever is done here (see :func:`keeps_sequence`).
    """
    if engine_of(database) == "postgresql":
        if highest > 0:
            database.execute_sql("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, true)",
                                 (table, highest))
        return
    if not keeps_sequence(database, table) or highest <= 0:
        return
    database.execute_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
    database.execute_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                         (table, highest))
