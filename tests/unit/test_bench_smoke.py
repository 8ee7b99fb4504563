"""The benchmarks' smoke mode runs with the normal test suite, so that they cannot rot.

It runs ``python -m tests.bench --smoke`` exactly as ``./setup.sh bench --smoke`` does (a
child process in its own process group, stopped as a group if it overruns), then checks the
JSON it wrote: every benchmark present, none crashed, each with rows. Targets are not
checked: smoke sizes are too small for meaningful figures.
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
HANG_GUARD = 420.0
"""Seconds after which the smoke run is taken for hung and stopped. Not a speed target (those
live in the benchmarks): it takes 80 to 130 s on a 2-core machine, more on a busy one. The
test's own pytest timeout is above it, so the group is always stopped here first."""


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
def test_smoke_mode_runs_every_benchmark_and_writes_their_figures(tmp_path: Path) -> None:
    report_path, workdir = tmp_path / "bench.json", tmp_path / "work"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench", "--smoke", "--json", str(report_path),
         "--workdir", str(workdir)],
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
    assert set(benchmarks) == {module.NAME for module in BENCHMARKS}, output
    for name, result in benchmarks.items():
        assert result["error"] is None, f"{name}: {result['error']}"
        assert result["rows"], f"{name} produced no figures"
        assert all(row["benchmark"] == name for row in result["rows"])
    assert "benchmark" in output and "met?" in output  # the table was printed
