"""This data dir's id as a node: 32 random hex digits in ``<data dir>/node.id``, made once.

The database knows a node's name and the id of the data dir that holds it
(:class:`manager.store.nodes.Nodes`). The same data dir started again (after a crash, a
kill -9) takes its name back at once: its lock proves the process before it is gone.
Another data dir given the same name (a cloned machine, a copied config) is refused while the
name's holder is alive. Not a secret: it proves nothing to anyone but this data dir.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

__all__ = ["load_node_home"]

_SHAPE = re.compile(r"[0-9a-f]{32}")


def load_node_home(path: Path) -> str:
    """The id in ``path``, made when it is missing or not an id (a crash while writing it).

    Raises:
        OSError: it cannot be read or written.
    """
    try:
        found = path.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        found = ""
    if _SHAPE.fullmatch(found):
        return found
    home = secrets.token_hex(16)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(home + "\n", encoding="ascii")
    temporary.replace(path)
    return home
