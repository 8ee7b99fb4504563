"""The key signed links are made with: 32 random bytes in ``<data dir>/link.key``, 0600.

Created once, from the first byte readable by the owner only, and kept across restarts so
that links outlive a restart of ariabot; deleting the file revokes every link at the next
start.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

__all__ = ["KEY_BYTES", "LinkKeyError", "load_link_key"]

KEY_BYTES = 32
"""The key's length: HMAC-SHA256's block-sized security, 256 bits."""


class LinkKeyError(OSError):
    """The key file cannot be made or read, or is not a key (wrong size, others may read it)."""


def load_link_key(path: Path) -> bytes:
    """The key in ``path``, created (0600, ``O_EXCL``) when missing.

    Raises:
        LinkKeyError: it cannot be written or read, has the wrong size, or is readable by
            others (then it may have leaked: delete it, and every link with it).
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    except OSError as error:
        raise LinkKeyError(f"cannot create {path}: {error.strerror}") from None
    else:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise LinkKeyError(f"cannot read {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        key = handle.read(KEY_BYTES + 1)
    if not stat.S_ISREG(status.st_mode) or status.st_mode & 0o077:
        raise LinkKeyError(f"{path} may be read by others (mode "
                           f"{stat.S_IMODE(status.st_mode):o}); delete it (every link dies "
                           "with it) and ariabot makes a new one")
    if len(key) != KEY_BYTES:
        raise LinkKeyError(f"{path} is not a link key ({len(key)} bytes, not {KEY_BYTES}); "
                           "delete it and ariabot makes a new one")
    return key
