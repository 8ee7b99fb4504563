"""The Telegram token and aria2's RPC secret never reach a log, at any level, in any format.

The real ``ariabot run`` at DEBUG (every library logger talking: httpx prints request URLs,
which carry the token; aria2p and the RPC adapter see payloads, which carry the secret),
driven through one download and a few commands against the fake Bot API server, with an
aria2c restart in the middle. Then every log it wrote is searched.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import string
from pathlib import Path

import pytest

from supervisor.layout import StateLayout
from supervisor.logs import MASK
from tests.fakes.telegram_api import FakeTelegramServer
from tests.runner import AriabotRun
from tests.swarm import Swarm

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
USER = 1001
LONG = 60.0


def _new_token() -> str:
    alphabet = string.ascii_letters + string.digits
    return f"{secrets.randbelow(10**9) + 10**8}:" + "".join(
        secrets.choice(alphabet) for _ in range(35))


def _logs(data_dir: Path, run: AriabotRun) -> dict[str, str]:
    """Everything ariabot and aria2c logged: the captured stderr/stdout and log files."""
    layout = StateLayout(data_dir)
    found = {"ariabot output": run.output}
    for path in (layout.aria2_log, layout.aria2_console, *data_dir.rglob("*.log")):
        if path.is_file():
            found[str(path.relative_to(data_dir))] = path.read_text(errors="replace")
    return found


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_token_and_rpc_secret_never_logged(tmp_path: Path, swarm: Swarm,
                                                 log_format: str) -> None:
    token = _new_token()
    seeded = swarm.add(f"secrets-{log_format}.bin", MIB, seed=58 + len(log_format))
    data_dir = tmp_path / "data"
    secrets_seen: list[str] = []
    async with FakeTelegramServer(token=token) as server:
        run = AriabotRun(data_dir, {
            "ARIABOT_TELEGRAM_TOKEN": token,
            "ARIABOT_TELEGRAM_API_URL": server.url,
            "ARIABOT_ALLOWED_USERS": str(USER),
            "ARIABOT_LOG_LEVEL": "DEBUG",
            "ARIABOT_EDIT_INTERVAL": "1",
            "ARIABOT_SEED_TIME": "0",
            "ARIABOT_PROGRESS_INTERVAL": "1",
            "ARIABOT_HEALTH_TIMEOUT": "5",
            "ARIABOT_HEALTH_FAILURES": "3",
        }, args=("--log-format", log_format)).start()
        try:
            info = await asyncio.to_thread(run.wait_running, 30)
            secrets_seen.append(info["rpc_secret"])
            await server.wait_until(lambda: server.polls_in_flight, timeout=30,
                                    what="the bot's first long poll")
            server.push_text(USER, USER, f"/torrent {seeded.magnet}")
            await server.wait_for("sendMessage", lambda r: "is downloaded" in r.params["text"],
                                  timeout=LONG)
            for text in ("/status", "/pause 1", "/files 1", "/nonsense"):
                mark = server.mark()
                server.push_text(USER, USER, text)
                await server.wait_for("sendMessage", since=mark, timeout=LONG)
            # An aria2c restart: reconnection and reconcile paths log too.
            os.kill(info["aria2c_pid"], signal.SIGKILL)
            again = await asyncio.to_thread(run.wait_running, 30, info["aria2c_pid"])
            secrets_seen.append(again["rpc_secret"])
            run.signal(signal.SIGTERM)
            assert await asyncio.to_thread(run.wait_exit) == 0
        finally:
            await asyncio.to_thread(run.stop)
    logs = _logs(data_dir, run)
    assert "DEBUG" in logs["ariabot output"] or '"debug"' in logs["ariabot output"].lower()
    needles = {"token": token, "token secret part": token.split(":", 1)[1],
               **{f"rpc secret {i}": s for i, s in enumerate(secrets_seen)}}
    leaks = [f"{what} in {name}" for name, text in logs.items()
             for what, needle in needles.items() if needle in text]
    assert not leaks, leaks
    # The search meant something: secret-bearing lines were logged, masked.
    assert MASK in logs["ariabot output"]
    print(f"\nFIGURES log secrets ({log_format}): searched "
          f"{ {name: len(text) for name, text in logs.items()} } characters for "
          f"{len(needles)} secrets: no leak")
