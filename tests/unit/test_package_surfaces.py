"""Each room's package exports a small, documented surface: its ``__all__`` names exist; and
the other rooms import the manager only through its surface, ``manager`` itself (its
sub-packages are its own; tests aside)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w.]+))", re.MULTILINE)


@pytest.mark.parametrize("package", ["bot", "supervisor", "web"])
def test_the_package_documents_and_exports_its_surface(package: str) -> None:
    loaded = importlib.import_module(package)
    assert loaded.__doc__ and loaded.__doc__.strip()
    exported = getattr(loaded, "__all__", None)
    assert exported, f"{package} has no __all__"
    missing = [name for name in exported if not hasattr(loaded, name)]
    assert not missing, f"{package}.__all__ names missing attributes: {missing}"


@pytest.mark.parametrize("path", sorted(p for room in ("bot", "supervisor", "web")
                                        for p in (ROOT / room).rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_other_rooms_import_only_the_managers_surface(path: Path) -> None:
    imported = {a or b for a, b in _IMPORT.findall(path.read_text())}
    bad = {name for name in imported if name.startswith("manager.")}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
