"""manager/ knows no Telegram and no supervisor; its layers point one way; its public names
exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import manager

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                 for p in (ROOT / "manager").rglob("*.py") if p.name != "__init__.py")
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w.]+))", re.MULTILINE)

LAYERS = {"sources": 1, "store": 1, "fetch": 1, "aria2": 2, "downloads": 3, "nodes": 3,
          "tracking": 4, "actions": 4, "delivery": 4, "feeds": 5}
"""The sub-packages of manager/, lowest first: each imports only lower ones (those of one rank
know nothing of each other), and the shared modules at the top of ``manager``. Only the
façade (``manager``, ``manager.core``) sits above them all. ``store`` is at the bottom: every
layer reads and writes its rows (even the aria2 adapter's ops take a stored record), and it
needs nothing of theirs, only the shared models, errors and notice rules."""
PACKAGES = sorted(f"manager.{name}" for name in LAYERS)


def _imports(module: str) -> set[str]:
    path = ROOT / Path(*module.split("."))
    text = (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text()
    return {a or b for a, b in _IMPORT.findall(text)}


@pytest.mark.parametrize("module", MODULES)
def test_manager_never_imports_telegram_bot_or_supervisor(module: str) -> None:
    bad = {name for name in _imports(module)
           if name.split(".")[0] in {"telegram", "bot", "supervisor"}}
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", ["manager", *PACKAGES, *MODULES])
def test_public_names_exist(module: str) -> None:
    loaded = importlib.import_module(module)
    assert hasattr(loaded, "__all__"), f"{module} has no __all__"
    assert all(hasattr(loaded, name) for name in loaded.__all__)


def test_package_exports_the_api_the_bot_uses() -> None:
    for name in ("TorrentManager", "Torrent", "TorrentState", "ManagerError", "find_magnets"):
        assert name in manager.__all__


@pytest.mark.parametrize("module", ["manager.sources.bencode", "manager.sources.magnets",
                                    "manager.sources.metainfo", "manager.sources.trackers",
                                    "manager.units", "manager.usertext"])
def test_all_lists_the_public_names(module: str) -> None:
    loaded = importlib.import_module(module)
    defined = {name for name, obj in vars(loaded).items()
               if not name.startswith("_") and getattr(obj, "__module__", "") == loaded.__name__}
    text = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text()
    # Upper-case names assigned in this module (not imported ones).
    constants = set(re.findall(r"^([A-Z][A-Z0-9_]*)\b[^=\n]*=", text, re.MULTILINE))
    assert sorted(loaded.__all__) == sorted(defined | constants)


def test_every_sub_package_has_a_rank() -> None:
    found = {p.parent.name for p in (ROOT / "manager").glob("*/__init__.py")}
    assert found == set(LAYERS)


@pytest.mark.parametrize("package", PACKAGES)
def test_a_sub_package_documents_its_job_and_surface(package: str) -> None:
    loaded = importlib.import_module(package)
    assert loaded.__doc__ and loaded.__doc__.strip()
    assert loaded.__all__


@pytest.mark.parametrize("module", [*PACKAGES, *MODULES])
def test_layers_point_one_way(module: str) -> None:
    """A sub-package imports only lower sub-packages, and only through their surface
    (``manager.aria2``, never ``manager.aria2.rpc``); the shared top-level modules import
    none."""
    parts = module.split(".")
    own = parts[1] if parts[1] in LAYERS else None
    bad = set()
    for name in _imports(module):
        target = name.split(".")
        if target[0] != "manager" or len(target) < 2 or target[1] not in LAYERS:
            continue
        if target[1] == own:
            continue
        if (len(target) > 2 or (own is None and module != "manager.core")
                or (own is not None and LAYERS[target[1]] >= LAYERS[own])):
            bad.add(name)
    assert not bad, f"{module} imports {bad}"
