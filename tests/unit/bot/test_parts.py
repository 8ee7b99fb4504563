"""Cutting a file into numbered parts within the upload limit, and the captions that say how
to rejoin them (checked by really rejoining with ``cat``)."""

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
from pathlib import Path

import pytest

from bot.parts import MAX_CAPTION, Part, part_caption, plan_parts, rejoin_commands

MIB = 1024 * 1024


def test_a_file_within_the_limit_is_one_upload_under_its_own_name() -> None:
    assert plan_parts("film.mkv", 50 * MIB, 50 * MIB) == (Part(1, 1, 0, 50 * MIB, "film.mkv"),)
    assert plan_parts("empty", 0, 10) == (Part(1, 1, 0, 0, "empty"),)
    assert part_caption(plan_parts("film.mkv", 10, 10)[0], 10) is None


def test_a_bigger_file_is_cut_into_numbered_parts_each_within_the_limit() -> None:
    parts = plan_parts("film.mkv", 120 * MIB + 1, 50 * MIB)
    assert [p.name for p in parts] == ["film.mkv.001", "film.mkv.002", "film.mkv.003"]
    assert [(p.offset, p.length) for p in parts] == [
        (0, 50 * MIB), (50 * MIB, 50 * MIB), (100 * MIB, 20 * MIB + 1)]
    assert {p.count for p in parts} == {3}
    assert sum(p.length for p in parts) == 120 * MIB + 1
    exact = plan_parts("x", 100, 50)
    assert [(p.offset, p.length) for p in exact] == [(0, 50), (50, 50)]


def test_part_numbers_are_padded_to_one_width_so_they_sort_in_order() -> None:
    parts = plan_parts("a", 1500, 1)
    assert parts[0].name == "a.0001" and parts[-1].name == "a.1500"
    assert sorted(p.name for p in parts) == [p.name for p in parts]


@pytest.mark.parametrize(("size", "limit"), [(-1, 10), (10, 0)])
def test_impossible_plans_are_refused(size: int, limit: int) -> None:
    with pytest.raises(ValueError):
        plan_parts("x", size, limit)


def test_the_first_caption_says_how_to_rejoin_and_the_others_which_part() -> None:
    parts = plan_parts("film.mkv", 3 * MIB, MIB)
    first = part_caption(parts[0], 3 * MIB)
    assert first is not None
    assert "part 1/3" in first and "3.0 MiB in all" in first
    assert "<code>cat film.mkv.0* &gt; film.mkv</code>" in first
    assert "copy /b film.mkv.001+film.mkv.002+film.mkv.003 film.mkv" in first
    assert part_caption(parts[1], 3 * MIB) == "<b>film.mkv · part 2/3 (3.0 MiB in all)</b>"


def test_rejoin_commands_quote_names_and_glob_only_the_parts() -> None:
    posix, windows = rejoin_commands("My film (2024).mkv", 2)
    assert posix == "cat 'My film (2024).mkv'.0* > 'My film (2024).mkv'"
    assert windows == ('copy /b "My film (2024).mkv.001"+"My film (2024).mkv.002" '
                       '"My film (2024).mkv"')
    # 100 parts and more: a 0* glob would miss .100; the glob names every digit instead.
    assert rejoin_commands("a", 100)[0] == "cat a.[0-9][0-9][0-9] > a"
    assert rejoin_commands("a", 99)[1] == "copy /b a.??? a"


def test_captions_fit_telegrams_limit_whatever_the_name() -> None:
    name = "é" * 250
    for count in (2, 8, 120):
        caption = part_caption(plan_parts(name, count * 10, 10)[0], count * 10)
        assert caption is not None
        plain = html.unescape(re.sub(r"<[^>]+>", "", caption))
        assert len(plain.encode("utf-16-le")) // 2 <= MAX_CAPTION
        assert "cat " in plain


@pytest.mark.parametrize("count", [3, 12, 101])
def test_the_posix_command_really_rejoins_the_parts(tmp_path: Path, count: int) -> None:
    data = os.urandom(count * 7 - 3)
    name = "odd name's file.bin"
    parts = plan_parts(name, len(data), 7)
    assert len(parts) == count
    for part in parts:
        (tmp_path / part.name).write_bytes(data[part.offset:part.offset + part.length])
    (tmp_path / "unrelated.txt").write_bytes(b"not a part")
    posix, _ = rejoin_commands(name, count)
    subprocess.run(["sh", "-c", posix], cwd=tmp_path, check=True)
    joined = (tmp_path / name).read_bytes()
    assert hashlib.sha1(joined).hexdigest() == hashlib.sha1(data).hexdigest()
