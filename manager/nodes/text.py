"""A node in one line, the same in ``ariabot nodes`` and the admin chat's ``/nodes``."""

from __future__ import annotations

from manager.nodes.membership import NodeState, NodeStatus
from manager.units import human_size

__all__ = ["ago", "node_text"]

_UNITS = ((86400, "d"), (3600, "h"), (60, "min"))


def node_text(node: NodeStatus) -> str:
    """``box-a (this node): online, last heard from 2 s ago · slots 1/3 used · 120.5 GiB free ·
    14 downloads · ariabot 0.1.0``; an offline or stopped node says since when instead."""
    figures = node.figures
    this = " (this node)" if node.this else ""
    when = {NodeState.ONLINE: "online, last heard from",
            NodeState.OFFLINE: "offline, last heard from", NodeState.STOPPED: "stopped"}[node.state]
    parts = [f"{node.name}{this}: {when} {ago(node.silent_for)}"]
    if node.state is NodeState.ONLINE:
        parts += [f"slots {figures.slots_used}/{figures.slots_total} used",
                  f"{human_size(figures.free_disk)} free"]
    parts += [f"{figures.downloads} download{'s' if figures.downloads != 1 else ''}",
              f"ariabot {node.version}"]
    return " · ".join(parts)


def ago(seconds: float) -> str:
    """``2 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago`` (whole units, rounded down)."""
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"
