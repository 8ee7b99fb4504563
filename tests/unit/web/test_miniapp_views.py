"""What the Mini App's page is told of a download."""

from __future__ import annotations

from manager import SourceKind, Torrent, TorrentState
from web.miniapp.views import download_json


def _torrent(**changes: object) -> Torrent:
    values: dict[str, object] = dict(
        id=7, info_hash="ab" * 20, name="season", chat_id=1, user_id=1,
        state=TorrentState.COMPLETE, source_kind=SourceKind.TORRENT, total_bytes=100,
        completed_bytes=100)
    return Torrent(**{**values, **changes})  # type: ignore[arg-type]


def test_another_nodes_download_says_where_it_is_and_offers_actions_while_it_is_heard() -> None:
    gone = download_json(_torrent(node="alpha", elsewhere="on node alpha, stopped 2 s ago",
                                  unreachable=True), may_act=True)
    assert (gone["may_act"], gone["elsewhere"]) == (False, "on node alpha, stopped 2 s ago")
    there = download_json(_torrent(node="alpha", elsewhere="on node alpha"), may_act=True)
    assert (there["may_act"], there["elsewhere"]) == (True, "on node alpha")  # asked of it
    waiting = download_json(_torrent(node=None, state=TorrentState.QUEUED,
                                     elsewhere="waiting for a node"), may_act=True)
    assert waiting["may_act"] is True
    here = download_json(_torrent(node="beta"), may_act=True)
    assert (here["may_act"], here["elsewhere"]) == (True, None)
    assert download_json(_torrent(node="beta"), may_act=False)["may_act"] is False
