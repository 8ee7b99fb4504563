"""Randomised tests are reproducible in CI and keep exploring elsewhere (tests/conftest.py).

A probe test, decorated like the fuzz tests (its own ``settings(...)`` made at import), records
the cases Hypothesis gives it; it runs in a child pytest with the project's conftest loaded as
a plugin, twice with ``CI=true`` and twice without.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = '''
import os
from hypothesis import given, settings, strategies as st

CASES = settings(max_examples=40, deadline=None)


@CASES
@given(st.integers())
def test_record(number):
    with open(os.environ["PROBE_RECORD"], "a") as record:
        record.write(f"{number}\\n")


def test_profile():
    with open(os.environ["PROBE_RECORD"] + ".profile", "w") as record:
        record.write(f"{settings.get_current_profile_name()} {CASES.database}")
'''


def probe(tmp_path: Path, run: int, ci: str | None) -> tuple[list[str], str]:
    """Run the probe in a fresh folder; the cases it saw and the profile it ran under."""
    folder = tmp_path / f"run{run}"
    folder.mkdir()
    (folder / "test_probe.py").write_text(PROBE)
    record = folder / "cases.txt"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PYTHONPATH=str(ROOT), PROBE_RECORD=str(record))
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "test_probe.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=120,
        check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return record.read_text().splitlines(), (folder / "cases.txt.profile").read_text()


def test_ci_runs_are_derandomized_without_an_example_database(tmp_path: Path) -> None:
    first, profile = probe(tmp_path, 1, "true")
    second, _ = probe(tmp_path, 2, "true")
    assert profile == "ci None"
    assert len(first) >= 40 and first == second


def test_local_runs_explore_new_cases_and_remember_failures(tmp_path: Path) -> None:
    first, profile = probe(tmp_path, 1, None)
    second, _ = probe(tmp_path, 2, None)
    assert profile.startswith("dev DirectoryBasedExampleDatabase(")
    assert first != second
