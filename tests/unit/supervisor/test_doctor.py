"""ariabot doctor's checks, one by one, with no network and no aria2c process."""

from __future__ import annotations

import io
import json
import os
from collections import namedtuple
from pathlib import Path

import pytest

from supervisor.__main__ import main
from supervisor.config import load_settings
from supervisor.doctor import (
    MIN_FREE_DOWNLOADS,
    Check,
    check_aria2c,
    check_bot_api,
    check_directory,
    check_instance,
    check_miniapp,
    check_telegram,
    report,
)
from supervisor.instance import InstanceLock, lock_holder
from supervisor.layout import StateLayout

TOKEN = "123456:" + "T" * 35
Usage = namedtuple("Usage", "total used free")


def plenty(_path: str) -> Usage:
    return Usage(10**12, 0, 10**12)


def test_lines_say_passed_failed_or_not_checked() -> None:
    assert Check(True, "aria2c 1.36.0").line == "✔ aria2c 1.36.0"
    assert Check(False, "aria2c not found", "install it").line == "✘ aria2c not found — install it"
    assert Check(None, "Bot API not checked", "no token").line == "○ Bot API not checked — no token"


def test_report_exits_1_only_on_a_failure() -> None:
    out = io.StringIO()
    assert report([Check(True, "a"), Check(None, "b", "note")], out) == 0
    assert out.getvalue() == "✔ a\n○ b — note\nall checks passed\n"
    out = io.StringIO()
    assert report([Check(True, "a"), Check(False, "b", "fix")], out) == 1
    assert out.getvalue().endswith("✘ b — fix\n1 problem found\n")


def test_existing_writable_directory_passes(tmp_path: Path) -> None:
    check = check_directory("download dir", tmp_path, "ARIABOT_DOWNLOAD_DIR", 1, plenty)
    assert check.ok and "writable" in check.what and "931.3 GiB free" in check.what


def test_missing_directory_that_can_be_created_passes_and_is_not_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    check = check_directory("data dir", target, "ARIABOT_DATA_DIR", 1, plenty)
    assert check.ok and "will be created" in check.what
    assert not (tmp_path / "a").exists()


def test_directory_below_a_file_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    check = check_directory("download dir", tmp_path / "file" / "sub", "ARIABOT_DOWNLOAD_DIR",
                            1, plenty)
    assert check.ok is False
    assert "cannot be created" in check.what and "ARIABOT_DOWNLOAD_DIR" in check.fix


def test_a_file_where_the_directory_should_be_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    check = check_directory("data dir", tmp_path / "file", "ARIABOT_DATA_DIR", 1, plenty)
    assert check.ok is False and "not a directory" in check.what


def test_too_little_free_space_fails_with_the_amount(tmp_path: Path) -> None:
    check = check_directory("download dir", tmp_path, "ARIABOT_DOWNLOAD_DIR",
                            MIN_FREE_DOWNLOADS, lambda _p: Usage(10**9, 10**9, 5 * 1024**2))
    assert check.ok is False
    assert "only 5.0 MiB free" in check.what and "ARIABOT_DOWNLOAD_DIR" in check.fix


def test_token_without_allow_list_fails() -> None:
    settings = load_settings(None, {"ARIABOT_TELEGRAM_TOKEN": TOKEN})
    token_ok, users = check_telegram(settings)
    assert token_ok.ok and users.ok is False and "ARIABOT_ALLOWED_USERS" in users.fix
    assert TOKEN not in token_ok.line + users.line
    allowed = load_settings(None, {"ARIABOT_TELEGRAM_TOKEN": TOKEN,
                                   "ARIABOT_ALLOWED_USERS": "5,6"})
    assert [c.ok for c in check_telegram(allowed)] == [True, True]


def test_local_mode_has_no_telegram_checks_and_a_note_for_the_bot_api() -> None:
    settings = load_settings(None, {})
    assert check_telegram(settings) == []
    note = check_bot_api(settings)
    assert note.ok is None and "local mode" in note.fix


def test_lock_holder_sees_the_lock_without_taking_it(tmp_path: Path) -> None:
    path = tmp_path / "ariabot.lock"
    assert lock_holder(path) is None
    with InstanceLock(path):
        assert lock_holder(path) == os.getpid()
    assert lock_holder(path) is None  # the file is still there, the lock is not


def test_instance_running_and_free(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    free = check_instance(layout)
    assert free.ok and "no ariabot running" in free.what
    with InstanceLock(layout.lock):
        running = check_instance(layout)
    assert running.ok and f"pid {os.getpid()}" in running.what


def test_runtime_naming_a_process_that_is_not_our_aria2c_is_harmless(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    layout.runtime.write_text(json.dumps({
        "ariabot_pid": 1, "aria2c_pid": os.getpid(), "rpc_port": 1, "rpc_secret": "s",
        "conf_path": str(layout.aria2_conf), "state": "running",
    }))
    check = check_instance(layout)
    assert check.ok and "no aria2c left behind" in check.what


def test_bad_configuration_is_a_failed_line_not_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARIABOT_MAX_CONCURRENT", "many")
    assert main(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("✘ configuration: ARIABOT_MAX_CONCURRENT: must be a whole")
    assert " — " in lines[0]


def fake_aria2c(tmp_path: Path, version: str) -> str:
    script = tmp_path / f"aria2c-{version}"
    script.write_text(f"#!/bin/sh\necho 'aria2 version {version}'\n")
    script.chmod(0o755)
    return str(script)


def test_doctor_notes_that_aria2c_1_36_refuses_hybrids(tmp_path: Path) -> None:
    ok, note = check_aria2c(fake_aria2c(tmp_path, "1.36.0"))
    assert ok.ok is True and ok.what.startswith("aria2c 1.36.0 at ")
    assert note.ok is None
    assert note.line == (
        "○ hybrid (v1+v2) torrents are refused: aria2c 1.36.0 looks for hybrid torrents under "
        "a wrong info-hash and finds no peers (fixed in aria2 1.37) — install aria2 1.37 or "
        "newer (Debian 13 ships it) and set ARIABOT_ARIA2C to it")


def test_doctor_has_no_note_from_aria2c_1_37(tmp_path: Path) -> None:
    [ok] = check_aria2c(fake_aria2c(tmp_path, "1.37.0"))
    assert ok.ok is True


@pytest.mark.parametrize(("env", "line"), [
    ({}, "○ Mini App off — set ARIABOT_PUBLIC_URL (your HTTPS reverse proxy in front of "
         "ARIABOT_HTTP_LISTEN) to open downloads in a page in Telegram"),
    ({"ARIABOT_PUBLIC_URL": "https://files.example.org"},
     "○ Mini App off — it opens from the bot: set ARIABOT_TELEGRAM_TOKEN"),
    ({"ARIABOT_PUBLIC_URL": "http://files.example.org", "ARIABOT_TELEGRAM_TOKEN": TOKEN},
     "○ Mini App: http://files.example.org/app/ is plain HTTP, which Telegram does not open "
     "— serve ARIABOT_PUBLIC_URL over HTTPS (a reverse proxy with a certificate); /web links "
     "still open it in a browser"),
    ({"ARIABOT_PUBLIC_URL": "https://files.example.org/bot/", "ARIABOT_TELEGRAM_TOKEN": TOKEN},
     "✔ Mini App: https://files.example.org/bot/app/ (the bot's menu button and /web)"),
])
def test_the_mini_app_line_says_whether_telegram_can_open_it(env: dict[str, str],
                                                              line: str) -> None:
    assert check_miniapp(load_settings(None, env)).line == line
