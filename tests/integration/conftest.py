"""A real aria2c supervised like ``ariabot run`` does, with a real manager on top."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from manager import Aria2Endpoint, Aria2Rpc, ManagerConfig, Store, TorrentManager
from manager.events import Event
from supervisor.aria2c import locate_aria2c
from supervisor.config import Settings, load_settings
from supervisor.layout import StateLayout
from supervisor.process import Aria2Process, SupervisionPolicy
from supervisor.rclone import mirror_uploader
from supervisor.render import new_secret, pick_free_port, render_config
from supervisor.root import _tell_manager, link_config, mirror_config
from tests.swarm import free_listen_port


@dataclass
class Engine:
    """aria2c + store + manager, wired like the composition root wires them."""

    settings: Settings
    layout: StateLayout
    aria2: Aria2Process
    rpc: Aria2Rpc
    store: Store
    manager: TorrentManager
    events: list[Event]

    def folder(self, chat_id: int) -> Path:
        return self.settings.download_dir / "torrents" / str(chat_id)


@pytest.fixture
def engine_settings(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., Settings]:
    database = database_env(request)

    def make(**env: str) -> Settings:
        return loopback_settings(tmp_path / "data", **{
            "ARIABOT_PROGRESS_INTERVAL": "1", "ARIABOT_SEED_TIME": "0", **database, **env})
    return make


def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """``ARIABOT_DATABASE_URL`` for a test that runs on both engines (it uses the
    ``database_url`` fixture, e.g. ``@pytest.mark.usefixtures("database_url")``) and got
    PostgreSQL; nothing otherwise: the default SQLite file in the data dir, as users have."""
    if "database_url" not in request.fixturenames:
        return {}
    url = request.getfixturevalue("database_url")
    return {} if url.startswith("sqlite") else {"ARIABOT_DATABASE_URL": url}


@pytest.fixture
def run_database(request: pytest.FixtureRequest) -> dict[str, str]:
    """:func:`database_env` for a test that starts ``ariabot run`` itself."""
    return database_env(request)


def loopback_settings(data_dir: Path, **env: str) -> Settings:
    """Settings for a test aria2c: its own data dir, no DHT, a free peer port."""
    return load_settings(None, {
        "ARIABOT_DATA_DIR": str(data_dir), "ARIABOT_ENABLE_DHT": "false",
        "ARIABOT_LISTEN_PORT": str(free_listen_port()), **env,
    })


def prepare_aria2(settings: Settings, policy: SupervisionPolicy,
                  **options: Any) -> tuple[Aria2Process, Aria2Endpoint, StateLayout]:
    """Render aria2.conf like ``ariabot run`` does and build (not start) its Aria2Process."""
    aria2c = shutil.which(settings.aria2c)
    if aria2c is None:
        pytest.fail("aria2c is not on PATH: install it (sudo apt-get install aria2)",
                    pytrace=False)
    layout = StateLayout(settings.data_dir)
    layout.create()
    settings.download_dir.mkdir(parents=True, exist_ok=True)
    endpoint = Aria2Endpoint(pick_free_port(), new_secret())
    render_config(settings, layout, port=endpoint.port, secret=endpoint.secret)
    return Aria2Process(Path(aria2c), layout, endpoint, policy, **options), endpoint, layout


FAST_POLICY = SupervisionPolicy(health_interval=0.5, health_timeout=2, backoff_initial=0.05,
                                backoff_max=0.2, min_uptime=1)


async def start_engine(
    settings: Settings,
    policy: SupervisionPolicy = FAST_POLICY,
    rpc_timeout: float = 10,
    aria2_version: tuple[int, ...] | None = None,
    *,
    via: Callable[[Aria2Endpoint], Aria2Endpoint] | None = None,
    progress_interval: float | None = None,
) -> Engine:
    """Start aria2c and the manager on ``settings`` (the caller stops them).

    Parameters:
        settings: as ``ariabot run`` would read them.
        policy: the supervisor's timing.
        rpc_timeout: seconds one RPC call of the manager may take.
        aria2_version: what the manager is told of aria2c's version; by default that of
            the aria2c run, as the composition root tells it.
        via: gives the manager another way to aria2c's RPC port (a proxy such as
            :class:`tests.wsgate.WebSocketGate`); the supervisor keeps probing the real one.
        progress_interval: replaces the setting (beyond what settings allow), for a test
            that must not be rescued by the progress poll.
    """
    aria2, endpoint, layout = prepare_aria2(settings, policy)
    store = Store(settings.database_url or f"sqlite:///{layout.database}")  # as the root does
    await store.open()
    rpc = Aria2Rpc(via(endpoint) if via else endpoint, timeout=rpc_timeout)
    uploader = await asyncio.to_thread(mirror_uploader, settings)
    manager = TorrentManager(rpc, store, ManagerConfig(
        download_dir=settings.download_dir,
        progress_interval=progress_interval or settings.progress_interval,
        torrent_max_bytes=settings.torrent_max_bytes, bt_stop_timeout=settings.bt_stop_timeout,
        aria2_version=aria2_version or locate_aria2c(str(aria2.binary))[1],
        enable_dht=settings.enable_dht,
        mirror=mirror_config(settings),
        links=link_config(settings, layout),
    ), uploader=uploader)
    aria2.subscribe(lambda change: _tell_manager(manager, change))
    events: list[Event] = []
    manager.subscribe(events.append)
    await aria2.start()
    await manager.start()
    return Engine(settings, layout, aria2, rpc, store, manager, events)


async def stop_engine(engine: Engine) -> None:
    await engine.manager.close()
    await engine.aria2.stop()
    await engine.rpc.close()
    await engine.store.close()


@pytest.fixture
async def engine(engine_settings: Callable[..., Settings]) -> AsyncIterator[Engine]:
    running = await start_engine(engine_settings())
    try:
        yield running
    finally:
        await stop_engine(running)
