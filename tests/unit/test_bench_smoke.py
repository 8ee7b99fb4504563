"""The benchmarks' smoke mode runs with the normal test suite, so that they cannot rot.

One test per benchmark runs ``python -m tests.bench --smoke --only NAME`` as ``./setup.sh
bench --smoke`` would run it (a child process in its own process group, stopped as a group
if it overruns), then checks the JSON it wrote: that benchmark present, not crashed, with
rows. One test each rather than one run of them all, so that pytest-xdist spreads them over
its workers (the whole run took 215 s of one worker in CI). Targets are not checked: smoke
sizes are too small for meaningful figures.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.__main__ import BENCHMARKS

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD = 300.0
"""Seconds after which one benchmark's smoke run is taken for hung and stopped. Not a speed
target (those live in the benchmarks): the longest (nodes) takes 30 to 45 s on a 2-core
machine, more on a busy one. The test's own pytest timeout is above it, so the group is
always stopped here first."""


def _stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM the benchmark's process group (it cleans up), SIGKILL what is left."""
    for signum, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.timeout(HANG_GUARD + 60)  # + _stop_group's 40 s of grace
@pytest.mark.parametrize("name", [module.NAME for module in BENCHMARKS])
def test_smoke_mode_runs_the_benchmark_and_writes_its_figures(name: str, tmp_path: Path,
                                                              ) -> None:
    report_path, workdir = tmp_path / "bench.json", tmp_path / "work"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench", "--smoke", "--only", name,
         "--json", str(report_path), "--workdir", str(workdir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        _stop_group(process)
        output, _ = process.communicate()
        raise AssertionError(f"the smoke run hung (over {HANG_GUARD:g}s):\n{output}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert process.returncode == 0, output
    report = json.loads(report_path.read_text())
    assert report["mode"] == "smoke"
    benchmarks = report["benchmarks"]
    assert set(benchmarks) == {name}, output
    result = benchmarks[name]
    assert result["error"] is None, f"{name}: {result['error']}"
    assert result["rows"], f"{name} produced no figures"
    assert all(row["benchmark"] == name for row in result["rows"])
    assert "benchmark" in output and "met?" in output  # the table was printed
