"""Tracking: keeping the rows in step with aria2.

``sync`` turns notifications into reads, runs the batched progress poll and reconciles after
a (re)connection; ``sweep`` decides when the poll reads the waiting list too; ``statuses``
applies aria2's statuses to the rows in one transaction and makes the events; ``metadata``
follows a magnet's metadata to its real download; ``movedaway`` lets go, at start, of the
downloads another node took while this one was dead. Imports ``manager.downloads``,
``manager.aria2`` and the shared top-level modules; not ``actions`` nor ``delivery``.
"""

from manager.tracking.metadata import MetadataCheck
from manager.tracking.movedaway import MovedAway
from manager.tracking.statuses import StatusApplier
from manager.tracking.sync import Sync

__all__ = ["MetadataCheck", "MovedAway", "StatusApplier", "Sync"]
