"""``ariabot run`` whose Bot API refuses the token or answers ``getMe`` wrongly.

The real ariabot with a real aria2c, against the fake Bot API server: either answer needs a
human, so ariabot exits with the code systemd does not restart, in one clear line, without a
traceback, and stops its aria2c on the way out.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from pathlib import Path

import psutil
import pytest

from bot.polling import POLL_FLOOR
from supervisor.exits import EXIT_USAGE
from tests.fakes.telegram_api import DEFAULT_TOKEN, MALFORMED_GET_ME, FakeTelegramServer
from tests.runner import AriabotRun


async def _run_once(tmp_path: Path, server: FakeTelegramServer, token: str) -> AriabotRun:
    """Start ariabot on ``server`` and wait for it to exit by itself."""
    run = AriabotRun(tmp_path / "data", {
        "ARIABOT_TELEGRAM_TOKEN": token, "ARIABOT_TELEGRAM_API_URL": server.url,
        "ARIABOT_ALLOWED_USERS": "42",
    }).start()
    try:
        await asyncio.to_thread(run.wait_exit, 60)
    finally:
        await asyncio.to_thread(run.stop)
    return run


def _aria2c_of(data_dir: Path) -> list[psutil.Process]:
    conf = f"--conf-path={data_dir / 'aria2.conf'}"
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if conf in (process.info["cmdline"] or []):
            found.append(process)
    return found


def _critical(output: str) -> list[str]:
    return [line for line in output.splitlines() if " CRITICAL " in line]


async def test_token_rejected_by_telegram_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    wrong = "654321:" + "W" * 35  # the right shape: Telegram answers 401 Unauthorized
    async with FakeTelegramServer() as server:
        run = await _run_once(tmp_path, server, wrong)
        assert server.count("getMe", status=401) == 1
    output = run.output
    assert run.process is not None and run.process.returncode == EXIT_USAGE, output
    assert "Traceback" not in output, output
    [line] = _critical(output)
    assert "Telegram rejected the token (Unauthorized): copy it again from @BotFather" in line
    assert "restarting cannot help" in line
    assert wrong.split(":")[1] not in output
    assert not _aria2c_of(tmp_path / "data")


@pytest.mark.parametrize("answer", list(MALFORMED_GET_ME))
async def test_malformed_get_me_exits_2_with_one_clear_line(tmp_path: Path, answer: str) -> None:
    async with FakeTelegramServer() as server:
        server.answer_next("getMe", MALFORMED_GET_ME[answer])
        run = await _run_once(tmp_path, server, DEFAULT_TOKEN)
        assert server.count("getMe") == 1
    output = run.output
    assert run.process is not None and run.process.returncode == EXIT_USAGE, output
    assert "Traceback" not in output, output
    [line] = _critical(output)
    assert (f"the Bot API server at {server.url} answered getMe with something that is not "
            "a Bot API answer") in line
    assert "check ARIABOT_TELEGRAM_API_URL" in line
    assert len([text for text in output.splitlines() if "getMe" in text]) == 1, output
    assert "nginx" not in output  # the page is not dumped into the log
    assert not _aria2c_of(tmp_path / "data")


async def test_a_server_answering_get_updates_at_once_is_polled_no_faster_than_the_floor(
    tmp_path: Path,
) -> None:
    """A misconfigured Bot API server or proxy that does not hold the long poll open: ariabot
    keeps to its floor (it polled hundreds of times a second) and still answers."""
    async with FakeTelegramServer() as server:
        server.hold_polls = False
        run = AriabotRun(tmp_path / "data", {
            "ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN, "ARIABOT_TELEGRAM_API_URL": server.url,
            "ARIABOT_ALLOWED_USERS": "42",
        }).start()
        try:
            await server.wait_until(lambda: server.count("getUpdates") >= 7, timeout=60,
                                    what="seven polls")
            starts = [request.time for request in server.requests_for("getUpdates")][:7]
            assert all(request.params.get("timeout") for request in
                       server.requests_for("getUpdates")), "a long poll is asked for"
            gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
            assert min(gaps) >= POLL_FLOOR * 0.9, gaps
            server.push_text(42, 42, "/help")
            await server.wait_for("sendMessage", lambda r: r.params["chat_id"] == 42,
                                  timeout=30)
            run.signal(signal.SIGTERM)
            assert await asyncio.to_thread(run.wait_exit) == 0
        finally:
            await asyncio.to_thread(run.stop)
