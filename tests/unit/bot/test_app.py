"""EmbeddedBot's life cycle against the fake Bot API server (no manager work involved).

Webhook mode for real (``ariabot run``, an update POSTed with the secret token) is in
``tests/integration/test_webhook.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from bot.app import EmbeddedBot, WebhookUnavailable, build_application
from bot.config import BotConfig
from bot.startup import BotApiUnusable
from manager import Event
from tests.fakes.telegram_api import DEFAULT_TOKEN, MALFORMED_GET_ME, FakeTelegramServer


class FakeManager:
    """Only what EmbeddedBot touches: subscribe/unsubscribe, watching the outbox, the
    chats Telegram moved."""

    def __init__(self) -> None:
        self.subscribers: list[Any] = []
        self.watchers: list[Any] = []

    def watch_notices(self, watcher: Any) -> Any:
        self.watchers.append(watcher)
        return lambda: self.watchers.remove(watcher)

    async def chat_moves(self) -> dict[int, int]:
        return {}

    async def take_turn(self, paces: Any) -> float:
        return 0.0  # one node: no turns shared

    def subscribe(self, subscriber: Any) -> Any:
        self.subscribers.append(subscriber)
        return lambda: self.subscribers.remove(subscriber)

    def emit(self, event: Event) -> None:
        for subscriber in list(self.subscribers):
            subscriber(event)


@pytest.fixture(autouse=True)
def _timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def config(server: FakeTelegramServer, tmp_path: Path, **changes: Any) -> BotConfig:
    return BotConfig(token=server.token, download_dir=tmp_path, api_url=server.url,
                     allowed_users=frozenset({1}), poll_timeout=1, **changes)


async def test_start_subscribes_before_receiving_and_stop_undoes_everything(
    tmp_path: Path,
) -> None:
    manager = FakeManager()
    async with FakeTelegramServer() as server:
        bot = EmbeddedBot(build_application(config(server, tmp_path), manager), manager)  # type: ignore[arg-type]
        await bot.start()
        assert manager.subscribers == [bot.board] and len(manager.watchers) == 1
        names = [c["command"] for c in server.commands()]
        assert names == ["torrent", "status", "pause", "resume", "cancel", "files", "log", "mirror",
                         "link", "rss", "help"]
        await server.wait_until(lambda: server.polls_in_flight, what="a long poll")
        poll = server.requests_for("deleteWebhook")[0]
        assert poll.params.get("drop_pending_updates") in (None, False)
        await bot.stop()
        assert manager.subscribers == [] and manager.watchers == []
        assert not bot.application.running
        await bot.stop()  # twice is harmless
        assert server.menu_button() == {"type": "commands"}  # no Mini App: left alone


@pytest.mark.parametrize(("before", "after"), [
    ({"type": "web_app", "text": "Downloads", "web_app": {"url": "https://f.example/app/"}},
     {"type": "default"}),  # an earlier run's Mini App, now off: not a dead page
    ({"type": "web_app", "text": "Shop", "web_app": {"url": "https://shop.example/"}},
     {"type": "web_app", "text": "Shop", "web_app": {"url": "https://shop.example/"}}),
])
async def test_without_a_mini_app_only_ariabots_own_menu_button_is_reset(
    tmp_path: Path, before: dict[str, Any], after: dict[str, Any],
) -> None:
    manager = FakeManager()
    async with FakeTelegramServer() as server:
        server.set_menu_button(before)
        bot = EmbeddedBot(build_application(config(server, tmp_path), manager), manager)  # type: ignore[arg-type]
        await bot.start()
        await bot.stop()
        assert server.menu_button() == after


EARLIER = {"type": "web_app", "text": "Downloads",
           "web_app": {"url": "https://old.example/app/"}}
"""The menu button an earlier run with an HTTPS Mini App left."""


@pytest.mark.parametrize(("url", "button"), [
    ("https://files.example.org/app/",
     {"type": "web_app", "text": "Downloads",
      "web_app": {"url": "https://files.example.org/app/"}}),
    # Telegram opens Mini Apps over HTTPS only: the earlier button goes, none is asked for
    ("http://127.0.0.1:1/app/", {"type": "default"}),
])
async def test_with_a_mini_app_the_menu_opens_it_and_web_is_a_command(
    tmp_path: Path, url: str, button: dict[str, Any], caplog: pytest.LogCaptureFixture,
) -> None:
    manager = FakeManager()
    async with FakeTelegramServer() as server:
        server.set_menu_button(EARLIER)
        bot = EmbeddedBot(build_application(config(server, tmp_path, miniapp_url=url),
                                            manager), manager)  # type: ignore[arg-type]
        await bot.start()
        try:
            assert [c["command"] for c in server.commands()][-2:] == ["web", "help"]
            assert server.menu_button() == button
            assert "menu button" not in caplog.text
        finally:
            await bot.stop()


async def test_webhook_without_its_server_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tornado" else real(name, *a))
    manager = FakeManager()
    async with FakeTelegramServer() as server:
        settings = config(server, tmp_path, webhook_url="https://bot.example.org/hook")
        bot = EmbeddedBot(build_application(settings, manager), manager)  # type: ignore[arg-type]
        with pytest.raises(WebhookUnavailable, match="python-telegram-bot\\[webhooks\\]"):
            await bot.start()
        assert manager.subscribers == [] and not bot.application.running


async def test_a_refused_token_fails_start_and_leaves_nothing_running(tmp_path: Path) -> None:
    manager = FakeManager()
    async with FakeTelegramServer() as server:
        wrong = BotConfig(token="999:" + "B" * 35, download_dir=tmp_path, api_url=server.url)
        assert wrong.token != DEFAULT_TOKEN
        bot = EmbeddedBot(build_application(wrong, manager), manager)  # type: ignore[arg-type]
        with pytest.raises(BotApiUnusable) as caught:
            await bot.start()
        assert manager.subscribers == []
        assert not bot.application.running
    message = str(caught.value)
    assert message.startswith("Telegram rejected the token (Unauthorized): copy it again "
                              "from @BotFather")
    assert wrong.token.split(":")[1] not in message


@pytest.mark.parametrize("answer", list(MALFORMED_GET_ME))
async def test_a_malformed_get_me_fails_start_in_one_clear_error(
    tmp_path: Path, answer: str, caplog: pytest.LogCaptureFixture,
) -> None:
    manager = FakeManager()
    async with FakeTelegramServer() as server:
        server.answer_next("getMe", MALFORMED_GET_ME[answer])
        bot = EmbeddedBot(build_application(config(server, tmp_path), manager), manager)  # type: ignore[arg-type]
        with pytest.raises(BotApiUnusable, match="answered getMe with something that is not a "
                                                 "Bot API answer"):
            await bot.start()
        assert manager.subscribers == [] and not bot.application.running
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
