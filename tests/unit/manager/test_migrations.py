"""Migrations 1..N on both engines: from an empty database, and from every earlier version
with rows in each of its tables, up to the latest; the rows stay, ids go on."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import peewee
import pytest
from playhouse.migrate import SchemaMigrator

from manager.models import FilePlan
from manager.notices import NoticeKind
from manager.store import Store
from manager.store.engine import engine_for
from manager.store.migrations import MIGRATIONS, SCHEMA_VERSION
from manager.store.tables import bind_tables
from tests.unit.manager.test_store import add, schema_version

CREATED = datetime(2026, 1, 1, 12, 30, 15, 250000)
CHAT = -1001234567890
TORRENT = b"d4:infod4:name1:x\x00\xffee"


def _insert(database: peewee.Database, table: str, **values: Any) -> None:
    """One row, by column names as they were at that version (no model of today)."""
    columns = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join([database.param] * len(values))
    database.execute_sql(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})',
                         tuple(values.values()))


def build_version(url: str, version: int) -> None:
    """The database as an ariabot at schema ``version`` left it, a row in every table it had:
    downloads 1 to 3 (3 purged again, the newest: only the activity log still names it), their
    activity, a mirror, a pending notice, a chat's overview, a sent part, a moved chat."""
    database = engine_for(url).connect(url)
    try:
        with database.atomic():
            migrator = SchemaMigrator.from_database(database)
            for migration in MIGRATIONS[:version]:
                migration(migrator, database)
            if version == 0:
                return
            tables = bind_tables(database)
            database.create_tables([tables.schema_version])
            tables.schema_version.create(version=version)
            for number in (1, 2, 3):
                _insert(database, "downloads", info_hash=f"{number}" * 40, chat_id=CHAT,
                        user_id=7, message_id=100 + number, name=f"film {number}",
                        source_kind="torrent", source=TORRENT, directory="/d",
                        gid=f"{number:016x}", state="complete", total_bytes=2**40,
                        completed_bytes=2**40, upload_bytes=3, download_speed=0,
                        upload_speed=0, seeders=1, peers=2, created_at=CREATED,
                        updated_at=CREATED,
                        completed_at=CREATED)
                _insert(database, "activity", at=CREATED, chat_id=CHAT, user_id=7,
                        action="add", download_id=number, detail=f"film {number}")
            database.execute_sql("DELETE FROM downloads WHERE id = 3")
            if version >= 3:
                folder = {"folder": "x/1-11111111"} if version >= 6 else {}
                _insert(database, "mirrors", download_id=1, chat_id=CHAT, user_id=7,
                        state="done", remote="dav:up", move=True, attempt=2, bytes=5,
                        total_bytes=5, local_deleted=True, created_at=CREATED,
                        updated_at=CREATED, **folder)
            if version >= 4:
                _insert(database, "notices", kind="completed", download_id=2, chat_id=CHAT,
                        detail="", created_at=CREATED, tries=1)
                _insert(database, "chat_views", chat_id=CHAT, overview_message_id=555)
            if version >= 5:
                _insert(database, "sent_parts", download_id=1, chat_id=CHAT, file_index=1,
                        file_size=3000, file_mtime_ns=1_767_225_600_123_456_789,
                        part_size=1024, part=2, sent_at=CREATED)
            if version >= 7:
                _insert(database, "chat_moves", old_chat_id=-5, new_chat_id=CHAT,
                        moved_at=CREATED)
    finally:
        database.close()


def _schema(store: Store) -> dict[str, tuple[set[str], set[tuple[str, ...]]]]:
    """Per table: its columns and the column lists of its indexes, as the database has them."""
    def read() -> dict[str, tuple[set[str], set[tuple[str, ...]]]]:
        found = {}
        for model in vars(store.database.tables).values():
            table = model._meta.table_name
            columns = {column.name for column in store.database.db.get_columns(table)}
            indexes = {tuple(index.columns) for index in store.database.db.get_indexes(table)}
            found[table] = (columns, indexes)
        return found

    return store.database.run(read)


def _expected_schema(store: Store) -> dict[str, tuple[set[str], set[tuple[str, ...]]]]:
    """What today's models say each table has (the primary key's index aside)."""
    expected = {}
    for model in vars(store.database.tables).values():
        meta = model._meta
        indexes = {tuple(columns) for columns, _unique in meta.indexes}
        indexes |= {(field.column_name,) for field in meta.sorted_fields if field.unique}
        expected[meta.table_name] = ({field.column_name for field in meta.sorted_fields},
                                     indexes)
    return expected


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
async def test_every_earlier_version_migrates_to_the_latest_with_its_rows(
        database_url: str, version: int) -> None:
    build_version(database_url, version)
    store = Store(database_url)
    await store.open()
    try:
        assert await schema_version(store) == SCHEMA_VERSION
        schema, expected = await _schema(store), _expected_schema(store)
        for table, (columns, indexes) in expected.items():
            assert schema[table][0] == columns, table
            assert indexes <= schema[table][1], table
        rows = await store.downloads.list()
        if version == 0:
            assert rows == []
            assert await add(store) == 1
            return
        assert [(r.id, r.name, r.message_id, r.gid, r.total_bytes, r.created_at,
                 r.completed_at) for r in rows] == [
            (2, "film 2", 102, f"{2:016x}", 2**40, CREATED, CREATED),
            (1, "film 1", 101, f"{1:016x}", 2**40, CREATED, CREATED)]
        assert await store.downloads.source(1) == ("torrent", TORRENT)
        assert [(e.download_id, e.detail, e.at) for e in await store.activity.latest()] == [
            (3, "film 3", CREATED), (2, "film 2", CREATED), (1, "film 1", CREATED)]
        if version >= 3:
            mirror = await store.mirrors.get(1)
            assert (mirror.move, mirror.local_deleted, mirror.attempt, mirror.created_at) == (
                True, True, 2, CREATED)
            assert mirror.folder == ("x/1-11111111" if version >= 6 else None)
        if version >= 4:
            [notice] = await store.notices.pending()
            assert (notice.kind, notice.download_id, notice.tries) == (
                NoticeKind.COMPLETED, 2, 1)
            assert await store.chats.overview_message(CHAT) == 555
        if version >= 5:
            plan = FilePlan(1, CHAT, 1, 3000, 1_767_225_600_123_456_789, 1024)
            assert await store.sent_parts.confirmed(plan) == {2}
        if version >= 7:
            assert await store.chats.moves() == {-5: CHAT}
        # Ids go on above every one used, the purged #3 included, and are never given again.
        assert await add(store, "a" * 40) == 4
        await store.downloads.delete([4])
        assert await add(store, "b" * 40) == 5
    finally:
        await store.close()
    reopened = Store(database_url)
    await reopened.open()
    try:
        assert await add(reopened, "c" * 40) == (2 if version == 0 else 6)  # across restarts
    finally:
        await reopened.close()


async def test_stores_opening_a_new_database_at_once_all_get_the_schema(
        database_url: str) -> None:
    """Nodes started together on an empty database (several machines, one PostgreSQL): each
    creates or finds the schema; none fails on another's half-made tables."""
    stores = [Store(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        for store in stores:
            assert await store.downloads.list() == []
            assert await schema_version(store) == SCHEMA_VERSION
    finally:
        for store in stores:
            await store.close()
