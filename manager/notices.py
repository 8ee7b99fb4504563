"""Notices: what a chat must be told, decided from the stored change that causes it.

The store writes a change of a download (or of its mirror) and the notices it calls for in
ONE transaction (a transactional outbox): a completion is either stored with its notice or
not at all, so a crash, a restart or a Telegram outage of any length cannot lose the news.
The bot sends pending notices and marks each one when Telegram has confirmed it
(:meth:`manager.TorrentManager.pending_notices`, :meth:`~manager.TorrentManager.notice_done`).

The rules are here, as pure functions of the written columns, so they are tested without a
database and every write path (the poll, a metadata failure, a cancel, a mirror's end) gets
them by writing through the store.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from manager.models import MirrorState, TorrentState

__all__ = ["COALESCED", "Notice", "NoticeKind", "download_notices", "mirror_notices"]


class NoticeKind(enum.Enum):
    """What a notice tells."""

    COMPLETED = "completed"
    """All data is on disk: a new message in the download's chat."""
    FAILED = "failed"
    """The download ended in error: a new message with the reason."""
    FINAL = "final"
    """The download reached a final state: its progress message's last edit."""
    FEED_ADDED = "feed_added"
    """A feed added the download (its detail: the feed's name): the news of the add, told as
    a manual add is; several of a chat at once are told in one message."""
    FEED_FAILING = "feed_failing"
    """A chat's feed has failed for a day (no download; its detail: the text)."""
    MIRRORED = "mirrored"
    MIRROR_FAILED = "mirror_failed"
    ARIA2_DOWN = "aria2_down"
    """aria2c alerts, for the admin chat."""
    ARIA2_RESTARTED = "aria2_restarted"
    ARIA2_FATAL = "aria2_fatal"

    @property
    def is_engine(self) -> bool:
        """An alert about aria2c itself (for the admin chat), not about one download."""
        return self in (NoticeKind.ARIA2_DOWN, NoticeKind.ARIA2_RESTARTED,
                        NoticeKind.ARIA2_FATAL)


COALESCED = frozenset({NoticeKind.FINAL})
"""Kinds of which one pending notice per download is enough: an edit shows the newest
state whenever it is sent, so a second final state (a failed download cancelled) adds none."""


@dataclass(frozen=True)
class Notice:
    """One stored notice, pending until the bot marks it.

    Attributes:
        id: the notice's idempotency key: one change writes one row; it is sent until marked.
        chat_id: the download's chat; None for the admin chat (aria2c alerts).
        tries: failed attempts so far (network errors, outages), for the retry delay.
    """

    id: int
    kind: NoticeKind
    download_id: int | None
    chat_id: int | None
    detail: str
    created_at: datetime
    tries: int


_FINAL_STATES = frozenset(state.value for state in TorrentState if state.is_final)
_MIRROR_FINAL_STATES = frozenset(state.value for state in MirrorState if state.is_final)


def download_notices(values: Mapping[str, Any]) -> list[NoticeKind]:
    """The notices a write of these columns of a download calls for.

    Parameters:
        values: the columns written (only those that changed, as the poll writes them).
    """
    kinds = []
    if values.get("completed_at") is not None:
        kinds.append(NoticeKind.COMPLETED)
    state = values.get("state")
    if state == TorrentState.ERROR.value:
        kinds.append(NoticeKind.FAILED)
    if state in _FINAL_STATES:
        kinds.append(NoticeKind.FINAL)
    return kinds


def mirror_notices(values: Mapping[str, Any]) -> list[NoticeKind]:
    """The notices a write of these columns of a download's mirror calls for."""
    state = values.get("state")
    kinds = []
    if state == MirrorState.DONE.value:
        kinds.append(NoticeKind.MIRRORED)
    elif state == MirrorState.FAILED.value:
        kinds.append(NoticeKind.MIRROR_FAILED)
    if state in _MIRROR_FINAL_STATES:
        kinds.append(NoticeKind.FINAL)  # the progress message stops showing the upload
    return kinds
