"""Which of a feed's items a chat wants, and the option words of ``/rss add`` that say so.

A feed lists everything its tracker has (or everything of a show, in every quality), so a
subscription without a filter would download far more than anyone asked for. The filter is
kept deliberately simple, because it is typed in a chat and read back by ``/rss list``:

Patterns
    Matching ignores case. The title is *normalised*: lower-cased, and ``.``, ``_``, ``-``,
    ``[``, ``]``, ``(``, ``)`` and runs of white space all become one space, so
    ``Show.S01E02.1080p.WEB`` reads ``show s01e02 1080p web``. A pattern is normalised the
    same way and split into words; it matches when *every* word occurs somewhere in the title
    (as part of a title word or across several: a plain substring). Within a word, ``*``
    stands for any run of characters and ``?`` for one character, neither crossing a space
    (fnmatch-style, without brackets, which normalisation removes). So ``show s01`` matches
    ``Show.S01E02.1080p.WEB``, ``s01e0?`` matches episodes 1 to 9, and ``cam`` (an exclude)
    matches ``Movie.2026.CAM``; it would match ``Camera`` too, which is why exclusions are best
    a distinctive word.

An item is taken when it matches at least one include pattern (or there are none), no
exclude pattern, and its size is within the bounds. An item whose feed gives no size passes
the size bounds: refusing it would make a size bound silently drop whole feeds.

Option words
    ``include:PATTERN`` and ``exclude:PATTERN`` (each occurrence adds one pattern; quote a
    pattern with spaces, the caller splits words like a shell), ``min:SIZE``, ``max:SIZE``
    and ``newest:N`` (0 to 100: how many of the items already in the feed to download when
    it is added; by default none, only the ones that appear later).

Sizes
    A number, optionally with a fraction, and a unit: ``kB``, ``MB``, ``GB``, ``TB`` are
    decimal (1000ⁿ, as disk makers and most trackers' "GB" columns mean them); ``KiB``,
    ``MiB``, ``GiB``, ``TiB`` and the bare letters ``K``, ``M``, ``G``, ``T`` are binary
    (1024ⁿ, as the bot shows sizes). ``B`` or no unit is bytes. Units ignore case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from manager.errors import FeedError
from manager.units import human_size
from manager.usertext import show

__all__ = ["MAX_NEWEST", "MAX_PATTERNS", "MAX_PATTERN_CHARS", "FeedFilter", "FeedOptions",
           "normalise_title", "parse_feed_options", "parse_size"]

MAX_PATTERN_CHARS = 200
"""Longest pattern accepted, in characters."""

MAX_PATTERNS = 20
"""Most patterns in each of the include and exclude lists."""

MAX_NEWEST = 100
"""Most items of a feed's backlog that ``newest:N`` may add."""

_SEPARATORS = re.compile(r"[._\-\[\]()\s]+")
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([a-z]*)", re.IGNORECASE)
_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
    "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
}
_DASH = "\u2013"  # an en dash, between the size bounds
_OPTIONS = "include:PATTERN, exclude:PATTERN, min:SIZE, max:SIZE or newest:N"
_SIZE_FORM = "a size such as 700MB, 1.5GB or 4GiB"


@dataclass(frozen=True)
class FeedFilter:
    """Which items of a feed are downloaded (see the module's docstring for the rules).

    Attributes:
        include: patterns; an item must match at least one of them, when there are any.
        exclude: patterns; an item matching any of them is skipped.
        min_size: the smallest size taken, in bytes; None for no bound.
        max_size: the largest size taken, in bytes; None for no bound.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None

    def matches(self, title: str, size: int | None) -> bool:
        """Whether an item with this title and size is wanted.

        Parameters:
            title: the item's title as the feed gives it.
            size: its size in bytes; None when the feed does not say (it then passes the
                size bounds).

        Returns:
            True when the item passes the include, exclude and size rules.
        """
        name = normalise_title(title)
        if self.include and not any(_pattern_matches(p, name) for p in self.include):
            return False
        if any(_pattern_matches(p, name) for p in self.exclude):
            return False
        if size is not None:
            if self.min_size is not None and size < self.min_size:
                return False
            if self.max_size is not None and size > self.max_size:
                return False
        return True

    def describe(self) -> str:
        """The filter in one line for ``/rss list``.

        Returns:
            e.g. ``include "1080p", "720p" · exclude "cam" · 700.0 MiB`` en dash ``4.0 GiB``
            (``at least …`` or ``at most …`` for one bound), or ``everything`` when the
            filter takes every item.
        """
        parts = []
        if self.include:
            parts.append("include " + ", ".join(f'"{p}"' for p in self.include))
        if self.exclude:
            parts.append("exclude " + ", ".join(f'"{p}"' for p in self.exclude))
        if self.min_size is not None and self.max_size is not None:
            parts.append(f"{human_size(self.min_size)}{_DASH}{human_size(self.max_size)}")
        elif self.min_size is not None:
            parts.append(f"at least {human_size(self.min_size)}")
        elif self.max_size is not None:
            parts.append(f"at most {human_size(self.max_size)}")
        return " · ".join(parts) or "everything"

    def to_json(self) -> str:
        """The filter as stored in the database (compact JSON, keys sorted)."""
        return json.dumps({"include": list(self.include), "exclude": list(self.exclude),
                           "min_size": self.min_size, "max_size": self.max_size},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> FeedFilter:
        """Read a stored filter back.

        Parameters:
            text: what :meth:`to_json` gave; None or empty for a feed without a filter.

        Returns:
            The filter.

        Raises:
            FeedError: the stored text is not a filter (a damaged row).
        """
        if not text:
            return cls()
        try:
            data = json.loads(text)
            include = tuple(data.get("include") or ())
            exclude = tuple(data.get("exclude") or ())
            bounds = (data.get("min_size"), data.get("max_size"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise FeedError("the feed's stored filter is damaged") from exc
        if (not all(isinstance(p, str) for p in include + exclude)
                or not all(b is None or (isinstance(b, int) and not isinstance(b, bool))
                           for b in bounds)):
            raise FeedError("the feed's stored filter is damaged")
        return cls(include=include, exclude=exclude, min_size=bounds[0], max_size=bounds[1])


@dataclass(frozen=True)
class FeedOptions:
    """The option words of a feed command, read.

    Attributes:
        filter: the filter they describe (empty parts where none were given).
        newest: how many items of the feed's backlog to download when it is added.
        given: which option names were given (``include``, ``exclude``, ``min``, ``max``,
            ``newest``), so that a command changing a feed's options knows which to replace.
    """

    filter: FeedFilter = field(default_factory=FeedFilter)
    newest: int = 0
    given: frozenset[str] = frozenset()


def parse_feed_options(words: Sequence[str]) -> FeedOptions:
    """Read the option words of ``/rss add`` (already split, like a shell does).

    Parameters:
        words: e.g. ``["include:1080p", "exclude:cam", "max:4GiB", "newest:3"]``.

    Returns:
        The options.

    Raises:
        FeedError: an unknown or malformed word, an empty or too long pattern, too many
            patterns, a size that is not one (or negative), ``min`` above ``max``, ``newest``
            out of range or an option other than a pattern given twice; the message names
            the word and the form expected.
    """
    patterns: dict[str, list[str]] = {"include": [], "exclude": []}
    bounds: dict[str, int] = {}
    bound_words: dict[str, str] = {}
    newest = 0
    given: set[str] = set()
    for word in words:
        name, colon, value = word.partition(":")
        name = name.strip().lower()
        if not colon or name not in ("include", "exclude", "min", "max", "newest"):
            raise FeedError(f"unknown option {show(word)}: expected {_OPTIONS}")
        if name in given and name not in patterns:
            raise FeedError(f"{show(word)}: {name} is given twice, expected it once")
        given.add(name)
        if name in patterns:
            patterns[name].append(_pattern(name, value, word, len(patterns[name])))
        elif name == "newest":
            newest = _newest(value, word)
        else:
            size = parse_size(value)
            if value.strip().startswith("-"):
                raise FeedError(f"{show(word)} is negative: expected {name}:SIZE, {_SIZE_FORM}")
            if size is None:
                raise FeedError(f"{show(word)} is not a size: expected {name}:SIZE, "
                                f"{_SIZE_FORM}")
            bounds[name], bound_words[name] = size, word
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise FeedError(f"{show(bound_words['min'])} is above {show(bound_words['max'])}: "
                        "expected min at most max")
    return FeedOptions(
        filter=FeedFilter(include=tuple(patterns["include"]), exclude=tuple(patterns["exclude"]),
                          min_size=bounds.get("min"), max_size=bounds.get("max")),
        newest=newest, given=frozenset(given),
    )


def normalise_title(text: str) -> str:
    """A title or pattern as matching sees it: lower case, separators turned into spaces.

    Parameters:
        text: e.g. ``"Show.S01E02.[1080p]"``.

    Returns:
        e.g. ``"show s01e02 1080p"``.
    """
    return _SEPARATORS.sub(" ", text.lower()).strip()


def parse_size(text: str) -> int | None:
    """A size in bytes from words such as ``700MB``, ``1.5 GiB``, ``2g`` or ``12345``.

    Decimal units (kB, MB, GB, TB) are powers of 1000; binary ones (KiB…TiB) and the bare
    letters K, M, G, T are powers of 1024 (see the module's docstring).

    Parameters:
        text: the size; surrounding blanks are ignored.

    Returns:
        Whole bytes (rounded down), or None when the text is not a size (a sign, an unknown
        unit, garbage).
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None or match.group(2).lower() not in _UNITS:
        return None
    number, unit = match.group(1), _UNITS[match.group(2).lower()]
    if "." not in number:
        return int(number) * unit
    whole, _, fraction = number.partition(".")
    # Exact arithmetic: 1.1GB is 1100000000 bytes, not a float's 1099999999.
    return (int(whole or "0") * 10**len(fraction) + int(fraction)) * unit // 10**len(fraction)


def _pattern(name: str, value: str, word: str, count: int) -> str:
    pattern = value.strip()
    if not normalise_title(pattern):
        raise FeedError(f"{show(word)} has no words to match: expected {name}:PATTERN, "
                        f'e.g. {name}:1080p or {name}:"show s01"')
    if len(pattern) > MAX_PATTERN_CHARS:
        raise FeedError(f"{show(word)} is too long: expected a pattern of at most "
                        f"{MAX_PATTERN_CHARS} characters")
    if count >= MAX_PATTERNS:
        raise FeedError(f"too many {name} patterns: expected at most {MAX_PATTERNS}")
    return pattern


def _newest(value: str, word: str) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit() or int(text) > MAX_NEWEST:
        raise FeedError(f"{show(word)} is not a count: expected newest:N with N from 0 to "
                        f"{MAX_NEWEST}")
    return int(text)


def _pattern_matches(pattern: str, title: str) -> bool:
    """Whether every word of ``pattern`` occurs in the normalised ``title``."""
    return all(re.search(_word_regex(word), title) for word in normalise_title(pattern).split())


def _word_regex(word: str) -> str:
    return "".join("[^ ]*" if c == "*" else "[^ ]" if c == "?" else re.escape(c) for c in word)
