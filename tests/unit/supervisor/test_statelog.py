"""One log line per state change of a download; none for mere progress."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from manager import (
    Aria2Down,
    Mirror,
    MirrorChanged,
    MirrorDone,
    MirrorState,
    SourceKind,
    Torrent,
    TorrentAdded,
    TorrentCompleted,
    TorrentFailed,
    TorrentProgress,
    TorrentState,
    TorrentStateChanged,
)
from supervisor.statelog import DownloadStateLog

BASE = Torrent(id=3, info_hash="a" * 40, name="ubuntu\n.iso", chat_id=77, user_id=1,
               state=TorrentState.QUEUED, source_kind=SourceKind.MAGNET)


def at(state: TorrentState, **values: object) -> Torrent:
    return replace(BASE, state=state, **values)  # type: ignore[arg-type]


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ariabot.downloads"]


def test_state_changes_are_logged_once_progress_is_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ariabot.downloads")
    subscriber = DownloadStateLog()
    for event in [
        TorrentAdded(at(TorrentState.QUEUED)),
        TorrentStateChanged(at(TorrentState.DOWNLOADING)),
        TorrentProgress(at(TorrentState.DOWNLOADING, completed_bytes=5)),
        TorrentProgress(at(TorrentState.DOWNLOADING, completed_bytes=9)),
        TorrentCompleted(at(TorrentState.SEEDING)),
        TorrentStateChanged(at(TorrentState.COMPLETE)),
        Aria2Down("aria2c died"),
    ]:
        subscriber(event)
    assert messages(caplog) == [
        "download #3 added in chat 77 (queued): 'ubuntu\\n.iso'",
        "download #3 queued -> downloading: 'ubuntu\\n.iso'",
        "download #3 downloading -> seeding: 'ubuntu\\n.iso'",
        "download #3 seeding -> complete: 'ubuntu\\n.iso'",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_first_progress_after_a_restart_is_not_a_change(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ariabot.downloads")
    subscriber = DownloadStateLog()
    subscriber(TorrentProgress(at(TorrentState.DOWNLOADING)))
    subscriber(TorrentFailed(at(TorrentState.ERROR, error="no peers for 15 min")))
    assert messages(caplog) == [
        "download #3 downloading -> error: 'ubuntu\\n.iso' (no peers for 15 min)"]


def test_an_unknown_previous_state_is_shown_as_a_question_mark(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ariabot.downloads")
    DownloadStateLog()(TorrentStateChanged(at(TorrentState.PAUSED)))
    assert messages(caplog) == ["download #3 ? -> paused: 'ubuntu\\n.iso'"]


def test_a_mirror_after_a_restart_is_no_state_change(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ariabot.downloads")
    subscriber = DownloadStateLog()
    uploading = Mirror(MirrorState.UPLOADING, "dav:up/x")
    subscriber(MirrorChanged(at(TorrentState.COMPLETE, mirror=uploading)))
    subscriber(MirrorDone(at(TorrentState.COMPLETE, mirror=replace(
        uploading, state=MirrorState.DONE))))
    assert messages(caplog) == []


def test_another_nodes_download_is_not_logged_here(caplog: pytest.LogCaptureFixture) -> None:
    """The front follows other nodes' downloads (their progress messages); their state
    lines are their nodes' to log: a woken front said 'downloading -> seeding' of a
    download another node had finished."""
    caplog.set_level(logging.INFO, "ariabot.downloads")
    log = DownloadStateLog()
    log(TorrentStateChanged(at(TorrentState.DOWNLOADING, node="beta",
                               elsewhere="on node beta")))
    log(TorrentStateChanged(at(TorrentState.SEEDING, node="beta", elsewhere="on node beta")))
    assert messages(caplog) == []
