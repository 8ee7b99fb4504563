"""Webhook mode for real: ``ariabot run`` with ``ARIABOT_WEBHOOK_URL`` serves PTB's webhook
server on a loopback port, as it would behind an HTTPS reverse proxy.

Telegram learns the secret token from ``setWebhook`` (the fake Bot API server records it)
and sends it with every update; the test POSTs updates the way the proxy would pass them on.
An update with the token is answered through the Bot API; one without it, or with another
token, is refused (403) and never handled.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer
from tests.runner import AriabotRun, free_port

USER = 1001
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def _post(url: str, update: dict[str, Any], token: str | None,
                timeout: float = 15.0) -> int:
    """POST one update like the proxy in front of ariabot; retried while the port is not
    listening yet (PTB listens right after ``setWebhook``). Returns the HTTP status."""
    headers = {SECRET_HEADER: token} if token is not None else {}
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.post(url, json=update, headers=headers) as answer:
                    return answer.status
            except aiohttp.ClientConnectionError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)


async def test_webhook_mode_answers_updates_with_the_secret_and_refuses_others(
    tmp_path: Path,
) -> None:
    port = free_port()
    path = f"hook/{secrets.token_urlsafe(8)}"
    public_url = f"https://127.0.0.1/{path}"  # recorded by the fake server, never contacted
    async with FakeTelegramServer() as server:
        run = AriabotRun(tmp_path / "data", {
            "ARIABOT_TELEGRAM_TOKEN": DEFAULT_TOKEN,
            "ARIABOT_TELEGRAM_API_URL": server.url,
            "ARIABOT_ALLOWED_USERS": str(USER),
            "ARIABOT_WEBHOOK_URL": public_url,
            "ARIABOT_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
        }).start()
        try:
            registered = await server.wait_for("setWebhook", timeout=60)
            params = registered.params
            assert params["url"] == public_url and server.webhook_url == public_url
            assert params["allowed_updates"] == ["message", "callback_query"]
            assert params.get("drop_pending_updates") in (None, False)
            secret = params["secret_token"]
            assert len(secret) >= 32
            local = f"http://127.0.0.1:{port}/{path}"

            assert await _post(local, server.text_update(USER, USER, "/help"), None) == 403
            assert run.process is not None
            bound = {c.laddr.ip for c in psutil.Process(run.process.pid).net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
            assert bound == {"127.0.0.1"}  # ARIABOT_WEBHOOK_LISTEN, behind the proxy

            # No token, a wrong token: refused, nothing handled.
            for token in (None, secret[:-1] + ("x" if secret[-1] != "x" else "y")):
                mark = server.mark()
                update = server.text_update(USER, USER, "/help")
                assert await _post(local, update, token) == 403
                assert not [r for r in server.requests[mark:] if r.method == "sendMessage"]

            # The right token: handled, answered through the Bot API.
            mark = server.mark()
            update = server.text_update(USER, USER, "/status")
            assert await _post(local, update, secret) == 200
            reply = await server.wait_for(
                "sendMessage", lambda r: r.params.get("chat_id") == USER, since=mark,
                timeout=30)
            assert reply.status == 200
            assert reply.params["text"].startswith("<b>Downloads</b>\nNothing here yet.")
            assert len(server.requests_for("sendMessage")) == 1  # the refused two: nothing
            assert server.count("getUpdates") == 0  # no long polling beside the webhook

            run.signal(signal.SIGTERM)
            assert await asyncio.to_thread(run.wait_exit) == 0
        finally:
            await asyncio.to_thread(run.stop)
    output = run.output
    assert "the Telegram bot @ariabot_test_bot is running (webhook)" in output
    assert secret not in output and DEFAULT_TOKEN.split(":")[1] not in output
