"""bot/ stays Telegram-only: no aria2, no database, no supervisor, only the manager package's
surface; public names exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from telegram.ext import CallbackQueryHandler, TypeHandler

from bot.app import build_application
from bot.config import BotConfig
from bot.progress import ProgressBoard

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in (ROOT / "bot").rglob("*.py")
    if path.name != "__init__.py"
)
FORBIDDEN = ("aria2p", "peewee", "requests", "websocket", "supervisor")
"""Besides these, any ``manager.<module>``: the bot sees only the package's surface."""


_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w., ]+))", re.MULTILINE)


def _imports(path: Path) -> set[str]:
    # A regex, not ast.parse: CPython 3.11.7's ast.parse can raise "AST constructor
    # recursion depth mismatch" deep inside a long pytest run (gh-106905).
    found: set[str] = set()
    for match in _IMPORT.finditer(path.read_text()):
        if match.group(1):
            found.add(match.group(1))
        else:
            found.update(name.strip().split(" ")[0] for name in match.group(2).split(","))
    return found


@pytest.mark.parametrize("module", MODULES)
def test_bot_uses_only_the_managers_public_api(module: str) -> None:
    path = ROOT / Path(*module.split(".")).with_suffix(".py")
    bad = {name for name in _imports(path)
           if name.startswith("manager.")
           or any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", MODULES)
def test_public_names_exist(module: str) -> None:
    loaded = importlib.import_module(module)
    exported = getattr(loaded, "__all__", None)
    assert exported is not None, f"{module} has no __all__"
    missing = [name for name in exported if not hasattr(loaded, name)]
    assert not missing, f"{module}.__all__ names missing attributes: {missing}"


def test_gate_runs_first_and_buttons_are_handled(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    config = BotConfig(token="123:" + "A" * 35, download_dir=tmp_path,
                       api_url="http://127.0.0.1:9")
    manager = SimpleNamespace(take_turn=None)  # what building reads of it
    app = build_application(config, manager=manager)  # type: ignore[arg-type]
    gate_group = app.handlers[-1]
    assert len(gate_group) == 1 and isinstance(gate_group[0], TypeHandler)
    assert any(isinstance(h, CallbackQueryHandler) for h in app.handlers[0])
    assert app.bot.base_url == f"http://127.0.0.1:9/bot{config.token}"
    assert app.bot.base_file_url == f"http://127.0.0.1:9/file/bot{config.token}"
    assert isinstance(app.bot_data["board"], ProgressBoard)
    assert app.error_handlers
