"""manager.files: which entries belong to a download, and when aria2 must check data."""

from __future__ import annotations

from pathlib import Path

from manager.files import control_file, has_unverified_data, top_entry


def test_top_entry_is_the_one_entry_that_holds_every_file(tmp_path: Path) -> None:
    assert top_entry(tmp_path, [tmp_path / "album" / "a", tmp_path / "album" / "b" / "c"]) == (
        tmp_path / "album")
    assert top_entry(tmp_path, [tmp_path / "one.bin"]) == tmp_path / "one.bin"


def test_top_entry_is_none_when_unknown_or_not_shared(tmp_path: Path) -> None:
    assert top_entry(tmp_path, []) is None
    assert top_entry(tmp_path, [tmp_path / "a" / "x", tmp_path / "b" / "y"]) is None
    assert top_entry(tmp_path, [Path("/etc/passwd")]) is None


def test_data_without_a_control_file_needs_a_hash_check(tmp_path: Path) -> None:
    (tmp_path / "done.bin").write_bytes(b"x")
    assert has_unverified_data(tmp_path, "done.bin")
    control_file(tmp_path / "done.bin").write_bytes(b"")
    assert not has_unverified_data(tmp_path, "done.bin")  # aria2 resumes from it
    assert not has_unverified_data(tmp_path, "missing.bin")
    for name in ("", ".", "..", "../done.bin"):
        assert not has_unverified_data(tmp_path / "sub", name)
