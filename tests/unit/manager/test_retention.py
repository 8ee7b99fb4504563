"""Retention: purging finished downloads, and lists that stay indexed at 10,000 rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import torf

from manager import ManagerConfig, TorrentManager
from manager.store import Store
from manager.store.migrations import SCHEMA_VERSION
from tests.unit.manager.test_store import schema_version

FINAL = ["complete", "error", "cancelled"]


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def add(store: Store, state: str, *, age_days: float = 0, chat: int = 1,
              name: str = "n", directory: str = "/d", info_hash: str | None = None,
              source_kind: str = "magnet", source: bytes = b"magnet:?xt=...",
              total_bytes: int = 0) -> int:
    count = len(await store.downloads.list())
    record = await store.downloads.create(
        info_hash=info_hash or f"{count:040x}", chat_id=chat,
        user_id=7, name=name, source_kind=source_kind, source=source,
        directory=directory, state=state, total_bytes=total_bytes)
    if age_days:
        changed = now() - timedelta(days=age_days)
        table = store.database.tables.download
        await store.database.run(lambda: table.update(updated_at=changed)
                                 .where(table.id == record.id).execute())
    return record.id


async def test_purge_takes_only_finished_rows_older_than_the_cutoff(store: Store) -> None:
    old = {state: await add(store, state, age_days=10)
           for state in ["complete", "error", "cancelled", "downloading", "seeding", "paused",
                         "queued", "metadata"]}
    recent = await add(store, "complete", age_days=1)
    purged = await store.downloads.purge_finished(states=FINAL, before=now() - timedelta(days=7))
    assert sorted(p.record.id for p in purged) == sorted(old[s] for s in FINAL)
    assert all(p.source is None for p in purged)
    left = {r.id for r in await store.downloads.list()}
    assert recent in left and not left & {old[s] for s in FINAL}
    assert len(left) == 6


async def test_purge_works_in_batches_oldest_first(store: Store) -> None:
    ids = [await add(store, "complete", age_days=30) for _ in range(5)]
    first = await store.downloads.purge_finished(states=FINAL, before=now(), limit=2,
                                                 with_sources=True)
    assert [p.record.id for p in first] == ids[:2]
    assert first[0].source == b"magnet:?xt=..."
    rest = await store.downloads.purge_finished(states=FINAL, before=now(), limit=10)
    assert [p.record.id for p in rest] == ids[2:]
    assert await store.downloads.list() == []


async def _plan(store: Store, call: object) -> list[str]:
    """EXPLAIN QUERY PLAN of the SELECTs the store runs for ``call``."""
    statements: list[str] = []
    connection = store.database.db.connection
    await store.database.run(lambda: connection().set_trace_callback(statements.append))
    try:
        await call  # type: ignore[misc]
    finally:
        await store.database.run(lambda: store.database.db.connection().set_trace_callback(None))
    [select] = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    rows = await store.database.run(
        lambda: store.database.db.execute_sql(f"EXPLAIN QUERY PLAN {select}")
        .fetchall())
    return [row[-1] for row in rows]


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    """A SQLite store: the plans below are SQLite's (EXPLAIN QUERY PLAN)."""
    opened = Store(f"sqlite:///{tmp_path / 'ariabot.db'}")
    await opened.open()
    yield opened
    await opened.close()


async def test_lists_use_indexes_with_10000_rows(sqlite_store: Store) -> None:
    store = sqlite_store
    stamp = now()
    states = ["complete", "downloading", "queued", "cancelled", "error", "seeding", "paused"]

    def fill() -> None:
        rows = [{"info_hash": f"{i:040x}", "chat_id": i % 20, "user_id": 1, "name": f"t{i}",
                 "source_kind": "magnet", "source": b"m", "directory": "/d",
                 "state": states[i % len(states)], "created_at": stamp, "updated_at": stamp}
                for i in range(10_000)]
        with store.database.db.atomic():
            for start in range(0, len(rows), 500):
                store.database.tables.download.insert_many(rows[start:start + 500]).execute()

    await store.database.run(fill)
    chat = await _plan(store, store.downloads.list(chat_id=7, limit=20))
    assert any("USING INDEX downloads_chat_id_id" in step or "USING COVERING INDEX" in step
               for step in chat), chat
    assert not any("TEMP B-TREE" in step or step.startswith("SCAN") for step in chat), chat
    for call in (store.downloads.list(chat_id=7, states=["downloading", "queued"], limit=20),
                 store.downloads.list(states=["downloading", "queued", "paused"]),
                 store.downloads.purge_finished(states=FINAL, before=stamp - timedelta(days=1))):
        plan = await _plan(store, call)
        assert any("INDEX" in step for step in plan), plan
        assert not any(step.startswith("SCAN") for step in plan), plan
    newest = await store.downloads.list(chat_id=7, limit=3)
    assert [r.id for r in newest] == [9988, 9968, 9948]


async def test_an_older_database_gets_the_chat_list_index(database_url: str) -> None:
    url = database_url
    first = Store(url)
    await first.open()
    await add(first, "complete")
    await first.database.run(first.database.db.execute_sql, "DROP INDEX downloads_chat_id_id")
    await first.database.run(first.database.db.execute_sql, "UPDATE schema_version SET version = 1")
    await first.close()
    again = Store(url)
    await again.open()
    try:
        assert await schema_version(again) == SCHEMA_VERSION
        indexes = [i.name for i in await again.database.run(again.database.db.get_indexes,
                                                             "downloads")]
        assert "downloads_chat_id_id" in indexes
        assert len(await again.downloads.list()) == 1
    finally:
        await again.close()


# --- the manager: purge_finished, files kept unless asked ------------------------------------


def make_torrent(folder: Path, name: str, files: dict[str, bytes]) -> bytes:
    content = folder / name
    for relative, data in files.items():
        (content / relative).parent.mkdir(parents=True, exist_ok=True)
        (content / relative).write_bytes(data)
    torrent = torf.Torrent(path=content, trackers=["http://127.0.0.1:1/announce"])
    torrent.generate()
    return torrent.dump()


@pytest.fixture
def manager(store: Store, tmp_path: Path) -> TorrentManager:
    # purge_finished never talks to aria2: no RPC needed.
    return TorrentManager(None, store, ManagerConfig(download_dir=tmp_path / "dl"))  # type: ignore[arg-type]


def chat_folder(tmp_path: Path, chat: int = 5) -> Path:
    folder = tmp_path / "dl" / "torrents" / str(chat)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_purge_keeps_files_unless_asked(manager: TorrentManager, store: Store,
                                              tmp_path: Path) -> None:
    folder = chat_folder(tmp_path)
    data = make_torrent(folder, "album", {"a.bin": b"a" * 100, "sub/b.bin": b"b" * 50})
    await add(store, "complete", age_days=40, chat=5, name="album", directory=str(folder),
              source_kind="torrent", source=data)
    live = await add(store, "downloading", age_days=40, chat=5, name="other",
                     directory=str(folder))
    assert await manager.purge_finished(timedelta(days=30)) == 1
    assert [t.id for t in await manager.list(5)] == [live]
    assert (folder / "album" / "a.bin").exists() and (folder / "album" / "sub" / "b.bin").exists()
    [entry] = await store.activity.latest()
    assert entry.action == "purge" and entry.detail.startswith("1 finished download(s) older")


async def test_purge_with_delete_files_removes_only_the_torrents_files(
    manager: TorrentManager, store: Store, tmp_path: Path
) -> None:
    folder = chat_folder(tmp_path)
    data = make_torrent(folder, "album", {"a.bin": b"a" * 100, "sub/b.bin": b"b" * 50})
    (folder / "album.aria2").write_bytes(b"control")
    (folder / "album" / "mine.txt").write_text("a file the user put there")
    await add(store, "error", age_days=3, chat=5, name="album", directory=str(folder),
              source_kind="torrent", source=data)
    assert await manager.purge_finished(timedelta(days=1), delete_files=True) == 1
    assert not (folder / "album" / "a.bin").exists()
    assert not (folder / "album" / "sub").exists() and not (folder / "album.aria2").exists()
    assert (folder / "album" / "mine.txt").exists()
    [entry] = await store.activity.latest()
    assert entry.detail.endswith("3 file(s) deleted")


async def test_purge_with_delete_files_finds_a_magnets_files_in_its_saved_metadata(
    manager: TorrentManager, store: Store, tmp_path: Path
) -> None:
    folder = chat_folder(tmp_path)
    content = folder / "clip.bin"
    content.write_bytes(b"c" * 10)
    torrent = torf.Torrent(path=content, trackers=["http://127.0.0.1:1/announce"])
    torrent.generate()
    data = torrent.dump()
    info_hash = torrent.infohash
    (folder / f"{info_hash}.torrent").write_bytes(data)  # what bt-save-metadata writes
    # Its metadata passed the checks (it has a size) and it downloaded: the files are its.
    await add(store, "cancelled", age_days=2, chat=5, name="clip.bin", directory=str(folder),
              info_hash=info_hash, total_bytes=10)
    assert await manager.purge_finished(timedelta(days=1), delete_files=True) == 1
    assert not content.exists() and not (folder / f"{info_hash}.torrent").exists()


async def test_purge_keeps_files_a_listed_download_shares_by_name(
    manager: TorrentManager, store: Store, tmp_path: Path
) -> None:
    folder = chat_folder(tmp_path)
    data = make_torrent(folder, "album", {"a.bin": b"a" * 100})
    await add(store, "complete", age_days=9, chat=5, name="album", directory=str(folder),
              source_kind="torrent", source=data)
    await add(store, "seeding", age_days=9, chat=5, name="album", directory=str(folder))
    assert await manager.purge_finished(timedelta(days=1), delete_files=True) == 1
    assert (folder / "album" / "a.bin").exists()


async def test_purge_refuses_a_negative_age(manager: TorrentManager) -> None:
    with pytest.raises(ValueError, match="negative"):
        await manager.purge_finished(timedelta(days=-1))
