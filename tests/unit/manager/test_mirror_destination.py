"""Where a mirror went, as a chat reads it: the remote's name and path, never this server's."""

from __future__ import annotations

import pytest

from manager.usertext import shown_destination


@pytest.mark.parametrize(("remote", "top", "shown"), [
    ("gdrive:ariabot", "Movie", "gdrive:ariabot/Movie"),
    ("gdrive:ariabot/", "a.bin", "gdrive:ariabot/a.bin"),
    ("gdrive:", "a.bin", "gdrive:a.bin"),
    ("my nas:Media/tv", "show", "my nas:Media/tv/show"),
    ("nas:/srv/mirror", "a.bin", "nas:…/a.bin"),  # an absolute path: a server's folder
    ("sftp:/home/me/up", "pack", "sftp:…/pack"),
    ("/srv/mirror", "a.bin", "the mirror folder, as a.bin"),
    ("/srv/mirror", "", "the mirror folder"),
    (":webdav:up", "a.bin", ":webdav:up/a.bin"),  # a connection string, its parameters out
    (":local:/srv/mirror", "a.bin", ":local:…/a.bin"),
])
def test_destinations_never_show_a_server_path(remote: str, top: str, shown: str) -> None:
    assert shown_destination(remote, top) == shown
