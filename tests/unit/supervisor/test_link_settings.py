"""Links' settings, their key file, and how ``run`` and ``doctor`` take bad ones."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from supervisor.__main__ import main
from supervisor.config import ConfigError, load_settings
from supervisor.doctor import check_links
from supervisor.exits import EXIT_USAGE
from supervisor.layout import StateLayout
from supervisor.linkkey import KEY_BYTES, LinkKeyError, load_link_key, read_link_key
from supervisor.root import link_config


def settings(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    return load_settings(None, {"ARIABOT_DATA_DIR": str(tmp_path / "data"), **env})


def test_links_are_off_by_default_and_on_with_a_public_url(tmp_path: Path) -> None:
    off = settings(tmp_path)
    assert not off.links and off.http_listen == "127.0.0.1:8090" and off.link_days == 7
    assert link_config(off, StateLayout(off.data_dir)) is None
    on = settings(tmp_path, ARIABOT_PUBLIC_URL="https://files.example.org/ariabot/",
                  ARIABOT_HTTP_LISTEN="[::1]:0", ARIABOT_LINK_DAYS="0.5")
    assert on.links and on.public_url == "https://files.example.org/ariabot"
    on.data_dir.mkdir(parents=True)
    config = link_config(on, StateLayout(on.data_dir))
    assert config is not None and config.ttl.total_seconds() == 43200
    assert len(config.key) == KEY_BYTES and "key" not in repr(config).replace("key=", "")


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("ARIABOT_PUBLIC_URL", "files.example.org", "http(s)://"),
    ("ARIABOT_PUBLIC_URL", "ftp://files.example.org", "http(s)://"),
    ("ARIABOT_PUBLIC_URL", "https://files.example.org/?a=b", "without ?query"),
    ("ARIABOT_PUBLIC_URL", "https://me:pw@files.example.org", "user:password@"),
    ("ARIABOT_HTTP_LISTEN", "8090", "host:port"),
    ("ARIABOT_HTTP_LISTEN", "127.0.0.1:99999", "host:port"),
    ("ARIABOT_LINK_DAYS", "0", "from 0.01 to 365"),
    ("ARIABOT_LINK_DAYS", "366", "from 0.01 to 365"),
])
def test_a_bad_link_setting_names_its_variable(tmp_path: Path, variable: str, value: str,
                                               words: str) -> None:
    with pytest.raises(ConfigError, match=variable) as error:
        settings(tmp_path, **{variable: value})
    assert words in str(error.value)


def test_run_stops_at_a_bad_link_setting_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ARIABOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARIABOT_PUBLIC_URL", "files.example.org")
    assert main(["run"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "ariabot: configuration error: ARIABOT_PUBLIC_URL: must be empty (links off)")


def test_the_key_is_made_once_0600_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "link.key"
    key = load_link_key(path)
    assert len(key) == KEY_BYTES and path.stat().st_mode & 0o777 == 0o600
    assert load_link_key(path) == key


@pytest.mark.parametrize("left", [b"", b"short"])
def test_an_empty_or_short_key_left_by_a_crash_is_replaced_by_a_whole_one(
    tmp_path: Path, left: bytes
) -> None:
    # A crash between creating link.key and writing it left this; no link was ever signed
    # with it (a key is used only once read back whole), so it is replaced, not refused.
    path = tmp_path / "link.key"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(descriptor, left)
    os.close(descriptor)
    assert read_link_key(path) is None  # what doctor reads: nothing is changed
    assert path.read_bytes() == left
    key = load_link_key(path)
    assert len(key) == KEY_BYTES and path.read_bytes() == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_link_key(path) == key
    assert [entry.name for entry in tmp_path.iterdir()] == ["link.key"]  # no temporary left


def test_a_key_others_may_read_or_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.key"
    load_link_key(path)
    path.chmod(0o644)
    with pytest.raises(LinkKeyError, match="may be read by others"):
        load_link_key(path)
    path.chmod(0o600)
    path.write_bytes(b"k" * (KEY_BYTES + 1))
    with pytest.raises(LinkKeyError, match="not a link key"):
        load_link_key(path)
    (tmp_path / "elsewhere").write_bytes(b"k" * KEY_BYTES)
    (tmp_path / "elsewhere").chmod(0o600)
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LinkKeyError, match="cannot read"):
        load_link_key(path)


def test_doctor_is_silent_on_links_off_and_fails_on_a_taken_port_or_a_leaked_key(
    tmp_path: Path,
) -> None:
    assert check_links(settings(tmp_path), running=False) == []  # like mirroring: no line
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        on = settings(tmp_path, ARIABOT_PUBLIC_URL="https://files.example.org",
                      ARIABOT_HTTP_LISTEN=f"127.0.0.1:{port}")
        [busy] = check_links(on, running=False)
        assert busy.ok is False and f"cannot listen on 127.0.0.1:{port}" in busy.line
        [fine] = check_links(on, running=True)  # the running ariabot's own server
        assert fine.ok is True and "https://files.example.org" in fine.line
    on.data_dir.mkdir(parents=True)
    key = StateLayout(on.data_dir).link_key
    load_link_key(key)
    key.chmod(0o640)
    checks = check_links(on, running=True)
    assert [c.ok for c in checks] == [False, True] and "may be read by others" in checks[0].line
