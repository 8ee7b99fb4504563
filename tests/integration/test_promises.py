"""The promises across features, on the real stack (issue 23, part B; :mod:`tests.promises`).

CI runs a few derandomized sequences (the ``ci`` profile of tests/conftest.py); the soak
(``./setup.sh soak [minutes]``, :mod:`tests.soak`) runs many with random seeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from tests.promises import Catalog, make_machine
from tests.promises.machine import Tally
from tests.promises.world import LoopThread
from tests.swarm import Swarm

pytestmark = pytest.mark.slow

CI_RUN = settings(max_examples=6, stateful_step_count=20, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
"""About two minutes on a 2-core machine: six sequences of up to twenty steps, the same ones
on every machine whatever the profile (random seeds are the soak's job)."""


@pytest.fixture(scope="module")
def world(swarm: Swarm, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[tuple[Catalog, Path, LoopThread]]:
    loop = LoopThread()
    try:
        yield Catalog(swarm), tmp_path_factory.mktemp("promises"), loop
    finally:
        loop.close()


@pytest.mark.timeout(900)  # a hang guard: ~2 min here, more on a loaded machine or a shrink
def test_the_promises_hold_across_features_under_faults(
    world: tuple[Catalog, Path, LoopThread],
) -> None:
    catalog, root, loop = world
    tally = Tally()
    try:
        run_state_machine_as_test(make_machine(catalog, root, loop, tally=tally),
                                  settings=CI_RUN)
    except Flaky:  # Hypothesis could not replay the failure: show the sequence's own
        print("the sequence's own first error (Hypothesis could not replay it):\n"
              f"{tally.first_failure}", flush=True)
        raise
    print(f"promises: {tally.examples} sequences, {tally.steps} steps: {tally.counts}")
    # A machine whose rules never ran would pass whatever ariabot does.
    assert tally.steps >= 20 and {"add", "settle"} <= set(tally.counts), tally
