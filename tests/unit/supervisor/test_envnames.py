"""Misspelt ARIABOT_* variables are named, with the setting they most likely meant."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from supervisor.__main__ import main
from supervisor.config import FIELDS
from supervisor.envnames import (
    OTHER_VARIABLES,
    UnknownVariable,
    unknown_variables,
    warn_unknown_variables,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("name", "meant"), [
    ("ARIABOT_TELEGRAM_TOKN", "ARIABOT_TELEGRAM_TOKEN"),
    ("ARIABOT_MAX_CONCURENT", "ARIABOT_MAX_CONCURRENT"),
    ("ARIABOT_DATADIR", "ARIABOT_DATA_DIR"),
    ("ARIABOT_DOWNLOADS_DIR", "ARIABOT_DOWNLOAD_DIR"),
    ("ARIABOT_ENABLE_DTH", "ARIABOT_ENABLE_DHT"),
    ("ARIABOT_CONFIG_FILE", "ARIABOT_CONFIG"),
    ("ariabot_data_dir", "ARIABOT_DATA_DIR"),  # variables are case-sensitive
    ("ARIABOT_TOKEN", "ARIABOT_TELEGRAM_TOKEN"),  # a part of exactly one real name
    ("ARIABOT_DHT", "ARIABOT_ENABLE_DHT"),
])
def test_misspelt_variable_names_the_closest_setting(name: str, meant: str) -> None:
    [found] = unknown_variables({name: "x"})
    assert found == UnknownVariable(name, meant)
    assert f"did you mean {meant}?" in found.fix


@pytest.mark.parametrize("name", ["ARIABOT_FOO", "ARIABOT_DIR", "ARIABOT_X"])
def test_variable_like_no_setting_gets_no_guess(name: str) -> None:
    [found] = unknown_variables({name: "x"})
    assert found.meant is None
    assert "docs/configuration.md" in found.fix


def test_settings_and_variables_ariabot_reads_are_not_flagged() -> None:
    environ = {spec.env: "x" for spec in FIELDS}
    environ.update({name: "x" for name in OTHER_VARIABLES})
    environ.update(HOME="/root", PATH="/bin", ARIABOTX="x", MY_ARIABOT_DATA_DIR="x")
    assert unknown_variables(environ) == []


SETS_OR_READS = re.compile(r"""\b(ARIABOT_[A-Z0-9_]*[A-Z0-9])\b(?=["']?\s*(?:[:=\])]|\)))""")
"""``NAME=``, ``"NAME": ``, ``${NAME:-``, ``environ["NAME"]``, ``get("NAME")``."""


NOT_THE_PROJECTS = {".git", ".venv", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
"""Folders of tools, not the project's: pytest's cache lists the ids of the tests above,
misspelt names and all, once they have run."""


def test_every_ariabot_variable_the_project_sets_or_reads_is_known() -> None:
    """setup.sh, deploy/, the docs and the test helpers set or read no ARIABOT_* name that
    start-up would flag (test files and envnames.py misspell names on purpose)."""
    used: set[str] = set()
    for path in ROOT.glob("**/*"):
        if (path.is_file() and not NOT_THE_PROJECTS & set(path.parts)
                and not path.name.startswith("test_") and path.name != "envnames.py"
                and path.suffix in {".py", ".sh", ".md", ".toml", ".service", ".example", ""}):
            used.update(SETS_OR_READS.findall(path.read_text(errors="replace")))
    assert {"ARIABOT_VENV", "ARIABOT_CONFIG", "ARIABOT_ENABLE_DHT"} <= used, "the scan missed"
    assert [v.name for v in unknown_variables(dict.fromkeys(used, "x"))] == []


def test_warning_names_the_variable_never_its_value(caplog: pytest.LogCaptureFixture) -> None:
    token = "123456:" + "S" * 35
    with caplog.at_level(logging.WARNING, logger="supervisor.envnames"):
        warn_unknown_variables({"ARIABOT_TELEGRAM_TOKN": token, "ARIABOT_DATA_DIR": "/x"})
    [record] = caplog.records
    assert record.getMessage() == (
        "ARIABOT_TELEGRAM_TOKN is not an ariabot setting and is ignored; did you mean "
        "ARIABOT_TELEGRAM_TOKEN? Rename it (or remove it)")
    assert token not in caplog.text


def test_doctor_fails_on_a_misspelt_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ARIABOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ARIABOT_MAX_CONCURENT", "4")
    assert main(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    [line] = [text for text in lines if "ARIABOT_MAX_CONCURENT" in text]
    assert line == ("✘ ARIABOT_MAX_CONCURENT is not an ariabot setting and is ignored — did "
                    "you mean ARIABOT_MAX_CONCURRENT? Rename it (or remove it)")


def test_doctor_names_a_misspelt_variable_next_to_a_bad_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARIABOT_MAX_CONCURRENT", "many")
    monkeypatch.setenv("ARIABOT_DATADIR", "/srv/ariabot")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✘ ARIABOT_DATADIR is not an ariabot setting" in out
    assert "did you mean ARIABOT_DATA_DIR?" in out
