"""Find the aria2c binary and check that it is recent enough for ariabot."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["MIN_VERSION", "Aria2cUnusable", "locate_aria2c"]

MIN_VERSION = (1, 33, 0)
"""``bt-load-saved-metadata`` (restored magnets keep their metadata) came in aria2 1.33."""

_INSTALL_HINT = "install it with 'sudo apt-get install aria2' (or set ARIABOT_ARIA2C to its path)"


class Aria2cUnusable(RuntimeError):
    """aria2c is missing, does not run, or is too old; the message says how to fix it.

    Attributes:
        problem: what is wrong, in words.
        fix: how to fix it (the install hint).
    """

    def __init__(self, problem: str, fix: str = _INSTALL_HINT) -> None:
        super().__init__(f"{problem}: {fix}")
        self.problem = problem
        self.fix = fix


def locate_aria2c(name: str) -> tuple[Path, tuple[int, ...]]:
    """Resolve ``name`` (a path or a command on PATH) and read its version.

    Returns:
        The executable's path and its version as a tuple of ints.

    Raises:
        Aria2cUnusable: not found, not runnable, or older than :data:`MIN_VERSION`.
    """
    found = shutil.which(name)
    if found is None:
        raise Aria2cUnusable(f"aria2c not found ({name!r})")
    try:
        result = subprocess.run(
            [found, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Aria2cUnusable(f"{found} does not run ({error})") from None
    match = re.search(r"aria2 version (\d+)\.(\d+)\.(\d+)", result.stdout)
    if result.returncode != 0 or match is None:
        raise Aria2cUnusable(f"{found} is not a working aria2c")
    version = tuple(int(part) for part in match.groups())
    if version < MIN_VERSION:
        wanted = ".".join(map(str, MIN_VERSION))
        have = ".".join(map(str, version))
        raise Aria2cUnusable(f"aria2c {have} is too old (ariabot needs {wanted} or newer)")
    return Path(found), version
