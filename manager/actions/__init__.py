"""What is done to downloads on request: add, pause, resume, cancel, choose files, purge,
follow a chat that changed its id.

``intake`` adds (validation, duplicates, name clash, space, the row, aria2); ``control``
pauses, resumes, cancels and chooses files; ``retention`` purges finished downloads;
``chats`` moves a chat's downloads to its new id; ``unplaced`` changes a download that waits
in the queue nodes share. Imports ``manager.downloads``,
``manager.aria2``, ``manager.sources`` and the shared top-level modules; not ``tracking``
nor ``delivery``.
"""

from manager.actions.chats import ChatMoves
from manager.actions.control import Cancellation, Control
from manager.actions.intake import AddResult, Intake
from manager.actions.retention import Retention
from manager.actions.unplaced import Unplaced

__all__ = ["AddResult", "Cancellation", "ChatMoves", "Control", "Intake", "Retention", "Unplaced"]
