"""``ariabot rss``: what the command line sends the running ariabot (the control socket's
client is the boundary here; what the manager does with it is tests/integration/test_feeds)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from supervisor.__main__ import build_parser
from supervisor.rsscommand import rss_command


class Recorder:
    """A control client that records the request and answers as ariabot would."""

    def __init__(self) -> None:
        self.sent: dict[str, Any] = {}

    def request(self, operation: str, **fields: Any) -> dict[str, Any]:
        self.sent = {"op": operation, **fields}
        feed = {"name": fields.get("name") or "nyaa", "host": "nyaa.si", "filter": "everything",
                "paused": False, "user_id": 0, "added": 0, "last_added_at": None,
                "last_ok_at": None, "next_poll_at": "2026-12-07T00:15:00Z",
                "last_error": None, "failing_since": None}
        return {"ok": True, "feed": feed, "items": 75, "added": 0}


@pytest.mark.parametrize(("words", "name", "options"), [
    (["nyaa", "include:1080p"], "nyaa", ["include:1080p"]),
    (["include:1080p", "min:1GB"], None, ["include:1080p", "min:1GB"]),  # no name given
    ([], None, []),
])
def test_add_takes_the_second_word_as_a_name_only_when_it_is_not_an_option(
        words: list[str], name: str | None, options: list[str]) -> None:
    args = build_parser().parse_args(["rss", "--chat", "5", "add", "https://nyaa.si/?page=rss",
                                      *words])
    client, out = Recorder(), io.StringIO()
    assert rss_command(client, args, io.StringIO(), out, io.StringIO()) == 0  # type: ignore[arg-type]
    assert client.sent == {"op": "rss", "action": "add", "chat": 5,
                           "url": "https://nyaa.si/?page=rss", "name": name, "options": options}
    assert out.getvalue().startswith("subscribed to ")
