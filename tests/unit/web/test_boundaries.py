"""web/ is a room of its own: it knows the manager, never Telegram, the bot or the
supervisor; and neither the bot nor the manager knows it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w.]+))", re.MULTILINE)


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    return {(a or b).split(".")[0] for a, b in _IMPORT.findall(path.read_text())}


@pytest.mark.parametrize("path", _modules("web"), ids=lambda p: p.name)
def test_web_imports_only_the_manager_of_ariabot(path: Path) -> None:
    bad = _imports(path) & {"telegram", "bot", "supervisor"}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", _modules("bot") + _modules("manager"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_neither_bot_nor_manager_imports_web(path: Path) -> None:
    assert not _imports(path) & {"web", "aiohttp"}, path


@pytest.mark.parametrize("module", ["web.server", "web.pages", "web.headers",
                                    "web.fileresponse"])
def test_public_names_exist(module: str) -> None:
    loaded = importlib.import_module(module)
    assert all(hasattr(loaded, name) for name in loaded.__all__)
