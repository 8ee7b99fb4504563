"""The buttons' callback data: round trips, fits in 64 bytes, refuses anything else."""

from __future__ import annotations

import pytest

from bot.callbackdata import (
    MAX_CALLBACK_BYTES,
    Action,
    InvalidCallback,
    callback_data,
    parse_callback,
)


def test_callback_data_round_trips_and_fits() -> None:
    for data in ["pause:1", "resume:12", "refresh:3", "cancel:4", "cancel:4:keep",
                 "cancel:4:delete", "back:9", "send:999999999999", "status:0", "status:3",
                 "mirror:7", "mirror:7:stop"]:
        assert parse_callback(data).encode() == data
        assert len(data.encode()) <= MAX_CALLBACK_BYTES
    assert parse_callback("cancel:4:delete") == Action("cancel", 4, "delete")
    longest = callback_data("cancel", 10**12 - 1, "delete")
    assert len(longest.encode()) <= MAX_CALLBACK_BYTES


@pytest.mark.parametrize("data", [
    None, 5, "", "pause", "pause:", "pause:0", "pause:-1", "pause:+1", "pause:01", "pause:1:",
    "pause:1:keep", "cancel:1:wipe", "cancel:1:keep:x", "PAUSE:1", "pause :1", "pause:1 ",
    "pause:1\n", "rm:1", "pause:\uff11", "pause:1" + "0" * 12, "status:-1", "send:1e3",
    "x" * 65, "pause:1;cancel:2", "status:00", "mirror:0", "mirror:1:go", "mirror:1:stop:x",
])
def test_callback_parsing_refuses_anything_else(data: object) -> None:
    with pytest.raises(InvalidCallback):
        parse_callback(data)


def test_callback_building_refuses_bad_values() -> None:
    with pytest.raises(InvalidCallback):
        callback_data("pause", 0)
    with pytest.raises(InvalidCallback):
        callback_data("nope", 1)
    with pytest.raises(InvalidCallback):
        callback_data("pause", 1, "keep")
    with pytest.raises(InvalidCallback):
        callback_data("pause", True)  # type: ignore[arg-type]


def test_number_arguments_round_trip_for_file_buttons_only() -> None:
    for data in ["sendfile:5:1", "sendfile:5:999999", "files:5:0", "files:5:12", "unsend:5"]:
        assert parse_callback(data).encode() == data
    assert parse_callback("sendfile:5:12").number == 12
    assert parse_callback("files:5:0").number == 0
    assert callback_data("sendfile", 10**12 - 1, 999_999) == "sendfile:999999999999:999999"
    assert len(callback_data("sendfile", 10**12 - 1, 999_999).encode()) <= MAX_CALLBACK_BYTES


@pytest.mark.parametrize("data", [
    "sendfile:5", "sendfile:5:0", "sendfile:5:01", "sendfile:5:1000000", "sendfile:5:x",
    "files:5", "files:5:00", "files:5:-1", "send:5:3", "status:1:2", "unsend:5:1",
    "sendfile:5:1:2", "sendfile:0:1", "sendfile:5:\uff11",
])
def test_number_arguments_refuse_anything_else(data: str) -> None:
    with pytest.raises(InvalidCallback):
        parse_callback(data)
