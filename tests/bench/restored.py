"""A data dir as a restart finds it, with N stored downloads, and ``ariabot run`` timed on it.

The N downloads are dead magnets (random info-hashes, the only tracker a closed loopback
port) stored as queued rows, inserted in one transaction (:func:`~tests.bench.common.insert_rows`),
and listed with the same GIDs in aria2's session file, which aria2c restores at start. Shared
by the scale part (SQLite and PostgreSQL at 100,000) and the engines part (both at 10,000).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from manager.store import Store
from supervisor.control import ControlClient, NotRunning
from supervisor.layout import StateLayout, write_private
from tests.bench.common import closed_tracker, dead_downloads, insert_rows, wait_for
from tests.bench.stepmeter import STEPS_ENV
from tests.runner import AriabotRun

__all__ = ["RESTART_ENV", "prepare", "store_url", "timed_start"]

RESTART_ENV = {"ARIABOT_MAX_CONCURRENT": "50", "ARIABOT_BT_STOP_TIMEOUT": "0",
               "ARIABOT_SEED_TIME": "0", "ARIABOT_PROGRESS_INTERVAL": "1",
               "ARIABOT_HEALTH_INTERVAL": "5", "ARIABOT_HEALTH_TIMEOUT": "10",
               "ARIABOT_HEALTH_FAILURES": "3"}
"""The product's health-probe timings (10 s, 3 probes), not the tests' 1 s: at 100,000
downloads aria2c itself takes over a second to answer a read of its whole queue, and the
tests' probe would restart it mid-reconcile. A 1 s poll, so that a few seconds see several."""


def store_url(data_dir: Path, database_url: str | None) -> str:
    """The store's URL: ``database_url``, or the data dir's SQLite file."""
    return database_url or f"sqlite:///{StateLayout(data_dir).database}"


def prepare(data_dir: Path, count: int, *, chat_id: int,
            database_url: str | None = None) -> Path:
    """Fill ``data_dir`` (and the PostgreSQL database at ``database_url``, if given) with
    ``count`` queued downloads of ``chat_id``; returns their folder."""
    layout = StateLayout(data_dir)
    layout.create()

    async def migrate() -> None:
        store = Store(store_url(data_dir, database_url))
        await store.open()  # creates the schema, as the first ariabot run does
        await store.close()

    asyncio.run(migrate())
    folder = data_dir / "downloads" / "torrents" / str(chat_id)
    folder.mkdir(parents=True, mode=0o700)
    downloads = dead_downloads(closed_tracker(), 0, count)
    insert_rows(database_url or layout.database, downloads, chat_id=chat_id, directory=folder)
    write_private(layout.session, "".join(f"{d.magnet}\n gid={d.gid}\n dir={folder}\n"
                                          for d in downloads))
    return folder


def timed_start(data_dir: Path, count: int, *, database_url: str | None = None,
                steps: Path | None = None) -> tuple[AriabotRun, ControlClient, dict[str, Any]]:
    """Start ``ariabot run`` on a prepared data dir; time aria2c ready (its own restore) and
    the control socket's first answer (which comes after the ``count`` rows were loaded and
    reconciled). The caller stops the returned run.

    Parameters:
        steps: where its event loop's slow steps are written (:mod:`tests.bench.stepmeter`).

    Raises:
        RuntimeError: ariabot did not say it reconciled ``count`` downloads.
    """
    env = {**RESTART_ENV, **({"ARIABOT_DATABASE_URL": database_url} if database_url else {})}
    if steps is None:
        ariabot = AriabotRun(data_dir, env)
    else:
        ariabot = AriabotRun(data_dir, {**env, STEPS_ENV: str(steps)},
                             module="tests.bench.stepmeter")
    socket = StateLayout(data_dir).control_socket
    client = ControlClient(socket, timeout=60)

    def answers() -> bool:
        try:
            return socket.exists() and bool(client.request("health").get("ok"))
        except (NotRunning, OSError):
            return False

    started = time.monotonic()
    ariabot.start()
    try:
        info = ariabot.wait_running(timeout=120)
        ready = time.monotonic() - started
        wait_for(answers, timeout=120, what="ariabot's control socket", interval=0.005)
        reconciled = time.monotonic() - started
        if f"reconciled {count} unfinished download(s)" not in ariabot.output:
            raise RuntimeError(f"ariabot did not reconcile {count}: {ariabot.output[-2000:]}")
    except BaseException:
        ariabot.stop()
        raise
    return ariabot, client, {"aria2_ready_s": ready, "reconciled_s": reconciled,
                             "ariabot_pid": info["ariabot_pid"],
                             "aria2c_pid": info["aria2c_pid"]}
