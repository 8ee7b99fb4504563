"""What ``ariabot``'s exit codes mean: one table for the code, the systemd unit and the docs.

An init system decides from the exit code of ``ariabot run`` whether to start it again, so
each code says whether waiting can help. ``deploy/ariabot.service`` restarts on failure
except for the codes in :data:`NOT_RESTARTED` (``RestartPreventExitStatus=``); the README's
and ``docs/operations.md``'s tables say the same, and a unit test checks all three agree.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_NOT_RUNNING",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "NOT_RESTARTED",
]

EXIT_OK = 0
"""``run``: stopped on request (SIGINT/SIGTERM). Other commands: done."""

EXIT_ERROR = 1
"""``run``: aria2c could not be kept running (FATAL), or the Bot API could not be reached
at start: it may pass, so an init system should start ariabot again. Other commands: the
request was refused or the download failed (the reason is printed)."""

EXIT_USAGE = 2
"""A human must act; starting again cannot help: bad configuration or arguments, aria2c
missing or too old, a data or download dir that cannot be used, another ariabot on the data
dir, the token rejected by Telegram, or an ``ARIABOT_TELEGRAM_API_URL`` that does not answer
like a Bot API server."""

EXIT_NOT_RUNNING = 3
"""A local command found no ``ariabot run`` to talk to."""

EXIT_TIMEOUT = 4
"""``add --wait --timeout`` stopped waiting; the download goes on in the background."""

EXIT_BROKEN_PIPE = 128 + 13
"""A local command's reader left before its output ended (``ariabot list | head -1``): the
code a shell shows for git or coreutils killed by SIGPIPE, so ``set -o pipefail`` scripts see
the same; without ``pipefail`` the pipeline's status is the reader's."""

NOT_RESTARTED = frozenset({EXIT_USAGE})
"""Exit codes after which systemd must not restart ``ariabot run``."""
