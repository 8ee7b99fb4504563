"""The aria2 adapter: its JSON-RPC, its WebSocket notifications, and what its answers mean.

``rpc`` runs every call on worker threads; ``ops`` the few call sequences the manager
needs; ``notifications`` the listener; ``observation`` turns aria2's status words into
ours (states, error texts, stalls); ``compat`` says what the running aria2c can download.
Imports ``manager.sources`` and the shared top-level modules, nothing else of the manager.
"""

from manager.aria2.compat import HYBRID_FIX, check_downloadable, hybrid_limitation, version_text
from manager.aria2.notifications import ListenerHealth, NotificationListener
from manager.aria2.observation import (
    WAITING_KEYS,
    Observation,
    StallWatch,
    derive_state,
    error_text,
    unreachable_reason,
)
from manager.aria2.ops import WAITING_PAGE, Aria2Ops, Counts
from manager.aria2.rpc import Aria2Endpoint, Aria2Rpc, RpcFault

__all__ = [
    "HYBRID_FIX",
    "WAITING_KEYS",
    "WAITING_PAGE",
    "Aria2Endpoint",
    "Aria2Ops",
    "Aria2Rpc",
    "Counts",
    "ListenerHealth",
    "NotificationListener",
    "Observation",
    "RpcFault",
    "StallWatch",
    "check_downloadable",
    "derive_state",
    "error_text",
    "hybrid_limitation",
    "unreachable_reason",
    "version_text",
]
