"""Store faults on the real thing: the database locked by another process, the data dir
read-only at start, the database file deleted while ariabot runs.

What ariabot does (chosen behaviour, checked here):

* Locked by another process for less than the 5 s ``busy_timeout`` (PostgreSQL: the same
  ``lock_timeout``; both engines): the add waits and succeeds once the lock is released;
  nothing else notices.
* Locked for longer: the add fails with a :class:`StoreError` (a ``ManagerError``: clear words
  for the user, no traceback, no row), the manager keeps running, and the same add succeeds
  once the lock is gone.
* Data dir read-only at start: ``ariabot run`` prints one line naming the path and exits 2.
* Database file deleted while running: SQLite keeps writing to the open (unlinked) file, so
  ariabot keeps working and never crash-loops; what was stored is gone at the next start
  (which creates an empty database and leaves aria2's session alone: adding a torrent again
  takes over aria2's copy of it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from manager import ManagerError, TorrentState
from manager.errors import StoreError
from supervisor.config import Settings
from supervisor.states import ProcessState, StateChange
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.integration.test_manager import aria2_entries
from tests.runner import AriabotRun, until

pytestmark = pytest.mark.slow

_LOCKER = """
import os, sys
url = os.environ["LOCK_DATABASE_URL"]  # never in the process list: it may hold a password
if url.startswith("sqlite"):
    import sqlite3
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None,
                                 timeout=0)
    connection.execute("BEGIN EXCLUSIVE")
else:
    import psycopg
    connection = psycopg.connect(url)
    connection.execute("LOCK TABLE downloads, activity, mirrors, notices IN EXCLUSIVE MODE")
print("locked", flush=True)
sys.stdin.readline()
connection.commit() if hasattr(connection, "pgconn") else connection.execute("COMMIT")
connection.close()
"""


def magnet(n: int) -> str:
    return f"magnet:?xt=urn:btih:{n:040x}&dn=store-fault-{n}"


@contextlib.contextmanager
def locked(database: Path | str) -> Iterator[Callable[[], None]]:
    """Another process holds the write lock of ``database`` (a SQLite file, or the store's
    URL: SQLite's ``BEGIN EXCLUSIVE``, PostgreSQL's ``LOCK TABLE … IN EXCLUSIVE MODE``)
    until the callable is called (or the block ends)."""
    url = f"sqlite:///{database}" if isinstance(database, Path) else database
    with subprocess.Popen([sys.executable, "-c", _LOCKER], env={
            **os.environ, "LOCK_DATABASE_URL": url},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"

        def release() -> None:
            if holder.poll() is None:
                holder.stdin.write("\n")  # type: ignore[union-attr]
                holder.stdin.flush()  # type: ignore[union-attr]
                assert holder.wait(10) == 0

        try:
            yield release
        finally:
            release()


@pytest.mark.usefixtures("database_url")
async def test_add_waits_for_a_short_lock_and_succeeds(engine: Engine) -> None:
    with locked(engine.store.url) as release:
        add = asyncio.create_task(engine.manager.add(magnet(1), chat_id=1, user_id=1))
        await asyncio.sleep(3)  # the fault itself: the other process holds the lock for 3 s
        assert not add.done(), "the add did not wait for the lock"
        release()
        result = await asyncio.wait_for(add, 10)
    assert result.torrent.id and not result.existing
    assert [r.id for r in await engine.store.downloads.list()] == [result.torrent.id]


@pytest.mark.usefixtures("database_url")
async def test_add_fails_clearly_under_a_long_lock_then_works(engine: Engine) -> None:
    with locked(engine.store.url) as release:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ManagerError) as refused:
            await asyncio.wait_for(engine.manager.add(magnet(2), chat_id=1, user_id=1), 30)
        waited = asyncio.get_running_loop().time() - started
        release()
    assert isinstance(refused.value, StoreError), repr(refused.value)
    assert "database" in str(refused.value) and "Traceback" not in str(refused.value)
    assert waited >= 4.5, f"gave up after {waited:.1f}s, before the 5 s lock wait"
    assert await engine.store.downloads.list() == []  # no half-stored row
    result = await engine.manager.add(magnet(2), chat_id=1, user_id=1)  # the retry works
    assert [r.id for r in await engine.store.downloads.list()] == [result.torrent.id]
    await engine.manager.poll_once()  # and the manager's own loop still runs
    print(f"\nFIGURES long lock: add refused after {waited:.1f}s with {refused.value}")


def _count_polls(engine: Engine) -> list[int]:
    """A counter (``[n]``) of the progress polls aria2 answers from now on: each is the one
    multicall that lists everything (tellActive first)."""
    count = [0]
    real = engine.rpc.multicall

    async def counting(calls):
        answer = await real(calls)
        if calls and calls[0][0] == "aria2.tellActive":
            count[0] += 1
        return answer

    engine.rpc.multicall = counting
    return count


async def test_database_deleted_while_running(
    engine_settings: Callable[..., Settings],
) -> None:
    settings = engine_settings()
    engine = await start_engine(settings)
    try:
        first = await engine.manager.add(magnet(3), chat_id=1, user_id=1)
        pid, session = engine.aria2.pid, engine.aria2.session_id
        probes = engine.aria2.probes
        changes: list[StateChange] = []
        engine.aria2.subscribe(changes.append)  # a respawn would pass through STARTING
        database = engine.layout.database
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink()  # noqa: ASYNC240 - instant, local

        # The open connection keeps the unlinked file: adds, changes, lists and polls go on.
        second = await engine.manager.add(magnet(4), chat_id=1, user_id=1)
        assert not second.existing and second.torrent.id != first.torrent.id
        paused = await engine.manager.pause(second.torrent.id, 1, 1)
        assert paused.state is TorrentState.PAUSED
        stored = {t.id: t.state for t in await engine.manager.list(1)}
        assert stored == {first.torrent.id: TorrentState.METADATA,
                          second.torrent.id: TorrentState.PAUSED}
        polls = _count_polls(engine)
        await until(lambda: polls[0] >= 2, 15, "two progress polls")
        # ... and nothing crash-loops: the same aria2c, still probed healthy.
        await until(lambda: engine.aria2.probes >= probes + 2, 15, "two health probes")
        assert (engine.aria2.pid, engine.aria2.session_id) == (pid, session)
        assert engine.aria2.state is ProcessState.RUNNING and changes == []
    finally:
        await stop_engine(engine)
    # The next start creates a fresh, empty database: the rows are gone; no crash.
    engine = await start_engine(settings)
    try:
        assert database.exists()
        assert await engine.manager.list(1) == []
        # aria2's session was left alone: both magnets are still in aria2c.
        for number in (3, 4):
            assert await aria2_entries(engine, f"{number:040x}"), number
        # Adding one again is a new download that takes over aria2's copy (no duplicate).
        again = await engine.manager.add(magnet(3), chat_id=1, user_id=1)
        assert not again.existing and again.torrent.state is TorrentState.METADATA
        # aria2 refuses the second copy of the torrent when it starts it, a moment later
        # under load; the manager then drops that copy and adopts the first. Until both
        # are done, the row may still name the copy that went.
        deadline = time.monotonic() + 30
        while True:
            await engine.manager.reconcile()
            await engine.manager.poll_once()
            entries = await aria2_entries(engine, f"{3:040x}")
            record = await engine.store.downloads.get(again.torrent.id)
            assert record is not None
            if [entry["gid"] for entry in entries] == [record.gid]:
                break
            assert time.monotonic() < deadline, (entries, record.gid)
            await asyncio.sleep(0.2)  # a poll's period: aria2 tells nothing of a refusal
        assert (await engine.manager.get(again.torrent.id)).state is TorrentState.METADATA
    finally:
        await stop_engine(engine)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory nobody can write to: a read-only tmpfs as root, mode 0500 else."""
    target = tmp_path / "data"
    target.mkdir()
    if os.geteuid() == 0:
        if shutil.which("mount") is None:
            pytest.skip("root without mount(8): cannot make a read-only directory for root")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(target)],
                       check=True)
        try:
            yield target
        finally:
            subprocess.run(["umount", "-l", str(target)], check=False)
    else:
        target.chmod(0o500)
        try:
            yield target
        finally:
            target.chmod(0o700)


def test_read_only_data_dir_is_one_line_and_exit_2(read_only_dir: Path) -> None:
    run = AriabotRun(read_only_dir).start()
    try:
        code = run.wait_exit(30)
    finally:
        run.stop()
    lines = [line for line in run.output.splitlines() if line.strip()]
    assert code == 2, run.output
    assert len(lines) == 1, run.output
    assert lines[0].startswith("ariabot: ") and str(read_only_dir) in lines[0], lines
    assert "Traceback" not in run.output
    print(f"\nFIGURES read-only data dir: exit {code}: {lines[0]}")
