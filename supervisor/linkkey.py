"""The key signed links are made with: 32 random bytes in ``<data dir>/link.key``, 0600.

Created once, from the first byte readable by the owner only, and kept across restarts so
that links outlive a restart of ariabot; deleting the file revokes every link at the next
start. The key is written to a temporary file, flushed to disk and renamed into place, so a
crash leaves either no key or a whole one. An empty or short key (left by an older ariabot
that crashed between creating the file and writing it) is replaced: a link is signed only
with a key that was read back whole, so no link was ever signed with it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

__all__ = ["KEY_BYTES", "LinkKeyError", "load_link_key", "read_link_key"]

KEY_BYTES = 32
"""The key's length: HMAC-SHA256's block-sized security, 256 bits."""


class LinkKeyError(OSError):
    """The key file cannot be made or read, or is not a key (too long, others may read it)."""


def read_link_key(path: Path) -> bytes | None:
    """The key in ``path``; None when there is none yet, or only an empty or short one
    from a crash (changes nothing: ``ariabot doctor`` uses it).

    Raises:
        LinkKeyError: it cannot be read, is longer than a key, or is readable by others
            (then it may have leaked: delete it, and every link with it).
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LinkKeyError(f"cannot read {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        key = handle.read(KEY_BYTES + 1)
    if not stat.S_ISREG(status.st_mode) or status.st_mode & 0o077:
        raise LinkKeyError(f"{path} may be read by others (mode "
                           f"{stat.S_IMODE(status.st_mode):o}); delete it (every link dies "
                           "with it) and ariabot makes a new one")
    if len(key) > KEY_BYTES:
        raise LinkKeyError(f"{path} is not a link key (more than {KEY_BYTES} bytes); "
                           "delete it and ariabot makes a new one")
    return key if len(key) == KEY_BYTES else None


def load_link_key(path: Path) -> bytes:
    """The key in ``path``, made when missing, empty or short (see the module's notes).

    Raises:
        LinkKeyError: as :func:`read_link_key`, or a new key cannot be written.
    """
    key = read_link_key(path)
    if key is not None:
        return key
    key = secrets.token_bytes(KEY_BYTES)
    _write_atomically(path, key)
    if read_link_key(path) != key:
        raise LinkKeyError(f"{path} did not keep the key written to it")
    return key


def _write_atomically(path: Path, key: bytes) -> None:
    """A 0600 temporary file beside ``path``, flushed, renamed over it, the folder flushed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise LinkKeyError(f"cannot create {path}: {error.strerror}") from None
