"""The throwaway PostgreSQL server the store tests run on (tests/pgserver.py)."""

from __future__ import annotations

import pwd
from pathlib import Path

import psycopg
import pytest

from tests.pgserver import PostgresServer

pytestmark = pytest.mark.postgresql


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=5)


def test_each_test_gets_an_empty_database_of_its_own(postgresql_url: str) -> None:
    with _connect(postgresql_url) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        connection.execute("CREATE TABLE left_behind (id integer)")
    assert tables == (0,)


def test_the_next_test_does_not_see_the_last_ones_tables(postgresql_url: str) -> None:
    with _connect(postgresql_url) as connection:
        found = connection.execute("SELECT to_regclass('left_behind')").fetchone()
    assert found == (None,)


def test_the_server_listens_on_loopback_only_and_never_runs_as_root(
        postgresql_server: PostgresServer, postgresql_url: str) -> None:
    with _connect(postgresql_url) as connection:
        (address,) = connection.execute("SHOW listen_addresses").fetchone()
        (pid,) = connection.execute("SELECT pg_backend_pid()").fetchone()
        owner = pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name  # while it serves
    assert address == "127.0.0.1"
    assert owner != "root"


def test_a_wrong_password_is_refused(postgresql_server: PostgresServer,
                                     postgresql_url: str) -> None:
    database = postgresql_url.rsplit("/", 1)[1]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(postgresql_server.url(database, password="wrong"))


def test_a_restart_keeps_the_port_and_the_rows(postgresql_server: PostgresServer,
                                               postgresql_url: str) -> None:
    with _connect(postgresql_url) as connection:
        connection.execute("CREATE TABLE kept (id integer)")
        connection.execute("INSERT INTO kept VALUES (7)")
    postgresql_server.restart()
    with _connect(postgresql_url) as connection:
        assert connection.execute("SELECT id FROM kept").fetchall() == [(7,)]
