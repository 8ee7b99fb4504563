"""Fixtures for the local BitTorrent swarm (tests/swarm.py); other fixtures live elsewhere."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.swarm import Swarm


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
