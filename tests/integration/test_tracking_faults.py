"""Tracking under races, store faults and restarts: a completion is stored and told once.

Real aria2c, real swarm, the real SQLite file; the store fails because another process holds
its write lock past ``busy_timeout`` (as in :mod:`tests.integration.test_store_faults`).
Memory follows the store: what a poll found is remembered only once it is written, so a
write that failed is made again by a later poll, and nothing else may put an older row back
in memory while a poll is storing a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from manager import MirrorDone, MirrorState, TorrentCompleted, TorrentState
from manager.errors import StoreError
from manager.notices import NoticeKind
from supervisor.config import Settings
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.integration.test_cli import cli, downloads
from tests.integration.test_manager import wait_state
from tests.integration.test_mirror import mirror_env
from tests.integration.test_store_faults import locked
from tests.rclonedest import require_rclone
from tests.runner import AriabotRun, ariabot_run, until, wait_until
from tests.swarm import Swarm, SwarmTorrent

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
CHAT = 5


class WatchedLock:
    """The manager's one lock, seen from the test: which tasks are waiting for it now.

    It wraps the manager's own :class:`asyncio.Lock` (still one lock for everybody), so it
    can be put in place while the manager runs.
    """

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock
        self.waiting: set[asyncio.Task[Any]] = set()

    def locked(self) -> bool:
        return self._lock.locked()

    async def acquire(self) -> bool:
        task = asyncio.current_task()
        assert task is not None
        self.waiting.add(task)
        try:
            return await self._lock.acquire()
        finally:
            self.waiting.discard(task)

    def release(self) -> None:
        self._lock.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


async def completed_notices(engine: Engine, download_id: int) -> int:
    return sum(1 for notice in await engine.store.notices.pending()
               if notice.kind is NoticeKind.COMPLETED and notice.download_id == download_id)


def completions(engine: Engine, download_id: int) -> int:
    return sum(1 for event in engine.events
               if isinstance(event, TorrentCompleted) and event.torrent.id == download_id)


async def test_a_progress_message_set_while_a_completion_is_stored_is_announced_once(
    engine_settings: Callable[..., Settings], swarm: Swarm
) -> None:
    """The bot stores its progress message's id just as a tiny download completes: the
    manager is between remembering the completion and writing it. The message id must not
    put the row from before the completion back in memory (the next poll would store the
    completion again: a second COMPLETED notice, a new link stamp)."""
    engine = await start_engine(engine_settings(ARIABOT_SEED_TIME="60"), progress_interval=3600)
    try:
        watched = WatchedLock(engine.manager.live.lock)
        engine.manager.live.lock = watched  # type: ignore[assignment]
        held, release = asyncio.Event(), asyncio.Event()
        real_call = engine.rpc.call

        async def hold_the_completion(method: str, *params: Any) -> Any:
            # Called only by an apply that found a completion, before it writes the rows.
            if method == "aria2.saveSession" and not held.is_set():
                held.set()
                await release.wait()
            return await real_call(method, *params)

        engine.rpc.call = hold_the_completion  # type: ignore[method-assign]
        torrent = swarm.add("tiny-race.bin", 256 * 1024, seed=231)
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=CHAT, user_id=1)
        download_id = added.torrent.id
        await asyncio.wait_for(held.wait(), 30)

        setting = asyncio.create_task(engine.manager.set_message(download_id, 4242))
        await until(lambda: setting.done() or setting in watched.waiting, 10,
                    "set_message to finish or to wait for the lock")
        release.set()
        await asyncio.wait_for(setting, 10)
        engine.rpc.call = real_call  # type: ignore[method-assign]
        async with watched:  # the held apply has written its rows
            first = await engine.store.downloads.get(download_id)
        assert first is not None and first.completed_at is not None
        assert first.state == TorrentState.SEEDING.value

        for _ in range(3):  # the next polls find nothing new
            await engine.manager.poll_once(sweep=True)
        row = await engine.store.downloads.get(download_id)
        assert row is not None and row.message_id == 4242
        assert row.completed_at == first.completed_at, "the completion was stored again"
        assert await completed_notices(engine, download_id) == 1
        assert completions(engine, download_id) == 1
        torrent = await engine.manager.get(download_id)
        assert (torrent.state, torrent.message_id) == (TorrentState.SEEDING, 4242)
    finally:
        await stop_engine(engine)


def _watch_writes(family: object, name: str,
                  failed: Callable[[tuple[Any, ...]], bool]
                  ) -> tuple[asyncio.Event, list[Exception]]:
    """An event set once a call of ``family.<name>`` (a family of the store, such as
    ``engine.store.downloads``) that ``failed(args)`` picks raised (the real write, refused
    by SQLite), and the errors it raised; they go on to the caller."""
    seen = asyncio.Event()
    errors: list[Exception] = []
    real: Callable[..., Awaitable[Any]] = getattr(family, name)

    async def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            return await real(*args, **kwargs)
        except Exception as error:
            if failed(args):
                errors.append(error)
                seen.set()
            raise

    setattr(family, name, watched)
    return seen, errors


async def test_a_completion_whose_write_failed_is_stored_told_and_mirrored_once_later(
    engine_settings: Callable[..., Settings], swarm: Swarm, tmp_path: Path
) -> None:
    """The download completes while the database is locked: the poll's transaction fails.
    Once the lock is gone, a later poll stores the completion (no restart), with one
    COMPLETED notice and one automatic mirror."""
    require_rclone()
    target = tmp_path / "nas-folder"
    env = mirror_env(tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}",
                     ARIABOT_MIRROR_AUTO="true")
    engine = await start_engine(engine_settings(**env))
    try:
        torrent = swarm.add("write-failed.bin", 2 * MiB, seed=232)
        completion_refused, errors = _watch_writes(
            engine.store.downloads, "update_many",
            lambda args: any("completed_at" in values for values in args[0].values()))
        with swarm.throttled(128 * 1024):
            added = await engine.manager.add(torrent.torrent_bytes, chat_id=CHAT, user_id=1)
            download_id = added.torrent.id
            await wait_state(engine, download_id, TorrentState.DOWNLOADING)
            with locked(engine.layout.database) as release:
                swarm.seeder.set_upload_limit(0)  # it completes while the lock is held
                await asyncio.wait_for(completion_refused.wait(), 60)
                assert all(isinstance(e, StoreError) for e in errors), errors  # clear words
                row = await engine.store.downloads.get(download_id)
                assert row is not None and row.completed_at is None
                release()
                await wait_state(engine, download_id, TorrentState.COMPLETE, timeout=30)
        row = await engine.store.downloads.get(download_id)
        assert row is not None and row.completed_at is not None
        assert completions(engine, download_id) == 1
        assert await completed_notices(engine, download_id) == 1

        def mirrors_done() -> int:
            return sum(1 for e in engine.events
                       if isinstance(e, MirrorDone) and e.torrent.id == download_id)

        await until(lambda: mirrors_done() >= 1, 60, "the automatic mirror")
        await engine.manager.poll_once(sweep=True)
        assert (await engine.manager.get(download_id)).mirror.state is MirrorState.DONE
        assert mirrors_done() == 1
        assert await completed_notices(engine, download_id) == 1
    finally:
        await stop_engine(engine)


async def test_an_aria2c_alert_whose_write_failed_is_stored_once_the_store_recovers(
    engine_settings: Callable[..., Settings],
) -> None:
    """aria2c is killed while the database is locked: its "down" alert cannot be stored
    then. The bot sends only stored notices, so the alert must be stored once it can be."""
    engine = await start_engine(engine_settings())
    try:
        alert_refused, _errors = _watch_writes(engine.store.notices, "add",
                                      lambda args: args[0] is NoticeKind.ARIA2_DOWN)
        session = engine.aria2.session_id
        with locked(engine.layout.database):
            assert engine.aria2.pid is not None
            os.kill(engine.aria2.pid, signal.SIGKILL)
            await asyncio.wait_for(alert_refused.wait(), 30)
        await until(lambda: engine.aria2.session_id not in (None, session), 30, "restart")

        async def stored() -> list[NoticeKind]:
            return [n.kind for n in await engine.store.notices.pending() if n.kind.is_engine]

        deadline = asyncio.get_running_loop().time() + 30
        while NoticeKind.ARIA2_RESTARTED not in (kinds := await stored()):
            assert asyncio.get_running_loop().time() < deadline, f"alerts stored: {kinds}"
            await asyncio.sleep(0.1)
        assert kinds == [NoticeKind.ARIA2_DOWN, NoticeKind.ARIA2_RESTARTED]
    finally:
        await stop_engine(engine)


SEEDING = {"ARIABOT_SEED_TIME": "60", "ARIABOT_SEED_RATIO": "0"}


def _reconciled(output: str) -> list[str]:
    return [line.split("manager.tracking.sync: ", 1)[1] for line in output.splitlines()
            if "manager.tracking.sync: reconciled" in line]


def _seeding_again(run: AriabotRun, torrent: SwarmTorrent) -> None:
    wait_until(lambda: (e := downloads(run)[0])["state"] == "seeding"
               and e["completed_bytes"] == torrent.total_bytes, 60, "seeding again",
               describe=lambda: f"{downloads(run)}\n{run.output[-3000:]}")


@pytest.mark.parametrize("how", ["sigterm", "kill-aria2c"])
def test_a_seeding_download_stays_seeding_in_the_log_across_a_restart(
    tmp_path: Path, swarm: Swarm, how: str
) -> None:
    """aria2 hash-checks a finished download handed back after a restart: while it checks,
    it reports it as a download that starts. The log says nothing of it (no "seeding ->
    downloading -> seeding"), and one reconcile is logged, counting it as finished."""
    torrent = swarm.add(f"log-flap-{how}.bin", 64 * MiB, seed=233)  # a check that lasts
    with ariabot_run(tmp_path / "data", SEEDING) as first:
        first.wait_ready()
        assert cli(first, "add", torrent.magnet).returncode == 0
        wait_until(lambda: downloads(first)[0]["state"] == "seeding", 60, "seeding")
        assert _reconciled(first.output) == ["reconciled 0 unfinished download(s) with aria2"]
        if how == "sigterm":
            first.signal(signal.SIGTERM)
            assert first.wait_exit() == 0
            second = AriabotRun(tmp_path / "data", {**first.env, **SEEDING}).start()
            mark = 0
        else:
            second, mark = first, len(first.output)
            old = first.runtime()["aria2c_pid"]
            psutil.Process(old).kill()
            first.wait_running(30, not_pid=old)
        try:
            second.wait_ready()
            _seeding_again(second, torrent)
            after = second.output[mark:]
            changes = [line for line in after.splitlines() if "ariabot.downloads:" in line]
            assert changes == [], after
            assert _reconciled(after) == [
                "reconciled 0 unfinished download(s) with aria2 (and 1 finished, seeding or "
                "paused)"], after
        finally:
            if second is not first:
                second.stop()


async def test_a_reconcile_whose_write_failed_is_one_warning_and_runs_again(
    engine_settings: Callable[..., Settings], swarm: Swarm,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aria2c is killed while the database is locked: the reconcile after its restart cannot
    write what it found. A busy database is no bug: one warning line, no traceback, and the
    reconcile runs again until it is written (found by the promises machine's soak)."""
    caplog.set_level("INFO", logger="manager.tracking.sync")
    engine = await start_engine(engine_settings())
    try:
        torrent = swarm.add("reconcile-locked.bin", 4 * MiB, seed=233)
        with swarm.throttled(128 * 1024):
            added = await engine.manager.add(torrent.torrent_bytes, chat_id=CHAT, user_id=1)
            await wait_state(engine, added.torrent.id, TorrentState.DOWNLOADING)
            session = engine.aria2.session_id
            with locked(engine.layout.database) as release:
                assert engine.aria2.pid is not None
                os.kill(engine.aria2.pid, signal.SIGKILL)
                await until(lambda: engine.aria2.session_id not in (None, session), 30,
                            "aria2c to restart")
                await until(lambda: any(r.name == "manager.tracking.sync" and "reconcile" in
                                        r.getMessage() and r.levelno >= logging.WARNING
                                        for r in caplog.records), 30,
                            "the reconcile to meet the locked database")
                refused = len(caplog.records)
                release()
                await until(lambda: any(r.name == "manager.tracking.sync" and
                                        r.getMessage().startswith("reconciled")
                                        for r in caplog.records[refused:]), 30,
                            "the reconcile to run again once the store answers")
    finally:
        await stop_engine(engine)
    tracebacks = [r.getMessage() for r in caplog.records
                  if r.name == "manager.tracking.sync" and r.exc_info]
    assert tracebacks == []
