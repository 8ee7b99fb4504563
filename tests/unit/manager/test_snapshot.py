"""What callers see of a row: the snapshot's path is the row's folder and name joined as
pathlib joins them (without building a Path: one snapshot per row of a listed page)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from manager.downloads.live import snapshot
from tests.unit.manager.test_sweep import record


@pytest.mark.parametrize(("directory", "name"), [
    ("/srv/ariabot/downloads/torrents/42/17-abcdef01", "Some Album (2024)"),
    ("/data", "Ünïcödé 日本語 name.mkv"),
    ("/data/torrents/-100123", "..hidden but not dot-dot"),
    ("/data/torrents/7", ""),  # a row whose name is not known yet
])
def test_the_path_is_the_folder_and_name_joined_as_pathlib_joins_them(
        directory: str, name: str) -> None:
    row = replace(record(1), directory=directory, name=name)
    assert snapshot(row).path == str(Path(directory) / name)
