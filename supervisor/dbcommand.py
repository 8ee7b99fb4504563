"""``ariabot db copy``: the store copied into another database, with ariabot stopped.

The copy itself is the manager's (:func:`manager.copy_store`); this module is the command:
where the target's URL comes from, the instance lock that proves no ariabot runs on the data
dir (and keeps one from starting meanwhile), and the lines printed. A database password must
never be visible in the process list, where every user of the machine can read command lines:
a ``--to`` URL that holds one is refused, and the URL can come from standard input (``--to
-``) or a variable (``--to-env NAME``) instead; libpq's own ``PGPASSWORD`` and ``~/.pgpass``
work too, with a URL that has no password.
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any, TextIO

from manager import (
    CopyFailed,
    CopyRefused,
    CopyReport,
    TableCopy,
    copy_store,
    masked_url,
)
from supervisor.config import Settings
from supervisor.exits import EXIT_ERROR, EXIT_USAGE
from supervisor.instance import AlreadyRunning, InstanceLock
from supervisor.layout import StateLayout
from supervisor.parsers import database_url

__all__ = ["add_db_parser", "db_command"]


def add_db_parser(commands: Any) -> None:
    """Add ``ariabot db copy`` to the command line's sub-commands."""
    db = commands.add_parser("db", help="work on the store itself, with ariabot stopped")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    copy = actions.add_parser(
        "copy", help="copy every table of the store into another, empty database (SQLite "
        "or PostgreSQL), ids and their sequences included; ariabot must be stopped",
        description="Copy every table of the configured store (ARIABOT_DATABASE_URL, or the "
        "data dir's SQLite file) into an empty database, check each table's row count, and "
        "make new ids go on after the copied ones. Then point ARIABOT_DATABASE_URL at it.")
    target = copy.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--to", metavar="URL",
        help="the target, e.g. sqlite:////var/lib/ariabot/copy.db or "
        "postgresql://ariabot@127.0.0.1:5432/ariabot; '-' reads it from standard input. "
        "A URL with a password must come from standard input or --to-env: a command line "
        "is visible to every user of the machine")
    target.add_argument("--to-env", metavar="NAME",
                        help="read the target's URL from the environment variable NAME")


class _BadTarget(ValueError):
    """The target URL cannot be used as given (the message says why, without a password)."""


def _target_url(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.to_env is not None:
        text = os.environ.get(args.to_env, "")
        if not text.strip():
            raise _BadTarget(f"the variable {args.to_env} is not set or empty")
    elif args.to == "-":
        text = (getpass.getpass("target database URL: ") if stdin.isatty()
                else stdin.readline())
        if not text.strip():
            raise _BadTarget("no target URL on standard input")
    else:
        text = args.to
        if masked_url(text) != text:
            raise _BadTarget(
                "the password in --to would be visible in the process list: give the URL on "
                "standard input (--to -) or in a variable (--to-env NAME), or leave it out "
                "and let PGPASSWORD or ~/.pgpass give it")
    try:
        return database_url(text)
    except ValueError as error:
        raise _BadTarget(f"the target {masked_url(text.strip())} {error}") from None


_NAME_WIDTH = 12
"""Room for a table's name (the longest is 10 characters)."""


class _TableLines:
    """Prints each table's line as soon as it is copied (a large store takes a while)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = False

    def __call__(self, table: TableCopy) -> None:
        if not self.started:
            print(f"  {'table':<{_NAME_WIDTH}}  {'rows':>9}  {'next id':>9}", file=self.out)
            self.started = True
        next_id = "-" if table.next_id is None else str(table.next_id)
        print(f"  {table.table:<{_NAME_WIDTH}}  {table.target_rows:>9}  {next_id:>9}",
              file=self.out, flush=True)


def _summary(report: CopyReport, source: str, target: str) -> str:
    migrated = (f"; the store was at schema version {report.migrated_from} and was migrated "
                "first" if report.migrated_from is not None else "")
    return (f"copied {report.rows} rows in {len(report.tables)} tables from "
            f"{masked_url(source)} to {masked_url(target)} at schema version "
            f"{report.schema_version}, each table's row count checked on the target{migrated}")


def db_command(args: argparse.Namespace, settings: Settings, stdin: TextIO, out: TextIO,
               err: TextIO) -> int:
    """Run ``ariabot db copy``.

    Returns:
        0 copied; :data:`EXIT_USAGE` refused with nothing written (ariabot running, a bad or
        unreachable target, a target that holds rows); :data:`EXIT_ERROR` the copy broke off
        (rolled back).
    """
    layout = StateLayout(settings.data_dir)
    source = settings.database_url or f"sqlite:///{layout.database}"
    try:
        target = _target_url(args, stdin)
    except _BadTarget as error:
        print(f"ariabot: {error}", file=err)
        return EXIT_USAGE
    if not settings.database_url and not layout.database.is_file():
        print(f"ariabot: there is no store at {layout.database}: nothing to copy", file=err)
        return EXIT_USAGE
    layout.create()  # the lock's place, as ariabot run makes it (the store may be elsewhere)
    try:
        with InstanceLock(layout.lock):
            report = copy_store(source, target, on_table=_TableLines(out))
    except AlreadyRunning as error:
        print(f"ariabot: {error}: stop it first, the copy needs the store at rest",
              file=err)
        return EXIT_USAGE
    except CopyRefused as error:
        print(f"ariabot: {error}", file=err)
        return EXIT_USAGE
    except CopyFailed as error:
        print(f"ariabot: {error}", file=err)
        return EXIT_ERROR
    print(_summary(report, source, target), file=out)
    return 0
