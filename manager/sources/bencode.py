"""A strict walk over a .torrent's bencoding, before torf decodes it.

torf decodes into dictionaries where a repeated key silently wins, and recurses once per
nesting level; aria2 1.36 **crashes (SIGSEGV)** on a torrent with a repeated key inside the
info dictionary, from the command line and from ``aria2.addTorrent`` alike. This walk refuses
what they do not check, and finds the info dictionary's exact bytes, whose SHA-1 is the
info-hash the swarm knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from manager.usertext import show_bytes

__all__ = ["BencodeError", "find_info"]

_MAX_DEPTH = 64  # bencode nesting; torf recurses per level
_BENCODE_INT = re.compile(rb"0|-?[1-9][0-9]{0,19}")
_BENCODE_LEN = re.compile(rb"0|[1-9][0-9]{0,10}")


class BencodeError(ValueError):
    """The bytes are not a well-formed, unambiguous bencoded dictionary with an ``info``.

    Its message is a reason a user can read ("it is truncated"), to follow "torrent file is
    damaged: ".
    """


@dataclass(slots=True)
class _Open:
    """A list or dictionary being scanned by :func:`find_info`."""

    start: int
    keys: set[bytes] | None  # None for a list
    key: bytes | None = None  # a dictionary's key whose value comes next


def find_info(data: bytes) -> tuple[int, int]:
    """Walk bencoded ``data`` without building it, and find the info dictionary's bytes.

    torf decodes into dictionaries where a repeated key silently wins, and recurses once per
    nesting level; aria2 crashes on repeated keys. This walk checks what they do not.

    Parameters:
        data: the whole .torrent file.

    Returns:
        ``(start, end)``: the slice of ``data`` holding the root dictionary's ``info`` value.

    Raises:
        BencodeError: not bencoded, not a dictionary, nested too deeply, a repeated key,
            or no ``info``.
    """
    if data[:1] != b"d":
        raise BencodeError("it is not a bencoded torrent file")
    size = len(data)
    pos = 0
    stack: list[_Open] = []
    info: tuple[int, int] | None = None
    while True:
        if pos >= size:
            raise BencodeError("it is truncated")
        top = stack[-1] if stack else None
        char = data[pos : pos + 1]
        if top is not None and top.keys is not None and top.key is None and char != b"e":
            key_start, pos = _scan_string(data, pos)
            key = data[key_start:pos]
            if key in top.keys:
                raise BencodeError(f"a dictionary has the key {show_bytes(key)} twice")
            top.keys.add(key)
            top.key = key
            continue
        if char in (b"l", b"d"):
            if len(stack) >= _MAX_DEPTH:
                raise BencodeError("it is nested too deeply")
            stack.append(_Open(start=pos, keys=set() if char == b"d" else None))
            pos += 1
            continue
        if char == b"e":
            if top is None or top.key is not None:
                raise BencodeError("it is not a bencoded torrent file")
            stack.pop()
            start, pos = top.start, pos + 1
        elif char == b"i":
            end = data.find(b"e", pos + 1, pos + 23)
            if end < 0 or not _BENCODE_INT.fullmatch(data, pos + 1, end):
                raise BencodeError("it has a malformed or impossibly large number")
            start, pos = pos, end + 1
        else:
            start = pos
            _, pos = _scan_string(data, pos)
        # One value [start, pos) is complete.
        if not stack:
            if pos != size:
                raise BencodeError("it has data after its end")
            if info is None:
                raise BencodeError("it has no info dictionary")
            return info
        parent = stack[-1]
        if parent.keys is not None:
            if len(stack) == 1 and parent.key == b"info":
                info = (start, pos)
            parent.key = None


def _scan_string(data: bytes, pos: int) -> tuple[int, int]:
    """Read a bencoded string header at ``pos``; return ``(content_start, content_end)``."""
    colon = data.find(b":", pos, pos + 12)
    if colon < 0 or not _BENCODE_LEN.fullmatch(data, pos, colon):
        raise BencodeError("it is not a bencoded torrent file")
    end = colon + 1 + int(data[pos:colon])
    if end > len(data):
        raise BencodeError("it is truncated")
    return colon + 1, end
