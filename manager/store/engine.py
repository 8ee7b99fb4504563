"""What differs between the store's two engines, SQLite and PostgreSQL, in one place.

Every query of the store is written once, with peewee, and runs on both. What cannot be
written once is here, each piece with the reason it differs:

- **Connecting** (:meth:`Engine.connect`): SQLite needs its PRAGMAs on every connection (WAL,
  so that readers never wait for the writer; foreign keys; a ``busy_timeout`` instead of
  failing at once when another process writes). PostgreSQL has none of these; its URL may
  carry a password, percent-encoded when it holds ``@`` or ``/`` (peewee leaves it encoded
  unless told). Only ``sqlite://`` and ``postgresql://`` are supported: nothing else is
  tested.
- **Counting statements** (:attr:`Engine.statements`): the benchmarks and the poll's cost
  tests count what reaches the database. SQLite reports every statement it runs to a trace
  callback (one per row of an ``executemany``); psycopg has no such hook, so a cursor class
  counts the same way: each ``execute`` one (peewee sends ``BEGIN`` and ``COMMIT`` as
  statements on both), each ``executemany`` one per row.
- **Waiting for a lock**: SQLite waits ``busy_timeout`` (5 s) for another writer and then
  fails; PostgreSQL would wait for ever, holding the store's one thread: its
  ``lock_timeout`` is set to the same 5 s (an error of the ``OperationalError`` family).
- **A connection lost** (:meth:`Engine.reconnecting`): a SQLite file never goes away, but a
  PostgreSQL server restarts or becomes unreachable, and a psycopg connection it dropped stays
  closed for ever (peewee still holds it as open). A call that finds it lost closes it, so
  the next statement connects anew (peewee's ``autoconnect``; the counting cursor and the
  ``lock_timeout`` are connection parameters, so a new connection has them too). The call is
  made once more at once only when nothing of it can have been written: its first statement
  failed and that was a ``BEGIN`` or a ``SELECT`` (a lone write may have committed before the
  answer was lost: it is never repeated blindly; its caller gets a StoreError as for any
  other refused write). Connecting gives up after ``connect_timeout`` (5 s) instead of
  holding the store's thread while a host does not answer.
- **"The database is unavailable"** (:data:`UNAVAILABLE`): peewee turns a driver's error into
  its own only around the statements it runs itself; the poll's raw ``executemany`` raises the
  driver's (``sqlite3.OperationalError``: locked, read-only, disk I/O; ``psycopg``'s: the
  server went away). Both must read as the same :class:`~manager.errors.StoreError`.
- **Ids never given again** (:meth:`Engine.keep_ids_unique`, migration 8): SQLite gives a
  plain ``INTEGER PRIMARY KEY`` row ``max(id) + 1``, so purging the newest row freed its id,
  and only a table rebuilt with ``AUTOINCREMENT`` keeps the largest id ever used. On
  PostgreSQL ``SERIAL`` draws from a sequence that never goes back: nothing to do.
- **Copying ids** (:meth:`Engine.highest_id`, :meth:`Engine.continue_ids`, ``ariabot db
  copy``): copied rows keep their ids, and the target must go on after the highest id the
  source ever *gave*, not the highest still stored (a purged download's id is public and
  must not come back). SQLite keeps that number in ``sqlite_sequence`` for an
  ``AUTOINCREMENT`` table (any other table gives ``max(id) + 1``, whatever is done);
  PostgreSQL in the column's sequence, read like a table and moved with ``setval``. peewee
  has no portable way to read or set either. The copy also reads one snapshot of every
  table (:meth:`Engine.read_snapshot`): PostgreSQL's READ COMMITTED takes one per statement.
- **The nodes' clock and their joining** (:meth:`Engine.clock`, :meth:`Engine.joining`): the
  nodes sharing a database compare heartbeats with the database's clock, not with theirs
  (which may differ by minutes). SQLite has ``julianday('now')``; PostgreSQL
  ``clock_timestamp()`` (``now()`` would stay at the transaction's start). Two nodes joining
  at once must not both see themselves alone: SQLite's ``BEGIN IMMEDIATE`` takes the write
  lock before the first read; PostgreSQL's READ COMMITTED would let both read, so a
  transaction-scoped advisory lock puts the joins in a row.

Placeholders need no seam (peewee's ``Database.param``: ``?`` or ``%s``), nor do
``INSERT … ON CONFLICT`` (peewee writes each dialect), booleans, bytes and naive UTC
datetimes (peewee's fields convert them), nor isolation: each store has ONE connection used
by ONE thread (:mod:`manager.store.dbthread`) and one ariabot per data dir, so no two of its
transactions ever overlap; SQLite's serialised writes and PostgreSQL's READ COMMITTED give
the same results for it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import peewee
from playhouse.db_url import connect
from playhouse.sqlite_ext import AutoIncrementField

try:
    import psycopg
except ImportError:  # installed without the `postgresql` extra: SQLite only
    psycopg = None

__all__ = ["UNAVAILABLE", "Engine", "engine_for", "engine_of"]

T = TypeVar("T")

UNAVAILABLE: tuple[type[Exception], ...] = (
    peewee.OperationalError, sqlite3.OperationalError,
    *((psycopg.OperationalError,) if psycopg is not None else ()))
"""Errors that mean the database cannot serve now (locked, gone, read-only), whichever way
the statement was sent: the store says so as a StoreError instead of failing."""

_LOST_SIGNS: tuple[type[Exception], ...] = (
    peewee.OperationalError, peewee.InterfaceError,
    *((psycopg.OperationalError, psycopg.InterfaceError) if psycopg is not None else ()))
"""Errors a lost PostgreSQL connection shows as (the server's "terminating connection",
then psycopg's "the connection is closed"; peewee's own when it wrapped them)."""

_SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "busy_timeout": 5000,
}

_POSTGRES_OPTIONS = f"-c lock_timeout={_SQLITE_PRAGMAS['busy_timeout']}"
"""A write that waits for another's lock fails after the same 5 s on both engines, as a
StoreError, instead of holding the store's one thread for ever."""

_CONNECT_TIMEOUT_S = 5
"""Seconds a new PostgreSQL connection may take before the call fails as unavailable."""

_JOIN_LOCK = 0x61726961626F74
"""The advisory lock key of joining (``ariabot`` in ASCII): one number for every node."""

_SCHEMA_LOCK = _JOIN_LOCK - 1
"""The advisory lock key of creating or migrating the schema."""

_HARMLESS_FIRST = frozenset({"BEGIN", "SELECT"})
"""First statements of a call that write nothing: the call may be made again when the
connection was found lost at that statement."""


_TAKE_TURNS = """
INSERT INTO paces AS p (key, due, spacing, tolerance, taken_at)
SELECT v.key, c.now + v.spacing, v.spacing, v.tolerance, c.now
FROM (SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS now) AS c,
     unnest(%s::text[], %s::float8[], %s::float8[]) AS v(key, spacing, tolerance)
ORDER BY v.key
ON CONFLICT (key) DO UPDATE
SET due = GREATEST(p.due, EXCLUDED.taken_at) + EXCLUDED.spacing,
    spacing = EXCLUDED.spacing, tolerance = EXCLUDED.tolerance, taken_at = EXCLUDED.taken_at
RETURNING GREATEST(0, due - spacing - tolerance - taken_at)
"""
"""One turn of each pace (:mod:`manager.store.paces`): the new ``due`` is the later of the
old one and now, plus the spacing; the turn comes at that less the spacing and the
tolerance, and now at the earliest. Rows are locked in the order of their keys."""


class Engine:
    """The engine-specific parts of one store's database (see the module's docstring)."""

    name = ""
    shared = False
    """Several nodes (machines) may run on one database of this engine at once."""

    def __init__(self) -> None:
        self.statements = 0
        """SQL statements sent so far: how benchmarks and tests see the write cost."""

    def connect(self, url: str) -> peewee.Database:
        """The database of ``url``, connected, with the statement counter attached."""
        raise NotImplementedError

    def keep_ids_unique(self, database: peewee.Database,
                        columns: Callable[[], dict[str, peewee.Field]]) -> None:
        """Migration 8: make ``downloads.id`` never give an id again after its row went
        (``columns``: migration 1's other columns, for a table rebuilt with them)."""
        raise NotImplementedError

    def highest_id(self, database: peewee.Database, table: str) -> int:
        """The highest id ``table`` ever gave (0 if none): its sequence, or its largest id.

        Parameters:
            database: a connected database of this engine.
            table: a table whose primary key is an auto-incremented ``id``.
        """
        (largest,) = database.execute_sql(
            f"SELECT MAX(id) FROM {table}").fetchone()  # noqa: S608 (a table of the schema)
        return max(largest or 0, self._kept_id(database, table))

    def _kept_id(self, database: peewee.Database, table: str) -> int:
        raise NotImplementedError

    def keeps_sequence(self, database: peewee.Database, table: str) -> bool:
        """Whether ``table`` remembers ids beyond its largest row (so
        :meth:`continue_ids` holds for it)."""
        raise NotImplementedError

    def continue_ids(self, database: peewee.Database, table: str, highest: int) -> None:
        """Make ``table``'s next new id ``highest + 1`` or above, where it keeps a sequence
        (:meth:`keeps_sequence`); inside the copy's transaction, after its rows."""
        raise NotImplementedError

    def read_snapshot(self, database: peewee.Database) -> None:
        """Make the transaction just begun read one consistent state of every table (first
        thing inside ``database.atomic()``). SQLite's read transaction already is one."""

    def clock(self, database: peewee.Database) -> float:
        """The database server's time, in seconds since 1970 (see the module's docstring)."""
        raise NotImplementedError

    def joining(self, database: peewee.Database) -> AbstractContextManager[Any]:
        """A transaction in which one node at a time reads and writes the nodes table."""
        raise NotImplementedError

    def take_turns(self, database: peewee.Database,
                   paces: Sequence[tuple[str, float, float]]) -> float:
        """Take one turn of each shared pace (key, spacing, tolerance: see
        :mod:`manager.store.paces`); the seconds to wait before using them. Only on an
        engine nodes share: SQLite has no other node to share a pace with."""
        raise NotImplementedError

    def announce(self, database: peewee.Database, channel: str, payload: str = "") -> None:
        """Inside a write's transaction: tell the other nodes' listeners of ``channel`` when
        it commits (PostgreSQL's ``NOTIFY``; one per transaction however often the same is
        said). SQLite has no other node to tell."""

    def migrating(self, database: peewee.Database) -> AbstractContextManager[Any]:
        """The schema's transaction (:func:`~manager.store.migrations.upgrade`): processes
        that open one database at once create or migrate it one at a time; each later one
        finds it done."""
        raise NotImplementedError

    def node_epoch(self, database: peewee.Database, name: str) -> int | None:
        """Node ``name``'s epoch (None when no such node), read inside a write transaction
        after its writes, so that no join changes it before the transaction ends: a join's
        failover either waits for this transaction or is seen by it. SQLite's writer
        already excludes every other; PostgreSQL's read takes a share lock on the row."""
        row = database.execute_sql(
            f'SELECT "epoch" FROM "nodes" WHERE "name" = {database.param}'  # noqa: S608
            f"{self._held_row}", (name,)).fetchone()
        return None if row is None else int(row[0])

    _held_row = ""
    """What :meth:`node_epoch`'s read adds to lock the row it reads."""

    def reconnecting(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function`` (on the store's thread); a connection it finds lost is closed so
        that the next statement opens a new one (see the module's docstring). SQLite's never
        is: it runs ``function`` once."""
        return function(*args, **kwargs)

    def _count(self, statements: int = 1, verb: str = "") -> None:
        self.statements += statements


class SqliteEngine(Engine):
    """SQLite: a file in the data dir (WAL), the default."""

    name = "sqlite"

    def connect(self, url: str) -> peewee.Database:
        database = connect(url, pragmas=_SQLITE_PRAGMAS)
        database.connect(reuse_if_open=True)
        connection = database.connection()
        if isinstance(connection, sqlite3.Connection):
            connection.set_trace_callback(lambda _sql: self._count())
        return database

    def clock(self, database: peewee.Database) -> float:
        (now,) = database.execute_sql(
            "SELECT (julianday('now') - 2440587.5) * 86400.0").fetchone()
        return now

    def joining(self, database: peewee.Database) -> AbstractContextManager[Any]:
        return database.atomic(lock_type="IMMEDIATE")

    def migrating(self, database: peewee.Database) -> AbstractContextManager[Any]:
        # The write lock from the start: a transaction that read first and wrote after
        # another's write would fail at once (its snapshot is stale), not wait.
        return database.atomic(lock_type="IMMEDIATE")

    def keep_ids_unique(self, database: peewee.Database,
                        columns: Callable[[], dict[str, peewee.Field]]) -> None:
        """Rebuild ``downloads`` with ``AUTOINCREMENT`` by SQLite's documented procedure
        (https://sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema
        Changes"), inside :func:`~manager.store.migrations.upgrade`'s transaction:

        1. ``PRAGMA foreign_keys`` cannot change inside a transaction; no table has a foreign
           key to ``downloads`` (``download_id`` columns are plain integers), so dropping it
           deletes nothing elsewhere, and step 10 checks that.
        3. remember the table's indexes (those on its columns) and triggers; 4. create the
        new table (a frozen copy of migration 1's columns, ``id`` with AUTOINCREMENT);
        5. copy the rows; 6. drop the old table; 7. rename the new one; 8. recreate the
        indexes and triggers (there are no views); 10. ``PRAGMA foreign_key_check``.

        The ids already purged before are recovered where they are still recorded (the
        activity log, notices, mirrors, sent parts): the sequence starts above all of them.
        """
        recorded = ["SELECT MAX(id) AS id FROM downloads"] + [
            f"SELECT MAX(download_id) FROM {table}"  # noqa: S608 (constant names)
            for table in ("activity", "notices", "mirrors", "sent_parts")]
        if database.table_exists("sqlite_sequence"):  # an ariabot that had this version once
            recorded.append("SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'downloads'")
        (highest,) = database.execute_sql(
            f"SELECT MAX(id) FROM ({' UNION ALL '.join(recorded)})").fetchone()  # noqa: S608
        frozen = type("FrozenDownload", (peewee.Model,), {
            "id": AutoIncrementField(), **columns(),
            "Meta": type("Meta", (), {"table_name": "downloads_new"})})
        # Only what fits the rebuilt table: an index on a later column (a test's database
        # turned back to an earlier version) would be made on a string constant, as SQLite
        # reads an unknown "name", and break the schema once that column is added again.
        known = {field.column_name for field in frozen._meta.sorted_fields}
        kept = [sql for (kind, name, sql) in database.execute_sql(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'downloads' "
            "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name")
            if kind == "trigger" or {column for (_, _, column) in database.execute_sql(
                f'PRAGMA index_info("{name}")')} <= known]
        database.bind([frozen])
        database.create_tables([frozen])
        fields = frozen._meta.sorted_fields
        old = peewee.Table("downloads")
        rows = old.select(*(peewee.Column(old, field.column_name) for field in fields))
        frozen.insert_from(rows, fields).execute(database)
        database.execute_sql("DROP TABLE downloads")
        database.execute_sql("ALTER TABLE downloads_new RENAME TO downloads")
        for sql in kept:
            database.execute_sql(sql)
        if database.execute_sql("PRAGMA foreign_key_check").fetchall():
            raise peewee.IntegrityError("rebuilding downloads broke a foreign key")
        database.execute_sql("DELETE FROM sqlite_sequence WHERE name = 'downloads'")
        if highest is not None:
            database.execute_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('downloads', ?)", (highest,))

    def _kept_id(self, database: peewee.Database, table: str) -> int:
        if not database.table_exists("sqlite_sequence"):
            return 0
        row = database.execute_sql(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        return row[0] if row else 0

    def keeps_sequence(self, database: peewee.Database, table: str) -> bool:
        """Only a table declared ``AUTOINCREMENT``."""
        row = database.execute_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
            (table,)).fetchone()
        return bool(row) and "AUTOINCREMENT" in row[0].upper()

    def continue_ids(self, database: peewee.Database, table: str, highest: int) -> None:
        if highest <= 0 or not self.keeps_sequence(database, table):
            return
        database.execute_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        database.execute_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                             (table, highest))


class PostgresEngine(Engine):
    """PostgreSQL through psycopg 3 (``postgresql://user:password@host:port/database``)."""

    name = "postgresql"
    shared = True
    _held_row = " FOR SHARE"

    def __init__(self) -> None:
        super().__init__()
        self._database: peewee.Database | None = None
        self._last_verb = ""
        """The first word of the last statement sent (BEGIN, SELECT, INSERT, ...): when one
        statement of a call was sent, its first."""

    def connect(self, url: str) -> peewee.Database:
        if psycopg is None:
            raise peewee.ImproperlyConfigured(
                "PostgreSQL needs psycopg 3: pip install 'ariabot[postgresql]'")
        # peewee would take psycopg2 instead when both are installed. Every connection it
        # opens, the first and those after a lost one, gets these parameters.
        database = connect(url, unquote_user=True, unquote_password=True,
                           prefer_psycopg3=True, options=_POSTGRES_OPTIONS,
                           connect_timeout=_CONNECT_TIMEOUT_S,
                           cursor_factory=_counting_cursor(self._count))
        database.connect(reuse_if_open=True)
        self._database = database
        return database

    def _count(self, statements: int = 1, verb: str = "") -> None:
        super()._count(statements)
        self._last_verb = verb

    def reconnecting(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function``; when the server dropped the connection, close it, and make the
        call once more on a new one when its first statement (a BEGIN or SELECT) is where it
        failed.

        Raises:
            peewee.OperationalError: the connection was lost and the call could not be made
                again (or failed again); a StoreError for the store's callers.
        """
        sent_before = self.statements
        try:
            return function(*args, **kwargs)
        except _LOST_SIGNS as error:
            if not self._drop_lost_connection():
                raise
            sent = self.statements - sent_before
            if sent != 1 or self._last_verb not in _HARMLESS_FIRST:
                raise peewee.OperationalError(
                    f"the connection to the server was lost: {_one_line(error)}") from None
        return function(*args, **kwargs)

    def _drop_lost_connection(self) -> bool:
        """Close the connection if the server dropped it (psycopg says it is closed or
        broken); whether it did."""
        database = self._database
        if database is None or database.is_closed():
            return False
        connection = database.connection()  # open: peewee hands it back as it is
        if not (connection.closed or connection.broken):
            return False
        try:
            database.close()
        except peewee.PeeweeException:
            database.dispose()  # peewee forgets it whatever state it was left in
        return True

    def clock(self, database: peewee.Database) -> float:
        (now,) = database.execute_sql(
            "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8").fetchone()
        return now

    @contextlib.contextmanager
    def joining(self, database: peewee.Database) -> Iterator[None]:
        with database.atomic():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_JOIN_LOCK,))
            yield

    @contextlib.contextmanager
    def migrating(self, database: peewee.Database) -> Iterator[None]:
        with database.atomic():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            yield

    def announce(self, database: peewee.Database, channel: str, payload: str = "") -> None:
        database.execute_sql("SELECT pg_notify(%s, %s)", (channel, payload))

    def take_turns(self, database: peewee.Database,
                   paces: Sequence[tuple[str, float, float]]) -> float:
        if not paces:
            return 0.0
        keys, spacings, tolerances = (list(column) for column in zip(*paces, strict=True))
        with database.atomic():
            waits = database.execute_sql(_TAKE_TURNS, (keys, spacings, tolerances)).fetchall()
        return max(float(wait) for (wait,) in waits)

    def keep_ids_unique(self, database: peewee.Database,
                        columns: Callable[[], dict[str, peewee.Field]]) -> None:
        """Nothing: ``SERIAL``'s sequence never gives a value twice."""

    def _kept_id(self, database: peewee.Database, table: str) -> int:
        # The sequence's name as PostgreSQL quotes it; a sequence is read like a table.
        (sequence,) = database.execute_sql(
            "SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
        (kept,) = database.execute_sql(
            f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}"  # noqa: S608
        ).fetchone()
        return kept

    def keeps_sequence(self, database: peewee.Database, table: str) -> bool:
        """Every ``SERIAL`` column."""
        return True

    def continue_ids(self, database: peewee.Database, table: str, highest: int) -> None:
        if highest > 0:
            database.execute_sql("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, true)",
                                 (table, highest))

    def read_snapshot(self, database: peewee.Database) -> None:
        database.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def _counting_cursor(count: Callable[[int, str], None]) -> type:
    """A psycopg cursor class that counts statements as SQLite's trace callback does."""

    class CountingCursor(psycopg.Cursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            count(1, _verb(query))
            return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            rows = list(params_seq)
            count(len(rows), _verb(query))
            return super().executemany(query, rows, **kwargs)

    return CountingCursor


def _verb(query: Any) -> str:
    """The first word of a statement, upper case ("" for a composed one)."""
    words = query.split(None, 1) if isinstance(query, str) else []
    return words[0].upper() if words else ""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


_ENGINES: dict[str, type[Engine]] = {
    "sqlite": SqliteEngine,
    "postgres": PostgresEngine,
    "postgresql": PostgresEngine,
}


def engine_for(url: str) -> Engine:
    """A new :class:`Engine` for a database URL.

    Raises:
        ValueError: the URL names an engine other than SQLite or PostgreSQL.
    """
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _ENGINES:
        raise ValueError(f"{scheme}:// is not supported: use sqlite:// or postgresql://")
    return _ENGINES[scheme]()


def engine_of(database: peewee.Database) -> Engine:
    """The engine of an open database (for the migrations, which get the database only)."""
    if isinstance(database, peewee.PostgresqlDatabase):
        return PostgresEngine()
    return SqliteEngine()
