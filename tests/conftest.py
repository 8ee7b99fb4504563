"""Fixtures for the local BitTorrent swarm (tests/swarm.py) and the databases a store test
runs on (SQLite, and the throwaway PostgreSQL server of tests/pgserver.py); other fixtures
live elsewhere.

Also the Hypothesis profiles: ``ci`` (loaded when the ``CI`` variable is set, as CI does) is
derandomized and keeps no example database, so a CI run tries the same cases every time and a
red run can be replayed from its log; ``dev`` (every other run) explores new random cases and
keeps the failures it found in ``.hypothesis/`` to try them first next time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.pgserver import PostgresServer
from tests.swarm import Swarm

# Both from Hypothesis's own defaults, whatever profile it loaded itself on import.
settings.register_profile("dev", settings.get_profile("default"), derandomize=False)
settings.register_profile("ci", settings.get_profile("default"), derandomize=True,
                          database=None, print_blob=True)
settings.load_profile(
    "ci" if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no") else "dev"
)


@pytest.fixture(scope="session")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    """One tracker and one seeding aria2c on 127.0.0.1 for the whole run.

    Content is made per call of ``swarm.add`` in its own folder. Slow the seeder down only
    with ``with swarm.throttled(bytes_per_second):``, which restores unlimited on exit.
    A missing aria2c fails the run: integration tests are never skipped.
    """
    if shutil.which("aria2c") is None:
        pytest.fail("aria2c is not on PATH: install it (sudo apt-get install aria2)",
                    pytrace=False)
    with Swarm(tmp_path_factory.mktemp("swarm")) as running:
        yield running


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, started the first time a test asks for it (a run
    that selects no PostgreSQL test starts none) and stopped at the end of the session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgresql_url(postgresql_server: PostgresServer) -> Iterator[str]:
    """The URL of an empty database of its own on the session's server, dropped after."""
    name = postgresql_server.new_database()
    yield postgresql_server.url(name)
    postgresql_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each engine: a SQLite file, then a PostgreSQL database
    (``-m postgresql`` selects those runs, ``-m 'not postgresql'`` leaves them out)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ariabot.db'}"
    return request.getfixturevalue("postgresql_url")


@pytest.fixture
def second_database_url(request: pytest.FixtureRequest, database_url: str,
                        tmp_path: Path) -> Iterator[str]:
    """Another empty database on the same engine as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgresql_server")
    name = server.new_database()
    yield server.url(name)
    server.drop_database(name)
