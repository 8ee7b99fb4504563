"""``ariabot link <id>``: the control socket's "link" operation and the command's output."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from manager import (
    DownloadLink,
    DownloadNotFound,
    InvalidState,
    LinksOff,
    SourceKind,
    Torrent,
    TorrentState,
)
from supervisor.__main__ import main
from supervisor.control import ControlServer
from supervisor.exits import EXIT_ERROR
from supervisor.layout import StateLayout

URL = "https://files.example.org/d/1.1893456000." + "S" * 43


class FakeManager:
    def __init__(self) -> None:
        self.asked: list[int] = []

    async def link(self, download_id: int, chat_id: int | None = None,
                   user_id: int = 0) -> DownloadLink:
        self.asked.append(download_id)
        if download_id == 2:
            raise LinksOff()
        if download_id == 3:
            raise InvalidState("#3 is downloading; only a finished download has a link")
        if download_id != 1:
            raise DownloadNotFound(f"no download #{download_id}")
        torrent = Torrent(id=1, info_hash="a" * 40, name="pack", chat_id=0, user_id=0,
                          state=TorrentState.COMPLETE, source_kind=SourceKind.TORRENT)
        return DownloadLink(URL, datetime(2030, 1, 6, tzinfo=UTC), torrent)


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeManager]:
    layout = StateLayout(tmp_path / "data")
    layout.create()
    monkeypatch.setenv("ARIABOT_DATA_DIR", str(layout.data_dir))
    manager = FakeManager()
    server = ControlServer(manager, layout.control_socket)  # type: ignore[arg-type]
    await server.start()
    try:
        yield manager
    finally:
        await server.stop()


async def test_link_prints_the_url_alone_on_stdout_and_its_life_on_stderr(
    served: FakeManager, capsys: pytest.CaptureFixture[str],
) -> None:
    assert await asyncio.to_thread(main, ["link", "1"]) == 0
    out, err = capsys.readouterr()
    assert out == URL + "\n"
    assert "works until 2030-01-06T00:00:00+00:00" in err
    assert await asyncio.to_thread(main, ["link", "1", "--json"]) == 0
    assert capsys.readouterr().out.count(URL) == 1
    assert served.asked == [1, 1]


@pytest.mark.parametrize(("download_id", "words"), [
    ("2", "links are not set up on this ariabot (the owner sets ARIABOT_PUBLIC_URL)"),
    ("3", "only a finished download has a link"),
    ("9", "no download #9"),
])
async def test_link_says_why_there_is_none(
    served: FakeManager, capsys: pytest.CaptureFixture[str], download_id: str, words: str,
) -> None:
    assert await asyncio.to_thread(main, ["link", download_id]) == EXIT_ERROR
    out, err = capsys.readouterr()
    assert out == "" and words in err
