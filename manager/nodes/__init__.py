"""The nodes sharing one database: joining it, the heartbeat, and who is alive.

``membership`` joins the database as a named node, beats every few seconds with the node's
room (slots, disk, downloads) and finds out when a newer start took the name;
``ownership`` says which downloads are this node's to act on; ``placement`` claims queued
downloads while the node has free slots; ``routing`` asks the node that holds a download to
act on it, and answers what other nodes ask (``sending``: a send of files, which the bot
does); ``elsewhere`` publishes the changes of other
nodes' downloads on the front (their progress messages); ``text`` says a node in one line;
``passes`` runs a look one pass at a time without losing a wake-up (claims, commands).
Imports the store, ``manager.aria2`` and the shared top-level modules.
"""

from manager.nodes.elsewhere import Elsewhere
from manager.nodes.membership import Membership, NodeConfig, NodeState, NodeStatus
from manager.nodes.ownership import Ownership
from manager.nodes.placement import Placement
from manager.nodes.routing import Router
from manager.nodes.sending import SendDesk
from manager.nodes.text import node_text

__all__ = ["Elsewhere", "Membership", "NodeConfig", "NodeState", "NodeStatus", "Ownership",
           "Placement", "Router", "SendDesk", "node_text"]
