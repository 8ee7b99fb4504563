"""Copying the whole store into another database (``ariabot db copy``), engine to engine.

The target gets the schema of this ariabot (:func:`~manager.store.migrations.upgrade`, the same
migrations a first start would run), then every table's rows with their ids, a batch at a
time (a store of 100,000 downloads never sits in memory), then id sequences that go on after
the highest id the source ever gave (:mod:`manager.store.engine`). Row counts are compared table
by table before the one transaction on the target commits: a copy is all there or not at all.

A target that already holds rows is refused before anything is written: copying into a live
store would mix two histories of ids. A password in a URL never appears in a message
(:func:`masked_url`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import peewee
from playhouse.db_url import parse

from manager.errors import StoreError
from manager.store.engine import engine_for, engine_of
from manager.store.migrations import SCHEMA_VERSION, upgrade
from manager.store.tables import Tables, bind_tables

__all__ = [
    "BATCH_ROWS",
    "CopyFailed",
    "CopyRefused",
    "CopyReport",
    "TableCopy",
    "copy_store",
    "masked_url",
]

BATCH_ROWS = 500
"""Rows read and written at a time. A download row can carry a .torrent file (up to 10 MB,
usually tens of KB), so a batch is kept modest."""

_MASK = "********"

_PASSWORD_KEYS = ("password", "passwd")
"""URL parameters that carry a password (playhouse.db_url passes them to the driver)."""


class CopyRefused(StoreError):
    """The copy was not started: nothing was written to the target (the message says why)."""


class CopyFailed(StoreError):
    """The copy broke off or did not match; its transaction was rolled back."""


@dataclass(frozen=True)
class TableCopy:
    """One table as copied: rows on each side (the same, or the copy fails) and the next id."""

    table: str
    source_rows: int
    target_rows: int
    next_id: int | None
    """The id the target gives its next new row; None for a table keyed by something else."""


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_store` did."""

    schema_version: int
    migrated_from: int | None
    """The source's version before this copy migrated it, when it was older."""
    tables: tuple[TableCopy, ...]

    @property
    def rows(self) -> int:
        """Rows copied, all tables together."""
        return sum(table.target_rows for table in self.tables)


def masked_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` parameter) masked;
    the rest as written."""
    parts = urlsplit(url)
    masked = url
    if parts.password:
        user, _, host = parts.netloc.rpartition("@")
        masked = masked.replace(parts.netloc, f"{user.partition(':')[0]}:{_MASK}@{host}", 1)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(key in _PASSWORD_KEYS for key, _ in pairs):
        query = urlencode([(key, _MASK if key in _PASSWORD_KEYS else value)
                           for key, value in pairs], safe="*")
        masked = masked.replace(f"?{parts.query}", f"?{query}", 1)
    return masked


def _passwords(url: str) -> list[str]:
    """Every password written in ``url``, as typed and as the driver receives it."""
    parts = urlsplit(url)
    found = [value for key, value in parse_qsl(parts.query) if key in _PASSWORD_KEYS]
    if parts.password:
        found.append(parts.password)
        found.append(parts.netloc.rpartition("@")[0].partition(":")[2])  # still %-encoded
    return [value for value in found if value]


def _one_line(error: BaseException, url: str) -> str:
    """A driver's message on one line, with no password of ``url`` in it."""
    text = " ".join(str(error).split()) or type(error).__name__
    for password in sorted(_passwords(url), key=len, reverse=True):
        text = text.replace(password, _MASK)
    return text


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another engine or an in-memory database)."""
    if not urlsplit(url).scheme.startswith("sqlite"):
        return None
    name = parse(url).get("database", "")
    return Path(name) if name and name != ":memory:" else None


_NOT_DATA = frozenset({"schema_version", "node", "node_command", "pace"})
"""Tables that are not copied: the target's own schema writes its version, the nodes are
the processes running on a database (each joins the target at its next start), and their
commands and paces live seconds (an asker waits for the answer), not data."""


def _data_tables(tables: Tables) -> list[type[peewee.Model]]:
    """Every table of the store but :data:`_NOT_DATA`."""
    return [getattr(tables, f.name) for f in fields(Tables) if f.name not in _NOT_DATA]


def _batches(model: type[peewee.Model]) -> Iterator[list[tuple]]:
    """``model``'s rows in primary-key order, :data:`BATCH_ROWS` at a time (keyset paging:
    each batch starts after the last key read, so no engine keeps a cursor open)."""
    key = model._meta.primary_key
    columns = model._meta.sorted_fields
    place = columns.index(key)
    last = None
    while True:
        query = model.select(*columns).order_by(key).limit(BATCH_ROWS)
        if last is not None:
            query = query.where(key > last)
        rows = list(query.tuples())
        if not rows:
            return
        yield rows
        last = rows[-1][place]


def _insert(model: type[peewee.Model], rows: list[tuple]) -> None:
    """Insert ``rows`` (all of ``model``'s fields, as Python values) with ONE prepared
    statement run for every row: peewee renders the statement (its placeholders, its
    quoting) and each field converts its values, but building a peewee query of the whole
    batch cost four fifths of a copy's time (80 of 98 s for 200,000 rows)."""
    columns = model._meta.sorted_fields
    sql, _params = model.insert_many(rows[:1], fields=columns).returning().sql()
    values = [[field.db_value(value) for field, value in zip(columns, row, strict=True)]
              for row in rows]
    # peewee turns a driver's error into its own only around the statements it runs itself.
    with peewee.__exception_wrapper__:
        model._meta.database.cursor().executemany(sql, values)


def _count(model: type[peewee.Model]) -> int:
    """``model``'s rows, whatever columns its table has (an older schema lacks some)."""
    return model.select(peewee.fn.COUNT(peewee.SQL("*"))).scalar()


def _refuse_non_empty(tables: Tables, url: str) -> None:
    database = tables.download._meta.database
    counted = [(model._meta.table_name, _count(model)) for model in _data_tables(tables)
               if database.table_exists(model._meta.table_name)]
    holding = [f"{table} ({rows} row{'' if rows == 1 else 's'})" for table, rows in counted
               if rows]
    if holding:
        raise CopyRefused(f"the target {masked_url(url)} is not empty: it has "
                          f"{', '.join(holding)}; copy only into an empty database")


def _same_store(source_url: str, target_url: str) -> bool:
    source, target = _sqlite_file(source_url), _sqlite_file(target_url)
    if source is not None and target is not None:
        return source.resolve() == target.resolve()
    return source_url == target_url


def _copy_table(source: type[peewee.Model], target: type[peewee.Model]) -> TableCopy:
    """Copy one table's rows, continue its ids, and compare the counts."""
    database, table = target._meta.database, target._meta.table_name
    for rows in _batches(source):
        _insert(target, rows)
    source_rows, target_rows = _count(source), _count(target)
    if source_rows != target_rows:
        raise CopyFailed(f"{target_rows} rows written of {source_rows}")
    if not isinstance(target._meta.primary_key, peewee.AutoField):
        return TableCopy(table, source_rows, target_rows, None)
    engine = engine_of(database)
    highest = engine_of(source._meta.database).highest_id(source._meta.database, table)
    engine.continue_ids(database, table, highest)
    given = engine.highest_id(database, table)
    if engine.keeps_sequence(database, table) and given < highest:
        raise CopyFailed(f"its ids would go on from {given}, below {highest}")
    return TableCopy(table, source_rows, target_rows, given + 1)


def _open(url: str, role: str) -> peewee.Database:
    """Connect to ``url``, or raise :class:`CopyRefused` naming it (masked) and why."""
    try:
        return engine_for(url).connect(url)
    except (peewee.DatabaseError, peewee.ImproperlyConfigured, RuntimeError, OSError,
            ValueError) as error:
        raise CopyRefused(
            f"cannot open the {role} {masked_url(url)}: {_one_line(error, url)}") from None


def copy_store(source_url: str, target_url: str,
               on_table: Callable[[TableCopy], None] = lambda _table: None) -> CopyReport:
    """Copy every table of the store at ``source_url`` into the empty ``target_url``.

    Run it while no ariabot uses either database (the caller holds the instance lock).
    The source is first migrated to this ariabot's schema if it is older, as a start of
    ariabot would do. Blocking: call it from a thread or a command, never on an event loop.

    Parameters:
        source_url: the store's ``playhouse.db_url`` URL.
        target_url: where to copy it: an empty SQLite file or PostgreSQL database.
        on_table: told of each table once it is copied and checked (before the commit).

    Returns:
        Each table's counts and next id.

    Raises:
        CopyRefused: nothing was written (a target that holds rows, the store itself, no
            source, an engine or database that cannot be reached); the message masks
            passwords.
        CopyFailed: the copy broke off or did not match; the target is left as it was.
    """
    if _same_store(source_url, target_url):
        raise CopyRefused(f"the target {masked_url(target_url)} is the store itself")
    source_file, target_file = _sqlite_file(source_url), _sqlite_file(target_url)
    if source_file is not None and not source_file.is_file():
        raise CopyRefused(f"there is no store at {source_file}: nothing to copy")
    made_file = target_file is not None and not target_file.exists()
    source = _open(source_url, "store")
    target: peewee.Database | None = None
    try:
        target = _open(target_url, "target")
        return _copy(source, source_url, target, target_url, on_table)
    except (CopyRefused, CopyFailed):
        if target is not None:
            target.close()
        if made_file and target_file is not None:
            target_file.unlink(missing_ok=True)  # the empty file connecting made
        raise
    finally:
        source.close()
        if target is not None:
            target.close()


def _copy(source: peewee.Database, source_url: str, target: peewee.Database,
          target_url: str, on_table: Callable[[TableCopy], None]) -> CopyReport:
    source_tables, target_tables = bind_tables(source), bind_tables(target)
    try:
        migrated_from = _migrate_source(source, source_tables)
    except peewee.DatabaseError as error:
        raise CopyRefused(f"the store {masked_url(source_url)}: "
                          f"{_one_line(error, source_url)}") from None
    try:
        _refuse_non_empty(target_tables, target_url)
    except peewee.DatabaseError as error:
        raise CopyRefused(f"cannot read the target {masked_url(target_url)}: "
                          f"{_one_line(error, target_url)}") from None
    copied: list[TableCopy] = []
    step = "the schema"
    try:
        with source.atomic(), target.atomic():
            engine_of(source).read_snapshot(source)
            upgrade(target, target_tables)
            for from_model, to_model in zip(_data_tables(source_tables),
                                            _data_tables(target_tables), strict=True):
                step = to_model._meta.table_name
                copied.append(_copy_table(from_model, to_model))
                on_table(copied[-1])
    except (peewee.DatabaseError, CopyFailed, ValueError, TypeError) as error:
        # ValueError, TypeError: a value the source's loose typing kept (SQLite) that its
        # field cannot read back; the driver's own refusals arrive as peewee's errors.
        raise CopyFailed(f"the copy to {masked_url(target_url)} broke off at {step} and "
                         f"nothing of it was kept: {_one_line(error, target_url)}") from None
    return CopyReport(SCHEMA_VERSION, migrated_from, tuple(copied))


def _migrate_source(source: peewee.Database, tables: Tables) -> int | None:
    """Bring the source to this ariabot's schema (what its next start would do); the version
    it had when it was older, else None."""
    version = None
    if source.table_exists(tables.schema_version._meta.table_name):
        row = tables.schema_version.select().first()
        version = row.version if row else None
    if version is None:
        raise peewee.DatabaseError("it has no schema version: is it an ariabot store?")
    upgrade(source, tables)
    return version if version < SCHEMA_VERSION else None
