"""How a running ariabot is doing inside: what ``ariabot status`` and ``ariabot doctor`` show.

The control socket's ``health`` operation answers :func:`health_json`;
:func:`supervisor.doctor.health_checks` turns the answer into report lines. Two things are
reported: aria2's notification listener (one that failed was restarted, and it says so),
what the running aria2c cannot download (hybrid torrents before aria2 1.37), and whether the
database answers (:func:`database_health`: a PostgreSQL server can go away while ariabot
goes on downloading).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from manager import StoreError, TorrentManager, hybrid_limitation, masked_url, version_text

__all__ = ["database_health", "health_json"]


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


async def database_health(manager: TorrentManager) -> dict[str, Any]:
    """Whether the store's database answers now: one read by primary key, the cheapest query
    there is, through the store's own thread and connection (so a lost connection is seen
    and replaced as for any other call).

    Keys: ``name`` (its URL with the password masked), ``reachable``, ``error`` (one line,
    or null).
    """
    name = masked_url(manager.store.url)
    try:
        await manager.store.downloads.get(0)
    except StoreError as error:
        return {"name": name, "reachable": False, "error": " ".join(str(error).split())}
    return {"name": name, "reachable": True, "error": None}
