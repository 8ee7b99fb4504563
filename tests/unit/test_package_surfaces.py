"""Each room's package exports a small, documented surface: its ``__all__`` names exist."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["bot", "supervisor", "web"])
def test_the_package_documents_and_exports_its_surface(package: str) -> None:
    loaded = importlib.import_module(package)
    assert loaded.__doc__ and loaded.__doc__.strip()
    exported = getattr(loaded, "__all__", None)
    assert exported, f"{package} has no __all__"
    missing = [name for name in exported if not hasattr(loaded, name)]
    assert not missing, f"{package}.__all__ names missing attributes: {missing}"
