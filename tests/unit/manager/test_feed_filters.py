"""Tests of manager.feeds.filters: which titles and sizes a feed filter takes, how it reads
back, and the option words of ``/rss add`` (every malformed one refused, by name)."""

from __future__ import annotations

import pytest

from manager.errors import FeedError
from manager.feeds import (
    MAX_PATTERNS,
    FeedFilter,
    FeedOptions,
    normalise_title,
    parse_feed_options,
    parse_size,
)

MIB = 1024**2
GIB = 1024**3


# --------------------------------------------------------------------------------------------
# Matching


def test_normalising_turns_separators_into_single_spaces():
    assert normalise_title("  [Group]_Show.S01E02-(1080p)  WEB\t") == "group show s01e02 1080p web"


@pytest.mark.parametrize(("pattern", "title", "wanted"), [
    ("show s01", "Show.S01E02.1080p.WEB", True),
    ("1080p show", "Show.S01E02.1080p.WEB", True),  # words in any order
    ("show s01", "Show.S02E01.1080p.WEB", False),
    ("show s01", "Other.S01E01", False),  # every word must occur
    ("Show.S01", "show s01e05", True),  # the pattern is normalised too
    ("s01e0?", "Show.S01E05.720p", True),
    ("s01e0?", "Show.S01E10.720p", False),
    ("s0*e02", "Show.S01E02", True),
    ("show*1080p", "Show.S01E02.1080p", False),  # * does not cross a space
    ("s01e02 ", "Show.S01E02", True),
    ("a+b", "Aab", False),  # no regex leaks through
    ("a+b", "A+B", True),
    ("x|y", "x", False),
])
def test_include_pattern(pattern, title, wanted):
    assert FeedFilter(include=(pattern,)).matches(title, None) is wanted


def test_any_include_pattern_is_enough():
    rule = FeedFilter(include=("1080p", "720p"))
    assert [rule.matches(t, None) for t in ("A.720p", "A.1080p", "A.2160p")] == [
        True, True, False]


def test_exclude_skips_a_matching_title():
    rule = FeedFilter(exclude=("cam",))
    assert rule.matches("Movie.2026.CAM", None) is False
    assert rule.matches("Movie.2026.1080p.WEB", None) is True


def test_exclude_wins_over_include():
    rule = FeedFilter(include=("movie",), exclude=("cam",))
    assert rule.matches("Movie.2026.CAM", None) is False
    assert rule.matches("Movie.2026.BluRay", None) is True


@pytest.mark.parametrize(("size", "wanted"), [
    (700 * MIB - 1, False), (700 * MIB, True), (4 * GIB, True), (4 * GIB + 1, False),
    (None, True),  # an unknown size passes the bounds
])
def test_size_bounds(size, wanted):
    assert FeedFilter(min_size=700 * MIB, max_size=4 * GIB).matches("A", size) is wanted


def test_an_empty_filter_takes_everything():
    assert FeedFilter().matches("", 0) is True
    assert FeedFilter().describe() == "everything"


@pytest.mark.parametrize(("rule", "text"), [
    (FeedFilter(include=("1080p", "720p"), exclude=("cam",), min_size=700 * MIB,
                max_size=4 * GIB),
     'include "1080p", "720p" · exclude "cam" · 700.0 MiB\u20134.0 GiB'),
    (FeedFilter(min_size=GIB), "at least 1.0 GiB"),
    (FeedFilter(max_size=512), "at most 512 B"),
    (FeedFilter(exclude=("show s01",)), 'exclude "show s01"'),
])
def test_describe(rule, text):
    assert rule.describe() == text


def test_json_round_trip():
    rule = FeedFilter(include=("1080p", "show s01"), exclude=("cam",), min_size=1, max_size=None)
    assert FeedFilter.from_json(rule.to_json()) == rule
    assert FeedFilter.from_json(FeedFilter().to_json()) == FeedFilter()


@pytest.mark.parametrize("text", [None, ""])
def test_no_stored_filter_is_the_empty_one(text):
    assert FeedFilter.from_json(text) == FeedFilter()


@pytest.mark.parametrize("text", [
    "{", "[]", '"x"', '{"include": [1]}', '{"min_size": "5"}', '{"max_size": true}',
    '{"include": 5}',
])
def test_a_damaged_stored_filter_is_refused(text):
    with pytest.raises(FeedError, match="stored filter is damaged"):
        FeedFilter.from_json(text)


# --------------------------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize(("text", "size"), [
    ("12345", 12345), ("0", 0), ("100B", 100), ("1kB", 1000), ("700MB", 700 * 1000**2),
    ("1.5GB", 1_500_000_000), ("1.1GB", 1_100_000_000), ("2TB", 2 * 1000**4),
    ("4GiB", 4 * GIB), ("700 MiB", 700 * MIB), ("1KiB", 1024), ("1TiB", 1024**4),
    ("500M", 500 * MIB), ("2g", 2 * GIB), ("1k", 1024), ("3T", 3 * 1024**4),
    (".5G", GIB // 2), ("1.4 GiB", 14 * GIB // 10), ("  8 mb ", 8 * 1000**2),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "-5MB", "1.2.3GB", "5XB", "1e9", "1,5GB", "٣MB"])
def test_not_sizes(text):
    assert parse_size(text) is None


# --------------------------------------------------------------------------------------------
# Option words


def test_no_words_are_the_defaults():
    assert parse_feed_options([]) == FeedOptions(filter=FeedFilter(), newest=0,
                                                 given=frozenset())


def test_every_option():
    options = parse_feed_options(["include:1080p", "include:show s01", "EXCLUDE:cam",
                                  "min:700MB", "max:4GiB", "newest:3"])
    assert options == FeedOptions(
        filter=FeedFilter(include=("1080p", "show s01"), exclude=("cam",),
                          min_size=700 * 1000**2, max_size=4 * GIB),
        newest=3, given=frozenset({"include", "exclude", "min", "max", "newest"}),
    )


def test_given_names_only_what_was_given():
    options = parse_feed_options(["max:1G"])
    assert options.given == frozenset({"max"})
    assert options.filter == FeedFilter(max_size=GIB)


def test_a_pattern_keeps_colons_after_the_first():
    assert parse_feed_options(["include:a:b"]).filter.include == ("a:b",)


@pytest.mark.parametrize("count", [0, 100])
def test_newest_bounds_are_accepted(count):
    assert parse_feed_options([f"newest:{count}"]).newest == count


def test_min_equal_to_max_is_accepted():
    assert parse_feed_options(["min:1GB", "max:1GB"]).filter.min_size == 1000**3


def test_the_most_patterns_are_accepted():
    words = [f"include:p{n}" for n in range(MAX_PATTERNS)]
    assert len(parse_feed_options(words).filter.include) == MAX_PATTERNS


@pytest.mark.parametrize(("words", "message"), [
    (["1080p"], r"^unknown option '1080p': expected include:PATTERN, exclude:PATTERN, "
                r"min:SIZE, max:SIZE or newest:N$"),
    (["size:5GB"], r"^unknown option 'size:5GB': expected include:PATTERN"),
    (["include:"], r"^'include:' has no words to match: expected include:PATTERN"),
    (["exclude:._-"], r"^'exclude:\._-' has no words to match: expected exclude:PATTERN"),
    ([f"include:{'x' * 201}"], r"is too long: expected a pattern of at most 200 characters$"),
    ([f"exclude:p{n}" for n in range(MAX_PATTERNS + 1)],
     r"^too many exclude patterns: expected at most 20$"),
    (["min:abc"], r"^'min:abc' is not a size: expected min:SIZE, a size such as 700MB"),
    (["max:5XB"], r"^'max:5XB' is not a size: expected max:SIZE"),
    (["max:"], r"^'max:' is not a size"),
    (["min:-5MB"], r"^'min:-5MB' is negative: expected min:SIZE"),
    (["min:2GB", "max:1GB"], r"^'min:2GB' is above 'max:1GB': expected min at most max$"),
    (["newest:101"], r"^'newest:101' is not a count: expected newest:N with N from 0 to 100$"),
    (["newest:-1"], r"^'newest:-1' is not a count"),
    (["newest:x"], r"^'newest:x' is not a count"),
    (["newest:³"], r"^'newest:³' is not a count"),
    (["min:1", "min:2"], r"^'min:2': min is given twice, expected it once$"),
    (["newest:1", "newest:1"], r"^'newest:1': newest is given twice"),
])
def test_bad_option_words_are_refused_by_name(words, message):
    with pytest.raises(FeedError, match=message):
        parse_feed_options(words)
