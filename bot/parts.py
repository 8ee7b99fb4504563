"""How a file too big for one upload is cut into numbered parts, and how to rejoin them.

Pure functions: a file of ``size`` bytes and an upload limit give the byte ranges to send
(``name.001``, ``name.002``, …, each within the limit) and the captions that go with them;
the first part's caption says how standard tools put the file back together (``cat`` on
Linux and macOS, ``copy /b`` on Windows). The numbers are zero-padded to the same width, so
the parts sort in order and a shell glob lists them in order.
"""

from __future__ import annotations

import html
import math
import shlex
from dataclasses import dataclass

from manager import human_size

__all__ = ["MAX_CAPTION", "Part", "part_caption", "plan_parts", "rejoin_commands"]

MAX_CAPTION = 1024
"""Telegram's limit for a caption, in UTF-16 code units after entity parsing."""
_MIN_DIGITS = 3
_WINDOWS_LIST_MAX = 8
"""Up to this many parts the Windows command names each one; beyond, a wildcard."""


@dataclass(frozen=True)
class Part:
    """One upload of a file: bytes ``offset`` to ``offset + length`` sent as ``name``.

    Attributes:
        number: 1-based.
        count: how many parts the file has (1: the file is sent whole, under its own name).
        offset: first byte in the file.
        length: bytes in this part (> 0, within the limit).
        name: the document's file name: the file's own name, or ``<file>.001`` and so on.
    """

    number: int
    count: int
    offset: int
    length: int
    name: str

    @property
    def whole(self) -> bool:
        """The file fits in one upload: it is sent as itself, not as a numbered part."""
        return self.count == 1


def _digits(count: int) -> int:
    return max(_MIN_DIGITS, len(str(count)))


def plan_parts(name: str, size: int, limit: int) -> tuple[Part, ...]:
    """The uploads that send a file of ``size`` bytes with at most ``limit`` bytes each.

    Parameters:
        name: the file's name (no folder).
        size: its size in bytes (an empty file is one empty upload).
        limit: the largest upload, in bytes (> 0).

    Returns:
        One :class:`Part` named ``name`` when the file fits; else ``ceil(size / limit)``
        parts named ``name.001``… of ``limit`` bytes each, the last one shorter.

    Raises:
        ValueError: a negative size or a limit below 1.
    """
    if size < 0 or limit < 1:
        raise ValueError(f"cannot split {size} bytes into uploads of {limit}")
    if size <= limit:
        return (Part(1, 1, 0, size, name),)
    count = math.ceil(size / limit)
    width = _digits(count)
    return tuple(
        Part(number, count, (number - 1) * limit,
             min(limit, size - (number - 1) * limit), f"{name}.{number:0{width}d}")
        for number in range(1, count + 1)
    )


def _windows_quote(name: str) -> str:
    return f'"{name}"' if any(c in name for c in ' &()[]{}^=;!\'+,`~') else name


def rejoin_commands(name: str, count: int, *, list_parts: bool = True) -> tuple[str, str]:
    """The commands that rejoin ``count`` parts of ``name``: ``(posix, windows)``.

    The POSIX one is ``cat name.0* > name`` (a glob of the padded numbers, in order); the
    Windows one names each part (``copy /b name.001+name.002 name``) when there are a few
    and ``list_parts`` allows it, else uses a wildcard, which ``copy`` concatenates in name
    order on NTFS.
    """
    width = _digits(count)
    # While every number starts with 0, name.0* matches them all (and nothing else).
    pattern = "0*" if count < 10 ** (width - 1) else "[0-9]" * width
    posix = f"cat {shlex.quote(name)}.{pattern} > {shlex.quote(name)}"
    if list_parts and count <= _WINDOWS_LIST_MAX:
        sources = "+".join(_windows_quote(f"{name}.{n:0{width}d}") for n in range(1, count + 1))
    else:
        sources = _windows_quote(f"{name}.{'?' * width}")
    return posix, f"copy /b {sources} {_windows_quote(name)}"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def part_caption(part: Part, size: int) -> str | None:
    """The HTML caption of a part: which part of which file; on the first part also how
    to rejoin them. None for a file sent whole (its name says it all).

    The caption stays within Telegram's 1024 characters whatever the name's length: the
    Windows command falls back to a wildcard, then is left out.

    Parameters:
        part: the part being sent.
        size: the whole file's size in bytes.
    """
    if part.whole:
        return None
    name = part.name.rsplit(".", 1)[0]
    head = f"{name} · part {part.number}/{part.count} ({human_size(size)} in all)"
    if part.number != 1:
        return f"<b>{html.escape(head[:MAX_CAPTION])}</b>"
    intro = f"Sent in {part.count} parts. Once you have them all, in one folder:"
    for list_parts, windows_line in ((True, True), (False, True), (False, False)):
        posix, windows = rejoin_commands(name, part.count, list_parts=list_parts)
        lines = [head, intro, posix] + ([f"Windows: {windows}"] if windows_line else [])
        if _utf16_len("\n".join(lines)) <= MAX_CAPTION:
            break
    html_lines = [f"<b>{html.escape(head)}</b>", html.escape(intro),
                  f"<code>{html.escape(posix)}</code>"]
    if windows_line:
        html_lines.append(f"Windows: <code>{html.escape(windows)}</code>")
    return "\n".join(html_lines)
