"""Command arguments: download ids and file numbers, parsed strictly."""

from __future__ import annotations

import pytest

from bot.arguments import parse_download_id, parse_selection


@pytest.mark.parametrize(("text", "value"), [("3", 3), ("#12", 12), (" 5 ", 5)])
def test_download_ids(text: str, value: int) -> None:
    assert parse_download_id(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "", "#", "3a", "\uff11", "99999999999999", "03"])
def test_bad_download_ids(text: str) -> None:
    with pytest.raises(ValueError):
        parse_download_id(text)


@pytest.mark.parametrize(("text", "value"), [
    ("1", [1]), ("1,3-5", [1, 3, 4, 5]), ("5-5,1, 2", [1, 2, 5]), ("2,2,1-2", [1, 2]),
])
def test_file_selection(text: str, value: list[int]) -> None:
    assert parse_selection(text) == value


@pytest.mark.parametrize("text", ["", "0", "1,", "a", "5-3", "1-100001", "1;2", "-3", "1--2"])
def test_bad_file_selection(text: str) -> None:
    with pytest.raises(ValueError):
        parse_selection(text)
