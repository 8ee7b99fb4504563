"""Generate ``conf/ariabot.toml`` and ``docs/configuration.md`` from :data:`FIELDS`.

:data:`supervisor.config.FIELDS` is the one place a setting is declared. The shipped settings
file and the configuration reference are rendered from it, and a test compares both files
with a fresh rendering, so neither can drift from the code. After changing ``FIELDS``::

    .venv/bin/python -m supervisor.configdoc          # rewrite both files
    .venv/bin/python -m supervisor.configdoc --check  # exit 1 if either is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from supervisor.config import FIELDS, Field

__all__ = ["TARGETS", "render_markdown", "render_toml", "toml_value"]

_ROOT = Path(__file__).resolve().parent.parent

TARGETS: Mapping[str, Callable[[], str]] = MappingProxyType({
    "conf/ariabot.toml": lambda: render_toml(FIELDS),
    "docs/configuration.md": lambda: render_markdown(FIELDS),
})
"""Generated files, relative to the repository root, and how each is rendered."""

_TOML_HEADER = """\
# ariabot settings: every key, its default, and what it does.
# Use another file with `ariabot --config PATH` (or ARIABOT_CONFIG=PATH). Each key can also be
# set by an environment variable, which wins over the file; its name is given above the key.
"""

_SECTION_TITLES: Mapping[str, str] = MappingProxyType({
    "paths": "Where ariabot keeps its state and the downloads.",
    "aria2": "How aria2c downloads: queue, seeding, BitTorrent network.",
    "supervisor": "How aria2c is watched and restarted.",
    "manager": "The download list: storage, progress polls, retention.",
    "node": "This machine among the nodes that share one database (PostgreSQL).",
    "telegram": "The Telegram bot. Without a token ariabot runs in local mode (CLI only).",
    "log": "ariabot's own log (on stderr; under systemd, in the journal).",
})


def toml_value(value: Any) -> str:
    """``value`` as a TOML literal (strings, numbers, booleans and flat lists).

    Raises:
        TypeError: a type a setting's default never has.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string for everything a default holds.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _sections(fields: Iterable[Field]) -> dict[str, list[Field]]:
    sections: dict[str, list[Field]] = {}
    for spec in fields:
        sections.setdefault(spec.section, []).append(spec)
    return sections


def render_toml(fields: Sequence[Field]) -> str:
    """The shipped settings file: every key with its default, help and variable."""
    parts = [_TOML_HEADER]
    for section, specs in _sections(fields).items():
        lines = [f"[{section}]"]
        for spec in specs:
            lines.append(f"# {_sentence(spec.help)} ({spec.env})")
            lines.append(f"{spec.key} = {toml_value(spec.default)}")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _cell(text: str, *, code: bool = False) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if code else text.replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(fields: Sequence[Field]) -> str:
    """The configuration reference (``docs/configuration.md``)."""
    sections = _sections(fields)
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from supervisor/config.py (FIELDS) by "
        "`python -m supervisor.configdoc`; do not edit by hand. -->",
        "",
        "ariabot reads its settings from three places; each one wins over the one before:",
        "",
        "1. the defaults below (the same as [`conf/ariabot.toml`](../conf/ariabot.toml));",
        "2. a TOML file laid out like `conf/ariabot.toml`, given with "
        "`ariabot --config PATH` or `ARIABOT_CONFIG=PATH` (unknown keys are refused);",
        "3. `ARIABOT_*` environment variables (under systemd: `/etc/ariabot/env`); an "
        "`ARIABOT_*` name that is no setting (a typo such as `ARIABOT_TELEGRAM_TOKN`) is "
        "ignored, with a warning at start and a ✘ line in `ariabot doctor` naming the "
        "closest setting.",
        "",
        "A bad value stops `ariabot run` with one line naming the key, exit code 2; "
        "`ariabot doctor` shows it as a ✘ line. Lists (`allowed_users`, `allowed_chats`) are "
        "TOML arrays in the file and comma-separated in a variable. Booleans accept "
        "`true/false`, `yes/no`, `on/off`, `1/0` in a variable.",
        "",
        "Sections: " + ", ".join(f"[`[{name}]`](#{name})" for name in sections) + ".",
    ]
    for section, specs in sections.items():
        lines += ["", f"## [{section}]", ""]
        if section in _SECTION_TITLES:
            lines += [_SECTION_TITLES[section], ""]
        lines += ["| key | variable | default | meaning |", "| --- | --- | --- | --- |"]
        for spec in specs:
            default = _cell(toml_value(spec.default), code=True)
            lines.append(f"| `{spec.key}` | `{spec.env}` | `{default}` | "
                         f"{_cell(_sentence(spec.help))} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the generated files, or with ``--check`` report those out of date (exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m supervisor.configdoc",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a generated file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, render in TARGETS.items():
        path = _ROOT / name
        text = render()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {name}")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python -m supervisor.configdoc)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
