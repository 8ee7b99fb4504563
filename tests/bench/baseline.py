"""The ORIGINAL design's monitor, rebuilt faithfully for the monitor benchmark only.

What the sketch did every cycle (design.md §4, "Fix" 5: "One ``tellStatus`` and one DB write
per download per cycle"):

* read the tracked downloads from its table (one ``SELECT``);
* for **each** of them, ``API.get_download(gid)``: one ``aria2.tellStatus`` with all keys
  through aria2p, whose ``Client.post`` is a module-level ``requests.post`` — one HTTP request
  *and a new TCP connection* per download;
* write the row back with peewee ``Model.save()`` outside any transaction: one ``UPDATE`` and
  one commit per download.

It is synchronous, like the sketch; the benchmark runs it in a worker thread so the event
loop that hosts aria2c's supervisor stays responsive. For fairness its SQLite database gets
the same pragmas as ariabot's store (WAL, ``synchronous=normal``): the comparison measures
the monitor's design, not journal settings (the sketch's defaults, rollback journal with
``synchronous=full``, would only make it slower).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aria2p
import peewee

from manager import Aria2Endpoint

__all__ = ["TRACKED_STATES", "OriginalMonitor", "Tracked"]

TRACKED_STATES = ("active", "waiting", "paused")
"""Statuses the sketch kept polling."""

STORE_PRAGMAS: dict[str, Any] = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "busy_timeout": 5000,
}
"""The pragmas of ariabot's own store (manager/store/engine.py), given to the baseline
for fairness."""


class Tracked(peewee.Model):
    """The sketch's table: one row per download, keyed by the GID it was added with."""

    id = peewee.AutoField()
    chat_id = peewee.BigIntegerField()
    gid = peewee.CharField(max_length=16, index=True)
    name = peewee.TextField(default="")
    status = peewee.CharField(max_length=12, default="active")
    total = peewee.BigIntegerField(default=0)
    completed = peewee.BigIntegerField(default=0)
    progress = peewee.FloatField(default=0.0)
    speed = peewee.BigIntegerField(default=0)
    updated_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "tracked"


class OriginalMonitor:
    """One ``tellStatus`` and one committed ``UPDATE`` per download per cycle.

    Parameters:
        endpoint: aria2's RPC port and secret.
        db_path: the SQLite file of the sketch's table.
        pragmas: SQLite pragmas (default: ariabot's, see :data:`STORE_PRAGMAS`).
    """

    def __init__(self, endpoint: Aria2Endpoint, db_path: Path,
                 pragmas: dict[str, Any] | None = None) -> None:
        self.client = aria2p.Client(host=f"http://{endpoint.host}", port=endpoint.port,
                                    secret=endpoint.secret, timeout=10)
        self.api = aria2p.API(self.client)
        # One connection whatever thread runs a cycle (the trace callback sits on it).
        self.db = peewee.SqliteDatabase(str(db_path), pragmas=pragmas or STORE_PRAGMAS,
                                        thread_safe=False, check_same_thread=False)
        self._connection: sqlite3.Connection | None = None
        self.statements = 0
        """SQL statements executed (sqlite3 trace callback), as Store.statements counts."""
        self.commits = 0
        """Transactions committed: here every write outside a transaction commits on its own."""

    def open(self) -> None:
        """Connect and create the table."""
        self.db.bind([Tracked])
        self.db.connect(reuse_if_open=True)
        connection = self.db.connection()
        assert isinstance(connection, sqlite3.Connection)
        connection.set_trace_callback(self._traced)
        self._connection = connection
        self.db.create_tables([Tracked])

    def _traced(self, sql: str) -> None:
        self.statements += 1
        verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        in_transaction = self._connection is not None and self._connection.in_transaction
        if verb in ("UPDATE", "INSERT", "DELETE") and in_transaction:
            return  # committed later by the surrounding transaction's COMMIT
        if verb in ("UPDATE", "INSERT", "DELETE", "COMMIT"):
            self.commits += 1

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def track(self, chat_id: int, gids: Iterable[str]) -> int:
        """Start tracking downloads (the sketch inserted a row when a user added one)."""
        rows = [{"chat_id": chat_id, "gid": gid} for gid in gids]
        with self.db.atomic():
            for start in range(0, len(rows), 500):
                Tracked.insert_many(rows[start:start + 500]).execute()
        return len(rows)

    def tracked(self) -> int:
        """How many rows it polls each cycle."""
        return Tracked.select().where(Tracked.status.in_(TRACKED_STATES)).count()

    def cycle(self) -> int:
        """One monitor cycle, as the sketch ran it; returns the downloads polled."""
        polled = 0
        for row in Tracked.select().where(Tracked.status.in_(TRACKED_STATES)):
            download = self.api.get_download(row.gid)  # one tellStatus, one HTTP request
            row.name = download.name
            row.status = download.status
            row.total = download.total_length
            row.completed = download.completed_length
            row.progress = download.progress
            row.speed = download.download_speed
            row.updated_at = datetime.now(UTC).replace(tzinfo=None)
            row.save()  # one UPDATE, committed on its own
            polled += 1
        return polled
