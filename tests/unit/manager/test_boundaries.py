"""manager/ knows no Telegram and no supervisor; its public names exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import manager

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                 for p in (ROOT / "manager").glob("*.py") if p.name != "__init__.py")
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w.]+))", re.MULTILINE)


@pytest.mark.parametrize("module", MODULES)
def test_manager_never_imports_telegram_bot_or_supervisor(module: str) -> None:
    text = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text()
    imported = {a or b for a, b in _IMPORT.findall(text)}
    bad = {name for name in imported
           if name.split(".")[0] in {"telegram", "bot", "supervisor"}}
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", ["manager", *MODULES])
def test_public_names_exist(module: str) -> None:
    loaded = importlib.import_module(module)
    assert hasattr(loaded, "__all__"), f"{module} has no __all__"
    assert all(hasattr(loaded, name) for name in loaded.__all__)


def test_package_exports_the_api_the_bot_uses() -> None:
    for name in ("TorrentManager", "Torrent", "TorrentState", "ManagerError", "find_magnets"):
        assert name in manager.__all__


@pytest.mark.parametrize("module", ["manager.bencode", "manager.magnets", "manager.metainfo",
                                    "manager.trackers", "manager.units", "manager.usertext"])
def test_all_lists_the_public_names(module: str) -> None:
    loaded = importlib.import_module(module)
    defined = {name for name, obj in vars(loaded).items()
               if not name.startswith("_") and getattr(obj, "__module__", "") == loaded.__name__}
    text = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text()
    # Upper-case names assigned in this module (not imported ones).
    constants = set(re.findall(r"^([A-Z][A-Z0-9_]*)\b[^=\n]*=", text, re.MULTILINE))
    assert sorted(loaded.__all__) == sorted(defined | constants)
