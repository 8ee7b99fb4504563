"""How a running ariabot is doing inside: what ``ariabot status`` and ``ariabot doctor`` show.

The control socket's ``health`` operation answers :func:`health_json`;
:func:`supervisor.doctor.health_checks` turns the answer into report lines. Two things are
reported: aria2's notification listener (one that failed was restarted, and it says so) and
what the running aria2c cannot download (hybrid torrents before aria2 1.37).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from manager import TorrentManager, hybrid_limitation, version_text

__all__ = ["health_json"]


def health_json(manager: TorrentManager) -> dict[str, Any]:
    """The ``health`` answer: the aria2c version and the notification listener's state.

    Keys: ``aria2c_version`` (``"1.36.0"`` or null), ``limitations`` (sentences, possibly
    empty), ``notifications`` (null before the manager started, else ``running``,
    ``connected``, ``deaths``, ``last_error``, ``restarting``).
    """
    version = manager.config.aria2_version
    limitation = hybrid_limitation(version)
    listener = manager.listener_health()
    return {
        "aria2c_version": version_text(version) if version is not None else None,
        "limitations": [limitation] if limitation else [],
        "notifications": None if listener is None else asdict(listener),
    }
