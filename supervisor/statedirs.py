"""Whether the data dir and the download dir can be used, checked before anything is made.

A data dir that is a file, lies below a file, or cannot be read and written by this user
would otherwise surface as a traceback (or as bare errno text) in whatever command touched
it first; a bad download dir would be found only after the data dir and the aria2 session
were created. Each problem is one sentence naming the setting, and checking changes nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from supervisor.config import Settings

__all__ = ["directory_problem", "state_dirs_problem"]


def directory_problem(path: Path) -> str | None:
    """Why ariabot cannot keep files in ``path``; None when it can (a directory this user
    may read, write and enter, or a missing one that can be created)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return _creation_problem(path)
    except NotADirectoryError:
        return _creation_problem(path)
    except OSError as error:
        return f"{path} cannot be reached ({error.strerror})"
    if not stat.S_ISDIR(mode):
        return f"{path} is not a directory"
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return f"{path} is not readable and writable by this user"
    return None


def _creation_problem(path: Path) -> str | None:
    """Why the missing ``path`` cannot be created (its nearest existing parent must be a
    directory this user may write in)."""
    anchor = path.parent
    while anchor != anchor.parent:
        try:
            mode = anchor.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            anchor = anchor.parent
            continue
        except OSError as error:
            return f"{path} cannot be created ({anchor}: {error.strerror})"
        break
    else:
        mode = anchor.stat().st_mode
    if not stat.S_ISDIR(mode):
        return f"{path} cannot be created: {anchor} is not a directory"
    if not os.access(anchor, os.W_OK | os.X_OK):
        return f"{path} cannot be created: {anchor} is not writable by this user"
    return None


def state_dirs_problem(settings: Settings, *, downloads: bool = True) -> str | None:
    """The first unusable directory of ``settings`` as ``VARIABLE: why``; None when both
    (or, without ``downloads``, the data dir alone) can be used."""
    checks = [("ARIABOT_DATA_DIR", settings.data_dir)]
    if downloads:
        checks.append(("ARIABOT_DOWNLOAD_DIR", settings.download_dir))
    for variable, path in checks:
        problem = directory_problem(path)
        if problem is not None:
            return f"{variable}: {problem}"
    return None
