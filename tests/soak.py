"""The soak: the promises machine (:mod:`tests.promises`) with random seeds until time is up.

``./setup.sh soak [minutes]`` runs ``python -m tests.soak [minutes]``. Each round is one
Hypothesis run of the machine with a fresh seed; a failure prints the shrunk failing
sequence, the seed and how to replay it, and the soak goes on with the next seed. At the end
it prints its figures: steps run, sequences, failures found, and how often each rule ran.
Exit status 1 when it found a failure.

Knobs (:class:`tests.promises.Knobs`) keep known defects out by default; ``--enable
mirror_collisions,store_faults`` (or ``--enable all``) lets the soak play them too.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from tests.pgserver import PostgresServer
from tests.promises import KNOWN_DEFECTS, Catalog, Knobs, make_machine
from tests.promises.machine import Tally
from tests.promises.nodes import make_nodes_machine
from tests.promises.world import LoopThread
from tests.swarm import Swarm

__all__ = ["main"]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("minutes", nargs="?", type=float, default=30.0,
                        help="how long to soak (default 30)")
    parser.add_argument("--steps", type=int, default=25, help="most steps in one sequence")
    parser.add_argument("--examples", type=int, default=3,
                        help="sequences per seed before the next seed")
    parser.add_argument("--seed", type=int, help="run this one seed only (a replay)")
    parser.add_argument("--enable", default="", metavar="KNOB,...",
                        help=f"turn on knobs of known defects: {', '.join(Knobs.names())} "
                             "or all")
    parser.add_argument("--nodes", action="store_true",
                        help="three nodes on one PostgreSQL database (started here), with "
                             "node faults (tests/promises/nodes.py)")
    parser.add_argument("--no-shrink", action="store_true",
                        help="report a failure as found (faster, longer sequence)")
    parser.add_argument("--verbose", action="store_true", help="print every step as it runs")
    return parser.parse_args(argv)


def _explain(error: BaseException) -> str:
    """The failure with its sequence (Hypothesis's notes), and the first error a flaky one
    saw (it is inside, as a sub-exception)."""
    text = "".join(traceback.format_exception_only(error)).rstrip()
    for inner in getattr(error, "exceptions", ()):
        text += "\n--- first seen as:\n" + _explain(inner)  # nested: a flaky one's cause
    return text


def main(argv: list[str] | None = None) -> int:
    """Soak; print failures as they come and the figures at the end."""
    options = _arguments(argv)
    names = Knobs.names() if options.enable == "all" else \
        tuple(n for n in options.enable.split(",") if n)
    knobs = KNOWN_DEFECTS.enabled(*names)
    phases = [Phase.explicit, Phase.generate] + ([] if options.no_shrink else [Phase.shrink])
    run = settings(max_examples=options.examples, stateful_step_count=options.steps,
                   deadline=None, database=None, derandomize=False, print_blob=True,
                   phases=phases, suppress_health_check=list(HealthCheck),
                   verbosity=Verbosity.normal)
    tally, failures, seeds = Tally(trace=options.verbose), 0, 0
    started = time.monotonic()
    end = started + options.minutes * 60
    print(f"soak: {options.minutes:g} min, knobs on: {', '.join(names) or 'none'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ariabot-soak-") as scratch, \
            Swarm(Path(scratch) / "swarm") as swarm, contextlib.ExitStack() as servers:
        catalog, loop = Catalog(swarm), LoopThread()
        database = servers.enter_context(PostgresServer()) if options.nodes else None
        try:
            while time.monotonic() < end or (options.seed is not None and seeds == 0):
                number = options.seed if options.seed is not None else random.getrandbits(32)
                seeds += 1
                root = Path(scratch) / f"seed-{number}"
                root.mkdir()
                machine = seed(number)(
                    make_nodes_machine(catalog, root, loop, database, knobs, tally)
                    if database is not None else make_machine(catalog, root, loop, knobs, tally))
                tally.first_failure = None
                try:
                    run_state_machine_as_test(machine, settings=run)
                except Exception as error:
                    failures += 1
                    print(f"\n=== failure {failures} (seed {number}; replay: python -m "
                          f"tests.soak --seed {number}" + (" --nodes" if options.nodes else "")
                          + (f" --enable {options.enable}" if options.enable else "")
                          + ") ===", flush=True)
                    print(_explain(error), flush=True)
                    if isinstance(error, Flaky) and tally.first_failure:
                        print("--- the sequence's own first error (Hypothesis could not "
                              "replay it):\n" + tally.first_failure, flush=True)
                if options.seed is not None:
                    break
        finally:
            with contextlib.suppress(Exception):
                swarm.seeder.set_upload_limit(0)
            loop.close()
    minutes = (time.monotonic() - started) / 60
    rules = ", ".join(f"{name} {count}" for name, count in sorted(tally.counts.items()))
    print(f"\nsoak figures: {minutes:.1f} min, {seeds} seeds, {tally.examples} sequences, "
          f"{tally.steps} steps, {failures} failures\nrules run: {rules}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
