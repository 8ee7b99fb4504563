"""conf/ariabot.toml and docs/configuration.md are generated from FIELDS and cannot drift."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from supervisor.config import FIELDS, load_settings
from supervisor.configdoc import TARGETS, main, render_markdown, render_toml, toml_value

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_generated_file_is_up_to_date(name: str) -> None:
    current = (ROOT / name).read_text(encoding="utf-8")
    assert current == TARGETS[name](), (
        f"{name} differs from supervisor/config.py FIELDS: run "
        "'.venv/bin/python -m supervisor.configdoc' and commit the result")


def test_check_mode_reports_nothing_stale(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert capsys.readouterr().err == ""


def test_rendered_toml_is_every_default_and_loads_to_the_defaults(tmp_path: Path) -> None:
    text = render_toml(FIELDS)
    parsed = tomllib.loads(text)
    for spec in FIELDS:
        assert parsed[spec.section][spec.key] == spec.default
        assert f"({spec.env})" in text
    path = tmp_path / "ariabot.toml"
    path.write_text(text)
    assert load_settings(path, {}) == load_settings(None, {})


def test_reference_has_one_row_per_setting() -> None:
    text = render_markdown(FIELDS)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(FIELDS)
    for spec, row in zip(FIELDS, rows, strict=True):
        assert row.startswith(f"| `{spec.key}` | `{spec.env}` | `{toml_value(spec.default)}` |")
    for section in {spec.section for spec in FIELDS}:
        assert f"## [{section}]" in text


@pytest.mark.parametrize(("value", "expected"), [
    (True, "true"), (3, "3"), (1.0, "1.0"), ("a\"b", '"a\\"b"'), ([], "[]"), ([1, 2], "[1, 2]"),
])
def test_toml_values(value: object, expected: str) -> None:
    assert toml_value(value) == expected
    assert tomllib.loads(f"k = {expected}")["k"] == value


def test_reference_says_dht_off_also_turns_udp_trackers_off() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    [row] = [line for line in text.splitlines() if line.startswith("| `enable_dht` |")]
    assert "udp:// trackers" in row and "off" in row
