"""A running ariabot's health: the control socket's "health" answer, and how ``ariabot
status`` and ``ariabot doctor`` show it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from manager import Store
from manager.aria2.notifications import ListenerHealth
from supervisor.control import ControlClient, ControlServer
from supervisor.doctor import health_checks

HEALTHY = ListenerHealth(running=True, connected=True, deaths=0, last_error=None,
                         restarting=False)


class FakeManager:
    def __init__(self, version: tuple[int, ...] | None, listener: ListenerHealth | None,
                 store: Store):
        self.config = SimpleNamespace(aria2_version=version)
        self.listener = listener
        self.store = store  # a real one: the answer says whether its database answers

    def listener_health(self) -> ListenerHealth | None:
        return self.listener


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FakeManager, ControlClient]]:
    store = Store(f"sqlite:///{tmp_path / 'ariabot.db'}")
    await store.open()
    manager = FakeManager((1, 36, 0), HEALTHY, store)
    server = ControlServer(manager, tmp_path / "control.sock")  # type: ignore[arg-type]
    await server.start()
    try:
        yield manager, ControlClient(tmp_path / "control.sock", timeout=10)
    finally:
        await server.stop()
        await store.close()


async def test_health_answer_has_the_version_its_limits_and_the_listener(served) -> None:
    manager, client = served
    manager.listener = ListenerHealth(running=True, connected=False, deaths=2,
                                      last_error="TypeError: boom", restarting=True)
    answer = await asyncio.to_thread(client.request, "health")
    assert answer == {"ok": True, "health": {
        "aria2c_version": "1.36.0",
        "limitations": ["aria2c 1.36.0 looks for hybrid torrents under a wrong info-hash and "
                        "finds no peers (fixed in aria2 1.37)"],
        "notifications": {"running": True, "connected": False, "deaths": 2,
                          "last_error": "TypeError: boom", "restarting": True},
        "database": {"name": manager.store.url, "reachable": True, "error": None},
    }}


async def test_health_before_the_manager_started_and_with_aria2c_1_37(served) -> None:
    manager, client = served
    manager.config.aria2_version, manager.listener = (1, 37, 0), None
    answer = await asyncio.to_thread(client.request, "health")
    assert answer["health"] == {"aria2c_version": "1.37.0", "limitations": [],
                                "notifications": None, "database": {
                                    "name": manager.store.url, "reachable": True,
                                    "error": None}}


def lines(notifications: object, version: str | None = "1.37.0",
          limitations: tuple[str, ...] = ()) -> list[str]:
    return [check.line for check in health_checks({
        "aria2c_version": version, "limitations": list(limitations),
        "notifications": notifications})]


def test_status_lines_for_a_healthy_listener() -> None:
    assert lines(asdict(HEALTHY)) == ["✔ aria2 notifications: connected",
                                       "✔ aria2c 1.37.0 is running"]


def test_status_lines_say_the_listener_failed_and_came_back() -> None:
    healthy_again = {**asdict(HEALTHY), "deaths": 1, "last_error": "ValueError: x"}
    assert lines(healthy_again)[0] == (
        "✔ aria2 notifications: connected (the listener failed once and was restarted; "
        "last: ValueError: x)")


@pytest.mark.parametrize(("state", "start"), [
    ({"restarting": True, "deaths": 3}, "✘ aria2 notifications: restarting after a failure "
                                        "(the listener failed 3 times"),
    ({"running": False}, "✘ aria2 notifications: the listener is not running"),
    ({"connected": False}, "○ aria2 notifications: not connected to aria2c — "),
])
def test_status_lines_for_a_listener_in_trouble(state: dict, start: str) -> None:
    assert lines({**asdict(HEALTHY), **state})[0].startswith(start)


def test_status_lines_before_the_listener_started_and_for_aria2c_1_36() -> None:
    limitation = "aria2c 1.36.0 looks for hybrid torrents under a wrong info-hash"
    assert lines(None, "1.36.0", (limitation,)) == [
        "○ aria2 notifications: not listening yet — ariabot is starting",
        "✔ aria2c 1.36.0 is running",
        f"○ hybrid (v1+v2) torrents are refused: {limitation} — install aria2 1.37 or newer "
        "(Debian 13 ships it) and set ARIABOT_ARIA2C to it",
    ]


def test_status_lines_say_whether_the_database_answers_naming_it_masked() -> None:
    name = "postgresql://ariabot:********@db:5432/ariabot"
    down = {"name": name, "reachable": False,
            "error": "the database is unavailable (Connection refused); try again"}
    shown = [check.line for check in health_checks({
        "aria2c_version": None, "limitations": [], "notifications": asdict(HEALTHY),
        "database": down})]
    assert shown[1] == (
        f"✘ database {name} is unreachable: the database is unavailable (Connection "
        "refused); try again — ariabot goes on downloading and stores what happened once the "
        "database is back; check the server and ARIABOT_DATABASE_URL")
    up = [check.line for check in health_checks({
        "aria2c_version": None, "limitations": [], "notifications": asdict(HEALTHY),
        "database": {**down, "reachable": True, "error": None}})]
    assert up[1] == f"✔ database {name} answers"
