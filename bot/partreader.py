"""A byte range of a file on disk as a file object, so an upload streams it from disk.

python-telegram-bot hands a file object given as ``InputFile(obj, read_file_handle=False)``
to httpx untouched, and httpx's multipart encoder reads it in 64 KiB chunks while the
request goes out: it asks for the length with ``seek(0, SEEK_END)``/``tell()`` (there is no
``fileno()``, so it cannot ``fstat`` the whole file) and rewinds with ``seek(0)`` before it
sends (so a retried request sends the same bytes again). Only one chunk is in memory at a
time, whatever the part's size.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

__all__ = ["PartReader"]


class PartReader(io.RawIOBase):
    """Bytes ``offset`` to ``offset + length`` of ``path``, read-only and seekable.

    Positions are relative to the part: ``seek(0)`` is its first byte, ``seek(0, SEEK_END)``
    its length. :attr:`sent` tells how far the upload has read.

    Parameters:
        path: the file.
        offset: the part's first byte in the file.
        length: the part's size.

    Raises:
        OSError: the file cannot be opened.
    """

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__()
        self._file = path.open("rb", buffering=0)
        self._offset = offset
        self._length = length
        self._position = 0
        self._furthest = 0
        self.name = path.name

    @property
    def length(self) -> int:
        """The part's size in bytes."""
        return self._length

    @property
    def sent(self) -> int:
        """The most bytes read so far (handed to the upload), whatever rewinds came since."""
        return self._furthest

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """Always True."""
        return True

    def tell(self) -> int:
        """The position within the part."""
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move within the part (clamped to it); return the new position."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._length}[whence]
        self._position = min(max(0, base + offset), self._length)
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Read at most ``len(buffer)`` bytes of the part; 0 at its end."""
        wanted = min(len(buffer), self._length - self._position)
        if wanted <= 0:
            return 0
        view = memoryview(buffer)[:wanted]
        got = os.preadv(self._file.fileno(), [view], self._offset + self._position)
        self._position += got
        self._furthest = max(self._furthest, self._position)
        return got

    def close(self) -> None:
        """Close the file."""
        if not self.closed:
            self._file.close()
        super().close()
