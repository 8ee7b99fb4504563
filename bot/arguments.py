"""Command arguments as users type them: download ids (``3``, ``#3``) and file numbers.

Parsed strictly here, once, so every handler refuses the same malformed input the same way
(a ``ValueError``, which a handler answers with the command's usage line).
"""

from __future__ import annotations

import re

__all__ = ["parse_download_id", "parse_selection"]

_MAX_FILE_NUMBER = 100_000

_ID_RE = re.compile(r"#?([1-9][0-9]{0,11})")
_SELECTION_RE = re.compile(r"[0-9]{1,6}(?:-[0-9]{1,6})?(?:,[0-9]{1,6}(?:-[0-9]{1,6})?)*")


def parse_download_id(text: str) -> int:
    """A download id as typed: ``3`` or ``#3``.

    Raises:
        ValueError: anything else.
    """
    match = _ID_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a download id: {text!r}")
    return int(match.group(1))


def parse_selection(text: str) -> list[int]:
    """File numbers as typed: ``1,3-5`` → ``[1, 3, 4, 5]`` (sorted, without repeats).

    Raises:
        ValueError: not a list of numbers and ranges, a zero, a reversed range, or a number
            above 100000.
    """
    compact = re.sub(r"\s+", "", text)
    if not _SELECTION_RE.fullmatch(compact):
        raise ValueError("file numbers look like 1,3-5")
    chosen: set[int] = set()
    for part in compact.split(","):
        low_text, _, high_text = part.partition("-")
        low = int(low_text)
        high = int(high_text) if high_text else low
        if low < 1 or high < low or high > _MAX_FILE_NUMBER:
            raise ValueError("file numbers start at 1 and a range goes up, like 3-5")
        chosen.update(range(low, high + 1))
    return sorted(chosen)
