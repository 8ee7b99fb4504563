"""The store: ids, uniqueness per chat, one-transaction updates, schema version."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import peewee
import psycopg
import pytest
from playhouse.migrate import SchemaMigrator

import manager.store.engine
from manager.errors import StoreError
from manager.models import FilePlan
from manager.store import Store
from manager.store.migrations import MIGRATIONS, SCHEMA_VERSION
from manager.store.tables import bind_tables
from tests.dbfaults import LOCKED, hold_writes
from tests.pgserver import PostgresServer


async def add(store: Store, info_hash: str = "a" * 40, chat: int = 1) -> int:
    record = await store.downloads.create(info_hash=info_hash, chat_id=chat, user_id=7, name="n",
                                          source_kind="magnet", source=b"magnet:?xt=...",
                                          directory="/d", state="queued")
    return record.id


async def schema_version(store: Store) -> int:
    """The version recorded in the open database's schema_version table."""
    return await store.database.run(lambda: store.database.db.execute_sql(
        "SELECT version FROM schema_version").fetchone()[0])


async def test_ids_are_small_increasing_integers(store: Store) -> None:
    assert [await add(store, c * 40) for c in "abc"] == [1, 2, 3]


async def test_same_torrent_twice_in_one_chat_is_refused(store: Store) -> None:
    await add(store)
    with pytest.raises(peewee.IntegrityError):
        await add(store)
    await add(store, chat=2)  # another chat may hold the same torrent
    assert len(await store.downloads.list()) == 2


async def test_update_many_is_one_transaction_touching_only_given_rows(store: Store) -> None:
    ids = [await add(store, c * 40) for c in "abcd"]
    before = store.statements
    await store.downloads.update_many({ids[0]: {"completed_bytes": 5}, ids[2]: {"state": "paused"}})
    # BEGIN, two UPDATEs, COMMIT: nothing for the untouched rows.
    assert store.statements - before == 4
    rows = {r.id: r for r in await store.downloads.list()}
    assert rows[ids[0]].completed_bytes == 5 and rows[ids[2]].state == "paused"
    assert rows[ids[1]].completed_bytes == 0


async def test_update_refuses_unknown_or_identity_columns(store: Store) -> None:
    download_id = await add(store)
    with pytest.raises(ValueError, match="not writable"):
        await store.downloads.update_many({download_id: {"id": 9}})


async def test_source_round_trips_bytes(store: Store) -> None:
    record = await store.downloads.create(info_hash="b" * 40, chat_id=1, user_id=1, name="t",
                                          source_kind="torrent", source=b"d4:infod...\x00\xff",
                                          directory="/d", state="queued")
    assert await store.downloads.source(record.id) == ("torrent", b"d4:infod...\x00\xff")


async def test_activity_detail_is_truncated(store: Store) -> None:
    await store.activity.log("add", chat_id=1, user_id=2, detail="m" * 1000)
    [entry] = await store.activity.latest()
    assert len(entry.detail) == 200 and entry.action == "add"


async def test_schema_version_is_recorded_and_reopen_keeps_rows(database_url: str) -> None:
    first = Store(database_url)
    await first.open()
    await add(first)
    await first.close()
    again = Store(database_url)
    await again.open()
    try:
        assert await schema_version(again) == SCHEMA_VERSION
        assert len(await again.downloads.list()) == 1
    finally:
        await again.close()


async def test_newer_schema_is_refused(database_url: str) -> None:
    first = Store(database_url)
    await first.open()
    await first.database.run(first.database.db.execute_sql,
                             "UPDATE schema_version SET version = 99")
    await first.close()
    again = Store(database_url)
    with pytest.raises(StoreError, match="newer than this ariabot"):
        await again.open()
    await again.close()


async def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    with pytest.raises(StoreError, match="cannot open the database"):
        await store.open()
    await store.close()


@pytest.mark.postgresql
async def test_a_missing_postgresql_database_is_a_clear_error_without_the_password(
        postgresql_server: PostgresServer) -> None:
    url = postgresql_server.url("no_such_database")
    store = Store(url)
    with pytest.raises(StoreError, match="cannot open the database") as refused:
        await store.open()
    await store.close()
    assert "no_such_database" in str(refused.value)
    assert postgresql_server.password not in str(refused.value)


async def test_another_engine_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"mysql:// is not supported"):
        Store("mysql://u:p@127.0.0.1/ariabot")


async def test_two_stores_in_one_process_keep_their_rows_apart(
        database_url: str, second_database_url: str) -> None:
    first = Store(database_url)
    second = Store(second_database_url)
    await first.open()
    await second.open()  # opened last: a module-wide binding would send both stores here
    try:
        one = await add(first, "a" * 40)
        await add(second, "b" * 40)
        await add(second, "c" * 40)
        assert [r.info_hash for r in await first.downloads.list()] == ["a" * 40]
        assert [r.info_hash for r in await second.downloads.list()] == ["c" * 40, "b" * 40]
        await first.downloads.update(one, state="paused")
        await first.activity.log("add", chat_id=1, user_id=7)
        assert (await first.downloads.get(one)).state == "paused"
        assert [r.state for r in await second.downloads.list()] == ["queued", "queued"]
        assert len(await first.activity.latest()) == 1 and await second.activity.latest() == []
    finally:
        await first.close()
        await second.close()
    again = Store(database_url)
    await again.open()
    try:
        assert [r.info_hash for r in await again.downloads.list()] == ["a" * 40]
    finally:
        await again.close()


async def test_a_version_2_database_gets_the_mirrors_table(database_url: str) -> None:
    first = Store(database_url)
    await first.open()
    download = await add(first)
    await first.database.run(first.database.db.execute_sql, "DROP TABLE mirrors")
    await first.database.run(first.database.db.execute_sql, "UPDATE schema_version SET version = 2")
    await first.close()
    again = Store(database_url)
    await again.open()
    try:
        assert await schema_version(again) == SCHEMA_VERSION
        mirror = await again.mirrors.start(download, chat_id=1, user_id=7, remote="dav:up",
                                           move=True, state="queued")
        assert (mirror.download_id, mirror.move, mirror.attempt) == (download, True, 0)
        await again.mirrors.update(download, state="uploading", attempt=1, pid=4242)
        assert [m.state for m in await again.mirrors.list(states=["uploading"])] == ["uploading"]
        replaced = await again.mirrors.start(download, chat_id=1, user_id=7, remote="dav:up",
                                             move=False, state="queued")
        assert replaced.pid is None and [m.id for m in await again.mirrors.list()] == [replaced.id]
        with pytest.raises(ValueError, match="not writable"):
            await again.mirrors.update(download, download_id=9)
        await again.downloads.delete([download])
        assert await again.mirrors.get(download) is None  # leaves with its download
    finally:
        await again.close()


async def test_migration_6_gives_mirrors_their_own_place_and_keeps_older_ones_at_the_root(
    database_url: str,
) -> None:
    first = Store(database_url)
    await first.open()
    download = await add(first)
    await first.mirrors.start(download, chat_id=1, user_id=7, remote="dav:up", move=False,
                              state="done")
    older = 5  # the version before migration 6
    await first.database.run(first.database.db.execute_sql,
                             "ALTER TABLE mirrors DROP COLUMN folder")
    await first.database.run(lambda: first.database.db.execute_sql(
        f"UPDATE schema_version SET version = {older}"))
    await first.close()
    again = Store(database_url)
    await again.open()
    try:
        assert await schema_version(again) == SCHEMA_VERSION
        assert (await again.mirrors.get(download)).folder is None  # uploaded to the root
        placed = await again.mirrors.start(download, chat_id=1, user_id=7, remote="dav:up",
                                           move=False, state="queued", folder="1/1-aaaaaaaa")
        assert placed.folder == "1/1-aaaaaaaa"
        await again.mirrors.forget(download)
        assert await again.mirrors.get(download) is None
    finally:
        await again.close()


async def test_migration_7_keeps_the_chats_telegram_moved(database_url: str) -> None:
    first = Store(database_url)
    await first.open()
    await first.database.run(first.database.db.execute_sql, "DROP TABLE chat_moves")
    await first.database.run(first.database.db.execute_sql, "UPDATE schema_version SET version = 6")
    await first.close()
    again = Store(database_url)
    await again.open()
    try:
        assert await schema_version(again) == SCHEMA_VERSION
        assert await again.chats.moves() == {}
        await again.chats.move(-5, -1005)
        assert await again.chats.moves() == {-5: -1005}
    finally:
        await again.close()
    reopened = Store(database_url)
    await reopened.open()
    try:
        assert await reopened.chats.moves() == {-5: -1005}  # across restarts
    finally:
        await reopened.close()


async def test_a_version_4_database_keeps_sent_parts_per_plan_until_the_row_goes(
        database_url: str) -> None:
    """Migration 5: the parts Telegram confirmed, keyed by download, chat, file, the file's
    size and time and the part size; removing the download removes them."""
    first = Store(database_url)
    await first.open()
    download = await add(first)
    await first.database.run(first.database.db.execute_sql, "DROP TABLE sent_parts")
    await first.database.run(first.database.db.execute_sql, "UPDATE schema_version SET version = 4")
    await first.close()
    again = Store(database_url)
    await again.open()
    try:
        assert await schema_version(again) == SCHEMA_VERSION
        plan = FilePlan(download, chat_id=5, file_index=2, file_size=3000, file_mtime_ns=9,
                        part_size=1024)
        await again.sent_parts.record(plan, 1)
        await again.sent_parts.record(plan, 3)
        await again.sent_parts.record(plan, 3)  # confirmed twice: stored once
        assert await again.sent_parts.confirmed(plan) == {1, 3}
        for other in (FilePlan(download, 5, 2, 3000, 9, 2048),  # another upload limit
                      FilePlan(download, 5, 2, 3000, 10, 1024),  # the file changed
                      FilePlan(download, 6, 2, 3000, 9, 1024),  # another chat
                      FilePlan(download, 5, 1, 3000, 9, 1024)):  # another file
            assert await again.sent_parts.confirmed(other) == frozenset()
        assert await again.downloads.delete([download]) == 1
        assert await again.sent_parts.confirmed(plan) == frozenset()
    finally:
        await again.close()


async def test_an_id_is_never_given_again_after_its_row_is_deleted(store: Store) -> None:
    """Users act on downloads by id from old messages: a purged id must not come back, whether
    its row was the newest or the only one."""
    first, newest = await add(store, "a" * 40), await add(store, "b" * 40)
    await store.downloads.delete([newest])  # the newest row
    assert await add(store, "c" * 40) == newest + 1
    await store.downloads.delete([first, newest + 1])  # every row: the table is empty
    assert await store.downloads.list() == []
    assert await add(store, "d" * 40) == newest + 2


async def test_migration_8_keeps_rows_and_indexes_and_starts_ids_above_every_recorded_one(
    tmp_path: Path,
) -> None:
    """A version 7 file (plain rowid ids) from which #4 and then #3, each the newest then, were
    purged: #4 is left only in the activity log. No id of theirs is given again."""
    path = tmp_path / "v7.db"
    database = peewee.SqliteDatabase(path)
    with database.atomic():
        migrator = SchemaMigrator.from_database(database)
        for migration in MIGRATIONS[:7]:
            migration(migrator, database)
        tables = bind_tables(database)
        database.create_tables([tables.schema_version])
        tables.schema_version.create(version=7)
        for download_id in (1, 2, 3, 4):
            tables.download.create(
                info_hash=f"{download_id}" * 40, chat_id=1, user_id=7, name=f"n{download_id}",
                source_kind="magnet", source=b"magnet:?", directory="/d", state="complete",
                created_at=datetime(2026, 1, 1), updated_at=datetime(2026, 1, 2))
            tables.activity.create(at=datetime(2026, 1, 1), chat_id=1, user_id=7,
                                   action="add", download_id=download_id)
        tables.download.delete().where(tables.download.id == 4).execute()
        tables.download.delete().where(tables.download.id == 3).execute()
    indexes = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'downloads' AND type = 'index'"
    before = sorted(database.execute_sql(indexes).fetchall())
    database.close()

    migrated = Store(f"sqlite:///{path}")
    await migrated.open()
    try:
        assert await schema_version(migrated) == SCHEMA_VERSION
        rows = await migrated.downloads.list()
        assert [(r.id, r.name, r.state, r.updated_at) for r in rows] == [
            (2, "n2", "complete", datetime(2026, 1, 2)),
            (1, "n1", "complete", datetime(2026, 1, 2))]
        after = sorted(await migrated.database.run(
            lambda: migrated.database.db.execute_sql(indexes).fetchall()))
        assert [index for index in after if index not in before] == [(  # migration 11's
            "downloads_node_state",
            'CREATE INDEX "downloads_node_state" ON "downloads" ("node", "state")')]
        assert [index for index in before if index not in after] == []
        assert await add(migrated, "e" * 40) == 5
        await migrated.downloads.delete([5])
    finally:
        await migrated.close()
    reopened = Store(f"sqlite:///{path}")
    await reopened.open()
    try:
        assert await add(reopened, "f" * 40) == 6  # across restarts too
    finally:
        await reopened.close()


async def test_migration_8_run_again_keeps_the_ids_already_used(database_url: str) -> None:
    """Migrations run again from an older recorded version (as the tests above do) rebuild
    the table once more: the sequence, not only the rows left, says where ids go on."""
    first = Store(database_url)
    await first.open()
    newest = await add(first, "b" * 40)
    await first.downloads.delete([newest])
    await first.database.run(first.database.db.execute_sql, "UPDATE schema_version SET version = 7")
    await first.close()
    again = Store(database_url)
    await again.open()
    try:
        assert await schema_version(again) == SCHEMA_VERSION
        assert await add(again, "c" * 40) == newest + 1
    finally:
        await again.close()


@pytest.mark.postgresql
async def test_a_write_waiting_for_another_connections_lock_gives_up_as_sqlite_does(
        postgresql_url: str) -> None:
    """SQLite's busy_timeout: 5 s, then a StoreError. PostgreSQL would wait for ever, holding
    the store's one thread (every later call queued behind it)."""
    store = Store(postgresql_url)
    await store.open()
    try:
        with hold_writes(postgresql_url), pytest.raises(StoreError, match=LOCKED):
            await asyncio.wait_for(add(store), timeout=15)
        await add(store)  # the store serves again
        assert len(await store.downloads.list()) == 1
    finally:
        await store.close()


@pytest.mark.postgresql
async def test_a_percent_encoded_password_reaches_postgresql_decoded(
        postgresql_server: PostgresServer, postgresql_url: str) -> None:
    """A password holding @, : or / must be percent-encoded in the URL (peewee's db_url keeps
    it encoded unless asked)."""
    database = postgresql_url.rsplit("/", 1)[1]
    with psycopg.connect(postgresql_url, autocommit=True) as admin:
        admin.execute("CREATE ROLE odd LOGIN PASSWORD 'p@ss:w/rd%'")
        admin.execute("GRANT ALL ON SCHEMA public TO odd")
    url = (f"postgresql://odd:{quote('p@ss:w/rd%', safe='')}@127.0.0.1:"
           f"{postgresql_server.port}/{database}")
    store = Store(url)
    try:
        await store.open()
        assert await add(store) == 1
    finally:
        await store.close()
        with psycopg.connect(postgresql_url, autocommit=True) as admin:
            admin.execute("DROP OWNED BY odd")
            admin.execute("DROP ROLE odd")


async def test_find_in_states_looks_in_every_chat(store: Store) -> None:
    mine, other = await add(store, chat=1), await add(store, chat=2)
    await add(store, "b" * 40, chat=1)
    await store.downloads.update(other, state="seeding")
    found = await store.downloads.find_in_states("a" * 40, ["queued", "seeding"])
    assert sorted(r.id for r in found) == [mine, other]
    assert [r.id for r in await store.downloads.find_in_states("a" * 40, ["seeding"])] == [other]
    assert await store.downloads.find_in_states("c" * 40, ["queued"]) == []


async def test_postgresql_without_its_driver_says_which_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ariabot installed without the `postgresql` extra (no psycopg): one clear line."""
    monkeypatch.setattr(manager.store.engine, "psycopg", None)
    store = Store("postgresql://ariabot:secret@127.0.0.1:1/ariabot")
    with pytest.raises(StoreError, match=r"psycopg 3: pip install 'ariabot\[postgresql\]'"):
        await store.open()
    await store.close()
