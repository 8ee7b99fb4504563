"""``ariabot doctor`` as a user runs it: a real aria2c, a fake Bot API, a real ariabot."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from supervisor.instance import RuntimeInfo, write_runtime
from supervisor.layout import StateLayout
from tests.fakes.telegram_api import (
    BOT_USERNAME,
    DEFAULT_TOKEN,
    MALFORMED_GET_ME,
    FakeTelegramServer,
)
from tests.runner import ariabot_run, free_port, wait_until


def doctor_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARIABOT_")}
    return {**env, "ARIABOT_DATA_DIR": str(data_dir), **extra}


def doctor(env: dict[str, str]) -> tuple[int, list[str]]:
    result = subprocess.run([sys.executable, "-m", "supervisor", "doctor"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.stderr == ""
    return result.returncode, result.stdout.splitlines()


async def doctor_async(env: dict[str, str]) -> tuple[int, list[str]]:
    """Run doctor without blocking the loop the fake Bot API answers on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "supervisor", "doctor", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert err == b""
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines()


def line(lines: list[str], start: str) -> str:
    """The one check line whose text (after its mark) starts with ``start``."""
    found = [text for text in lines if text[2:].startswith(start)]
    assert len(found) == 1, f"{start!r} in:\n" + "\n".join(lines)
    return found[0]


def test_fresh_data_dir_passes_and_says_the_bot_api_is_not_configured(tmp_path: Path) -> None:
    code, lines = doctor(doctor_env(tmp_path / "data"))
    assert code == 0, lines
    checks, summary = lines[:-1], lines[-1]
    assert summary == "all checks passed"
    notes = [text for text in checks if not text.startswith("✔")]
    hybrid = [text for text in notes if text.startswith("○ hybrid (v1+v2) torrents are refused")]
    assert len(notes) == 2 + len(hybrid) and len(hybrid) <= 1  # the last: aria2c < 1.37 only
    note = line(lines, "Bot API")
    assert note.startswith("○ Bot API not checked — ") and "ARIABOT_TELEGRAM_TOKEN" in note
    assert line(lines, "Mini App").startswith("○ Mini App off — set ARIABOT_PUBLIC_URL")
    assert line(lines, "aria2c").startswith("✔ aria2c 1.")
    assert line(lines, "download dir").startswith(f"✔ download dir {tmp_path / 'data'}")
    assert not (tmp_path / "data").exists()  # doctor changes nothing


def test_missing_aria2c_fails_with_the_install_hint(tmp_path: Path) -> None:
    code, lines = doctor(doctor_env(tmp_path, ARIABOT_ARIA2C=str(tmp_path / "no-aria2c")))
    assert code == 1
    assert line(lines, "aria2c").startswith("✘ aria2c not found")
    assert "sudo apt-get install aria2" in line(lines, "aria2c")


def test_download_dir_that_cannot_be_created_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, lines = doctor(doctor_env(tmp_path / "data",
                                    ARIABOT_DOWNLOAD_DIR=str(blocker / "sub")))
    assert code == 1
    failed = line(lines, "download dir")
    assert failed.startswith(f"✘ download dir {blocker / 'sub'} cannot be created")
    assert "— set ARIABOT_DOWNLOAD_DIR" in failed


def test_a_data_dir_that_is_a_file_fails_its_line_and_skips_what_needs_it(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, lines = doctor(doctor_env(blocker, ARIABOT_DOWNLOAD_DIR=str(tmp_path / "dl"),
                                    ARIABOT_PUBLIC_URL="https://files.example.org"))
    assert code == 1, lines
    assert line(lines, "data dir") == (f"✘ data dir {blocker} is not a directory — remove that "
                                       "file or set ARIABOT_DATA_DIR to a directory")
    assert line(lines, "links and running") == (
        "○ links and running instances not checked — they need a usable data dir "
        "(ARIABOT_DATA_DIR)")
    assert lines[-1] == "1 problem found"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]


async def test_bot_api_reachable_names_the_bot_and_never_the_token(tmp_path: Path) -> None:
    async with FakeTelegramServer() as server:
        env = doctor_env(tmp_path, ARIABOT_TELEGRAM_TOKEN=DEFAULT_TOKEN,
                         ARIABOT_ALLOWED_USERS="42", ARIABOT_TELEGRAM_API_URL=server.url)
        code, lines = await doctor_async(env)
        assert server.count("getMe") == 1
    assert code == 0, lines
    assert line(lines, "Bot API") == f"✔ Bot API at {server.url} knows this bot: @{BOT_USERNAME}"
    assert DEFAULT_TOKEN not in "\n".join(lines)
    assert DEFAULT_TOKEN.split(":")[1] not in "\n".join(lines)


async def test_bot_api_refusing_the_token_fails(tmp_path: Path) -> None:
    wrong = "654321:" + "W" * 35
    async with FakeTelegramServer() as server:
        env = doctor_env(tmp_path, ARIABOT_TELEGRAM_TOKEN=wrong, ARIABOT_ALLOWED_USERS="42",
                         ARIABOT_TELEGRAM_API_URL=server.url)
        code, lines = await doctor_async(env)
    assert code == 1
    refused = line(lines, "Bot API")
    assert refused.startswith(f"✘ Bot API at {server.url} refused the token (401")
    assert "@BotFather" in refused and wrong.split(":")[1] not in "\n".join(lines)


@pytest.mark.parametrize("answer", list(MALFORMED_GET_ME))
async def test_malformed_get_me_fails_like_ariabot_run_does(tmp_path: Path, answer: str) -> None:
    async with FakeTelegramServer() as server:
        server.answer_next("getMe", MALFORMED_GET_ME[answer])
        env = doctor_env(tmp_path, ARIABOT_TELEGRAM_TOKEN=DEFAULT_TOKEN,
                         ARIABOT_ALLOWED_USERS="42", ARIABOT_TELEGRAM_API_URL=server.url)
        code, lines = await doctor_async(env)
        assert server.count("getMe") == 1
    assert code == 1, lines
    failed = line(lines, "Bot API")
    assert failed.startswith(f"✘ Bot API at {server.url} answered getMe with something that "
                             "is not a Bot API answer (")
    assert failed.endswith("— check ARIABOT_TELEGRAM_API_URL (the server root, such as "
                           "https://api.telegram.org)")


def test_unreachable_bot_api_is_skipped_with_a_note(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, lines = doctor(doctor_env(tmp_path, ARIABOT_TELEGRAM_TOKEN=DEFAULT_TOKEN,
                                    ARIABOT_ALLOWED_USERS="42", ARIABOT_TELEGRAM_API_URL=url))
    assert code == 0, lines
    note = line(lines, "Bot API")
    assert note.startswith(f"○ Bot API at {url} unreachable from here (skipped) — ")
    assert DEFAULT_TOKEN not in "\n".join(lines)


def test_aria2c_left_behind_by_a_killed_ariabot_fails(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path / "data")
    layout.create()
    port = free_port()
    layout.aria2_conf.write_text(f"enable-rpc=true\nrpc-listen-port={port}\n"
                                 f"dir={tmp_path}\nenable-dht=false\n")
    orphan = subprocess.Popen(["aria2c", f"--conf-path={layout.aria2_conf}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        write_runtime(layout, RuntimeInfo(ariabot_pid=2**22 + 1, aria2c_pid=orphan.pid,
                                          rpc_port=port, rpc_secret="s",
                                          conf_path=str(layout.aria2_conf), state="running"))
        wait_until(lambda: psutil.Process(orphan.pid).cmdline(), 10, "aria2c to start")
        code, lines = doctor(doctor_env(layout.data_dir))
        assert code == 1
        stale = line(lines, f"aria2c pid {orphan.pid}")
        assert stale.startswith(f"✘ aria2c pid {orphan.pid} was left running")
        assert f"kill {orphan.pid}" in stale
    finally:
        orphan.kill()
        orphan.wait(10)


def test_running_ariabot_is_recognised(tmp_path: Path) -> None:
    with ariabot_run(tmp_path / "data") as run:
        info = run.wait_ready()
        code, lines = doctor(run.env)
    assert code == 0, lines
    running = line(lines, "an ariabot is running")
    assert run.process is not None
    assert running.startswith(f"✔ an ariabot is running on this data dir (pid {run.process.pid}")
    assert f"aria2c pid {info['aria2c_pid']} running" in running
    assert line(lines, "aria2 notifications") == "✔ aria2 notifications: connected"


def test_home_of_an_unknown_user_is_one_configuration_line(tmp_path: Path) -> None:
    env = doctor_env(tmp_path)
    env["ARIABOT_DATA_DIR"] = "~nosuchuser"
    code, lines = doctor(env)  # asserts an empty stderr: no traceback
    assert code == 1
    failed = line(lines, "configuration")
    assert failed.startswith("✘ configuration: ARIABOT_DATA_DIR: cannot expand ~nosuchuser")


def test_misspelt_variable_fails_naming_the_setting_it_meant(tmp_path: Path) -> None:
    token = "123456:" + "D" * 35
    code, lines = doctor(doctor_env(tmp_path / "data", ARIABOT_TELEGRAM_TOKN=token))
    assert code == 1
    assert line(lines, "ARIABOT_TELEGRAM_TOKN") == (
        "✘ ARIABOT_TELEGRAM_TOKN is not an ariabot setting and is ignored — did you mean "
        "ARIABOT_TELEGRAM_TOKEN? Rename it (or remove it)")
    assert token not in "\n".join(lines)
    assert lines[-1] == "1 problem found"


def test_dht_off_is_a_note_about_udp_trackers(tmp_path: Path) -> None:
    code, lines = doctor(doctor_env(tmp_path / "data", ARIABOT_ENABLE_DHT="false"))
    assert code == 0, lines
    note = line(lines, "DHT is off")
    assert note.startswith("○ DHT is off: ")
    assert "does not use udp:// trackers without DHT" in note
    assert "ARIABOT_ENABLE_DHT=true" in note
    _code, on = doctor(doctor_env(tmp_path / "data"))
    assert not [text for text in on if "DHT" in text]
