"""web/ is a room of its own: it knows the manager, never Telegram, the bot or the
supervisor; and neither the bot nor the manager knows it (nor serves HTTP: aiohttp's server
is web/'s)."""

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


_SERVER = re.compile(r"^\s*(?:from\s+aiohttp\s+import\b[^\n]*\bweb\b|"
                     r"(?:from|import)\s+aiohttp\.web)", re.MULTILINE)
"""aiohttp's server side: ``web/``'s own. The manager may fetch with aiohttp's client (a
``.torrent`` by URL, :mod:`manager.fetch`), as it calls aria2 with an HTTP client."""


@pytest.mark.parametrize("path", _modules("bot") + _modules("manager"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_neither_bot_nor_manager_imports_web(path: Path) -> None:
    assert "web" not in _imports(path), path
    assert not _SERVER.search(path.read_text()), path


@pytest.mark.parametrize("module", _modules("bot"), ids=lambda p: p.name)
def test_the_bot_makes_no_http_of_its_own(module: Path) -> None:
    """The bot reaches Telegram through python-telegram-bot and the rest through the
    manager only."""
    assert "aiohttp" not in _imports(module), module


def test_the_server_rule_sees_the_server_imports() -> None:
    for line in ("from aiohttp import web", "from aiohttp import ClientSession, web",
                 "import aiohttp.web", "from aiohttp.web import Response"):
        assert _SERVER.search(line), line
    for line in ("import aiohttp", "from aiohttp.abc import AbstractResolver",
                 "from aiohttp import ClientSession"):
        assert not _SERVER.search(line), line


@pytest.mark.parametrize("module", ["web.server", "web.pages", "web.headers",
                                    "web.fileresponse"])
def test_public_names_exist(module: str) -> None:
    loaded = importlib.import_module(module)
    assert all(hasattr(loaded, name) for name in loaded.__all__)
