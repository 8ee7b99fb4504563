"""Byte counts in words (manager.units): the one formatter the bot and the supervisor share."""

from __future__ import annotations

import pytest

from manager import human_size

MIB = 1024 * 1024


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (700 * MIB, "700.0 MiB"), (3 * 1024 * MIB // 2, "1.5 GiB"), (-5, "0 B"),
    (5 * 1024**4, "5.0 TiB"), (5 * 1024**5, "5120.0 TiB"),
])
def test_sizes_use_binary_units(size: int, text: str) -> None:
    assert human_size(size) == text
