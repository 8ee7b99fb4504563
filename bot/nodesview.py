"""The admin chat's ``/nodes``: every machine sharing the database, a line each."""

from __future__ import annotations

import html
from collections.abc import Sequence

from manager import NodeStatus, node_text

__all__ = ["nodes_text"]


def nodes_text(nodes: Sequence[NodeStatus]) -> str:
    """HTML: a title and a line per node (the same line as ``ariabot nodes``)."""
    if not nodes:
        return "<b>Nodes</b>\nNone has joined the database yet."
    lines = [f"• {html.escape(node_text(node))}" for node in nodes]
    return "\n".join([f"<b>Nodes</b> ({len(nodes)})", *lines])
