"""``ariabot db copy``: the real command on real databases (SQLite files and the throwaway
PostgreSQL server of tests/pgserver.py), every table filled through the real store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import peewee
import pytest
from playhouse.migrate import SchemaMigrator

from manager.models import FilePlan, MirrorState, TorrentState
from manager.notices import NoticeKind
from manager.store import Store, entry_key
from manager.store.dbcopy import BATCH_ROWS
from manager.store.engine import engine_for
from manager.store.migrations import MIGRATIONS, SCHEMA_VERSION
from manager.store.tables import Tables, bind_tables
from tests.pgserver import PostgresServer
from tests.runner import ariabot_run

TABLES = ("downloads", "activity", "mirrors", "notices", "chat_views", "sent_parts",
          "chat_moves", "download_moves", "feeds", "feed_entries")


def ariabot(data_dir: Path, *args: str, database_url: str = "", stdin: str = "",
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``ariabot`` command on ``data_dir``'s store (or ``database_url``)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ARIABOT_")},
           "ARIABOT_DATA_DIR": str(data_dir), **(extra_env or {})}
    if database_url:
        env["ARIABOT_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "supervisor", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


async def fill(url: str) -> int:
    """Every table filled through the store, as ariabot writes them: downloads in every
    state, the activity log, mirrors, notices (sent, dropped, pending, alerts), a chat's
    overview, sent parts, a chat move and downloads moved from a dead node. The newest
    download is then removed, so the highest id ever given is above every id still stored;
    returns that id."""
    store = Store(url)
    await store.open()
    try:
        ids = {}
        for number, state in enumerate(TorrentState, 1):
            record = await store.downloads.create(
                info_hash=f"{number:040x}", chat_id=-100 - number % 3, user_id=7 + number,
                name=f"album {number} é ✓", source_kind="torrent" if number % 2 else "magnet",
                source=bytes(range(256)) * number, directory=f"/srv/t/{number}",
                state=TorrentState.QUEUED.value, total_bytes=2**40 + number, message_id=number)
            ids[state] = record.id
            await store.activity.log("add", chat_id=record.chat_id, user_id=record.user_id,
                                     download_id=record.id, detail=f"magnet #{number}")
            done = datetime(2026, 1, number, 12, 30, 15, 123456)
            await store.downloads.update(
                record.id, state=state.value, gid=f"{number:016x}",
                completed_bytes=2**39, upload_bytes=number, seeders=number,
                download_speed=5 * number, peers=2, selected_files="1,3",
                error="tracker said no" if state is TorrentState.ERROR else None,
                completed_at=done if state.is_final else None)
        complete = ids[TorrentState.COMPLETE]
        await store.mirrors.start(complete, chat_id=-101, user_id=8, remote="nas:ariabot",
                                  move=True, state=MirrorState.QUEUED.value,
                                  folder=f"-101/{complete}-00000000")
        await store.mirrors.update(complete, state=MirrorState.DONE.value, attempt=2,
                                   bytes=2**33, total_bytes=2**33, link="https://x/y",
                                   local_deleted=True)
        await store.mirrors.start(ids[TorrentState.SEEDING], chat_id=-102, user_id=9,
                                  remote="/mnt/backup", move=False,
                                  state=MirrorState.UPLOADING.value)
        await store.notices.add(NoticeKind.ARIA2_RESTARTED, "aria2c restarted")
        await store.notices.add(NoticeKind.ARIA2_DOWN, "aria2c is down")
        pending = await store.notices.pending()
        await store.notices.done(pending[0].id)
        await store.notices.done(pending[1].id, dropped="bot blocked")
        await store.notices.failed(pending[2].id)
        plan = FilePlan(complete, -101, 1, 3 * 2**30, 1_700_000_000_123_456_789, 2**31)
        for part in (1, 2):
            await store.sent_parts.record(plan, part)
        await store.chats.set_overview_message(-101, 4242)
        feed = await store.feeds.create(
            chat_id=-101, user_id=8, name="nyaa", url="https://nyaa.si/?page=rss&u=x",
            filter_json='{"include":["1080p"]}', next_poll_at=datetime(2026, 1, 2, 3, 4, 5),
            seen=[(entry_key(f"guid {n}"), f"{n:040x}", f"seen {n} é") for n in range(3)])
        await store.feeds.mark_added(feed, entry_key("guid new"), info_hash=f"{complete:040x}",
                                     title="new ✓", download_id=complete)
        await store.feeds.update(feed.id, {"etag": '"abc"', "failures": 2,
                                           "failing_since": datetime(2026, 1, 2),
                                           "last_error": "the server answered 500"})
        await store.chats.move(-102, -1002)
        await store.activity.log("purge", chat_id=0, user_id=0, detail="older than 0 days")
        # Node alpha takes the rows, dies at once (a limit of 0 s), and beta takes its
        # unfinished ones: the moves alpha cleans up when it comes back.
        await store.nodes.join("alpha", "a" * 32, "0.1.0", 0.0)
        beta = await store.nodes.join("beta", "b" * 32, "0.1.0", 0.0)
        assert await store.nodes.take_over("beta", beta, 0.0, lambda chat: f"/srv/b/{chat}")
        await store.nodes.leave("beta", beta)
        await store.nodes.leave("alpha", await store.nodes.join("alpha", "a" * 32, "0.1.0", 0))
        extra = await store.downloads.create(
            info_hash="f" * 40, chat_id=5, user_id=5, name="gone",
            source_kind="magnet", source=b"magnet:?", directory="/d",
            state=TorrentState.COMPLETE.value)
        await store.downloads.delete([extra.id])
        return extra.id
    finally:
        await store.close()


def open_tables(url: str) -> tuple[Any, Tables]:
    """``url``'s database, connected, with the store's tables bound to it."""
    database = engine_for(url).connect(url)
    return database, bind_tables(database)


def all_rows(url: str, names: tuple[str, ...] = TABLES) -> dict[str, list[tuple]]:
    """Every row of every table (of ``names``), in key order, as Python values (bytes for
    blobs)."""
    database, tables = open_tables(url)
    try:
        found = {}
        for name in names:
            model = next(getattr(tables, f) for f in tables.__dataclass_fields__
                         if getattr(tables, f)._meta.table_name == name)
            rows = model.select(*model._meta.sorted_fields).order_by(
                model._meta.primary_key).tuples()
            found[name] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                           for row in rows]
        return found
    finally:
        database.close()


async def new_download_id(url: str) -> int:
    store = Store(url)
    await store.open()
    try:
        record = await store.downloads.create(
            info_hash="e" * 40, chat_id=1, user_id=1, name="new",
            source_kind="magnet", source=b"magnet:?", directory="/d",
            state=TorrentState.QUEUED.value)
        return record.id
    finally:
        await store.close()


def schema_version(url: str) -> int:
    database, tables = open_tables(url)
    try:
        return tables.schema_version.select().first().version
    finally:
        database.close()


def assert_copied(result: subprocess.CompletedProcess[str], rows: dict[str, list[tuple]],
                  secret: str = "") -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    for name in TABLES:
        [line] = [line for line in lines if line.split()[0] == name]
        assert line.split()[1] == str(len(rows[name])), line
    assert lines[-1].startswith(f"copied {sum(map(len, rows.values()))} rows in "
                                f"{len(TABLES)} tables")
    assert f"schema version {SCHEMA_VERSION}" in lines[-1]
    if secret:
        assert secret not in result.stdout


def test_a_copy_to_sqlite_holds_every_row_and_new_ids_go_on_after_every_id_ever_given(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    purged = asyncio.run(fill(f"sqlite:///{data / 'ariabot.db'}"))
    source = all_rows(f"sqlite:///{data / 'ariabot.db'}")
    assert all(source[name] for name in TABLES), "every table must hold rows"
    target = f"sqlite:///{tmp_path / 'moved' / 'copy.db'}"
    (tmp_path / "moved").mkdir()

    result = ariabot(data, "db", "copy", "--to", target)

    assert_copied(result, source)
    [downloads] = [line for line in result.stdout.splitlines() if line.startswith("  downloads ")]
    assert downloads.split()[2] == str(purged + 1)  # the next id, shown
    assert all_rows(target) == source
    assert schema_version(target) == SCHEMA_VERSION
    assert asyncio.run(new_download_id(target)) == purged + 1


@pytest.mark.postgresql
def test_the_round_trip_through_postgresql_keeps_every_row_field_by_field_and_the_ids(
    tmp_path: Path, postgresql_server: PostgresServer, postgresql_url: str,
) -> None:
    first, back = tmp_path / "sqlite", tmp_path / "back"
    first.mkdir()
    back.mkdir()
    purged = asyncio.run(fill(f"sqlite:///{first / 'ariabot.db'}"))
    source = all_rows(f"sqlite:///{first / 'ariabot.db'}")
    secret = postgresql_server.password

    there = ariabot(first, "db", "copy", "--to-env", "TARGET",
                    extra_env={"TARGET": postgresql_url})
    assert_copied(there, source, secret)
    assert "postgresql://ariabot:********@127.0.0.1" in there.stdout
    assert all_rows(postgresql_url) == source

    # And back, from PostgreSQL as the configured store to a new SQLite file.
    copy = f"sqlite:///{back / 'copy.db'}"
    home = ariabot(tmp_path / "pg-data", "db", "copy", "--to", copy,
                   database_url=postgresql_url)
    assert_copied(home, source, secret)
    assert all_rows(copy) == source
    assert schema_version(postgresql_url) == schema_version(copy) == SCHEMA_VERSION
    assert asyncio.run(new_download_id(postgresql_url)) == purged + 1
    assert asyncio.run(new_download_id(copy)) == purged + 1


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql",
                                                           marks=pytest.mark.postgresql)])
def test_a_target_that_holds_rows_is_refused_in_one_line_and_left_as_it_was(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    asyncio.run(fill(f"sqlite:///{data / 'ariabot.db'}"))
    target = (request.getfixturevalue("postgresql_url") if engine == "postgresql"
              else f"sqlite:///{tmp_path / 'other.db'}")
    store = Store(target)

    async def one_download() -> None:
        await store.open()
        await store.downloads.create(info_hash="d" * 40, chat_id=3, user_id=3, name="mine",
                                     source_kind="magnet", source=b"magnet:?", directory="/d",
                                     state=TorrentState.COMPLETE.value)
        await store.close()

    asyncio.run(one_download())
    before = all_rows(target)

    result = ariabot(data, "db", "copy", "--to", "-", stdin=target + "\n")

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "is not empty: it has downloads (1 row); copy only into an empty database" in line
    assert all_rows(target) == before


def test_nodes_are_not_data_a_target_a_node_joined_takes_the_copy_and_keeps_its_node(
    tmp_path: Path,
) -> None:
    """ariabot started on the new database first (its node joined, nothing else): the copy
    is still made, and neither side's nodes move (each joins its database when it runs)."""
    data = tmp_path / "data"
    data.mkdir()
    source_url, target = f"sqlite:///{data / 'ariabot.db'}", f"sqlite:///{tmp_path / 'new.db'}"
    asyncio.run(fill(source_url))

    async def join(url: str, name: str) -> None:
        store = Store(url)
        await store.open()
        await store.nodes.leave(name, await store.nodes.join(name, name[0] * 32, "0.1.0", 30))
        await store.close()

    asyncio.run(join(source_url, "old-box"))
    asyncio.run(join(target, "new-box"))
    source = all_rows(source_url)

    result = ariabot(data, "db", "copy", "--to", target)

    assert_copied(result, source)
    assert all_rows(target) == source
    assert [row[0] for row in all_rows(target, ("nodes",))["nodes"]] == ["new-box"]


def test_a_running_ariabot_keeps_its_store_and_the_copy_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    target = tmp_path / "copy.db"
    with ariabot_run(data) as running:
        running.wait_ready()
        result = ariabot(data, "db", "copy", "--to", f"sqlite:///{target}")
        pid = running.process.pid
    assert result.returncode == 2
    assert result.stderr == (f"ariabot: another ariabot (pid {pid}) is already running on "
                             f"{data}: stop it first, the copy needs the store at rest\n")
    assert not target.exists()


def test_a_password_on_the_command_line_is_refused_and_the_url_read_from_stdin(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    asyncio.run(fill(f"sqlite:///{data / 'ariabot.db'}"))
    url = "postgresql://ariabot:pa55-word@127.0.0.1:9/ariabot"

    on_argv = ariabot(data, "db", "copy", "--to", url)
    assert on_argv.returncode == 2
    assert "pa55-word" not in on_argv.stderr + on_argv.stdout
    assert on_argv.stderr.startswith("ariabot: the password in --to would be visible in the "
                                     "process list: give the URL on standard input (--to -)")

    # The same URL on stdin is taken: nothing listens on port 9, which is said in one line.
    on_stdin = ariabot(data, "db", "copy", "--to", "-", stdin=url)
    assert on_stdin.returncode == 2
    [line] = on_stdin.stderr.splitlines()
    assert line.startswith(
        "ariabot: cannot open the target postgresql://ariabot:********@127.0.0.1:9/ariabot: ")
    assert "pa55-word" not in on_stdin.stderr + on_stdin.stdout


def test_a_store_that_cannot_be_reached_is_one_line_with_its_password_masked(
    tmp_path: Path,
) -> None:
    target = tmp_path / "copy.db"
    result = ariabot(tmp_path / "data", "db", "copy", "--to", f"sqlite:///{target}",
                     database_url="postgresql://ariabot:pa55-word@127.0.0.1:9/ariabot")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "ariabot: cannot open the store postgresql://ariabot:********@127.0.0.1:9/ariabot: ")
    assert "pa55-word" not in result.stderr + result.stdout
    assert not target.exists()


@pytest.mark.postgresql
def test_a_wrong_password_is_one_line_naming_the_target_with_the_password_masked(
    tmp_path: Path, postgresql_server: PostgresServer, postgresql_url: str,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    asyncio.run(fill(f"sqlite:///{data / 'ariabot.db'}"))
    name = postgresql_url.rsplit("/", 1)[1]
    wrong = postgresql_server.url(name, password="not-the-password-at-all")

    result = ariabot(data, "db", "copy", "--to-env", "TARGET", extra_env={"TARGET": wrong})

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"ariabot: cannot open the target postgresql://ariabot:********@"
                           f"127.0.0.1:{postgresql_server.port}/{name}: ")
    assert "password authentication failed" in line
    assert "not-the-password-at-all" not in result.stderr + result.stdout
    database, _tables = open_tables(postgresql_url)
    try:
        assert database.get_tables() == []
    finally:
        database.close()


def test_an_older_store_is_migrated_first_and_its_purged_ids_stay_used_on_the_copy(
    tmp_path: Path,
) -> None:
    """A version 7 store (plain rowid ids) from which #4 and #3 were purged, #4 left only in
    the activity log: the copy is at this version and gives #5 next, as the store would."""
    data = tmp_path / "data"
    data.mkdir()
    database = peewee.SqliteDatabase(data / "ariabot.db")
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
        tables.download.delete().where(tables.download.id.in_([3, 4])).execute()
    database.close()
    target = f"sqlite:///{tmp_path / 'copy.db'}"

    result = ariabot(data, "db", "copy", "--to", target)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith(
        "; the store was at schema version 7 and was migrated first")
    assert schema_version(target) == SCHEMA_VERSION
    assert [row[0] for row in all_rows(target)["downloads"]] == [1, 2]
    assert asyncio.run(new_download_id(target)) == 5


@pytest.mark.postgresql
def test_a_copy_that_breaks_off_midway_leaves_the_target_as_it_was(
    tmp_path: Path, postgresql_url: str,
) -> None:
    """SQLite keeps a NUL character in text, PostgreSQL refuses it: the notices (the fourth
    table) fail after three tables were written, and the whole copy is rolled back."""
    data = tmp_path / "data"
    data.mkdir()
    source = f"sqlite:///{data / 'ariabot.db'}"
    asyncio.run(fill(source))
    database, tables = open_tables(source)
    tables.notice.update(detail="aria2c\x00down").where(
        tables.notice.kind == NoticeKind.ARIA2_DOWN.value).execute()
    database.close()

    result = ariabot(data, "db", "copy", "--to-env", "TARGET",
                     extra_env={"TARGET": postgresql_url})

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("ariabot: the copy to postgresql://ariabot:********@127.0.0.1:")
    assert "broke off at notices and nothing of it was kept: PostgreSQL text fields cannot " \
        "contain NUL" in line, line
    assert [row.split()[0] for row in result.stdout.splitlines()[1:]] == [
        "downloads", "activity", "mirrors"]
    target, _tables = open_tables(postgresql_url)
    try:
        assert target.get_tables() == []
    finally:
        target.close()


def test_tables_larger_than_a_batch_are_copied_whole_in_key_order(
    tmp_path: Path, database_url: str, second_database_url: str,
) -> None:
    """More rows than one batch (keyset paging), on each engine to itself: the activity log
    by id, the chats' views by chat id, negative ones (groups) first."""
    asyncio.run(fill(database_url))
    database, tables = open_tables(database_url)
    at = datetime(2026, 3, 1, 8, 0, 0, 1)
    with database.atomic():
        tables.activity.insert_many(
            [{"at": at, "chat_id": n % 7, "user_id": n, "action": "pause", "download_id": n,
              "detail": f"#{n}"} for n in range(2 * BATCH_ROWS + 17)]).execute()
        tables.chat_view.insert_many(
            [{"chat_id": chat, "overview_message_id": chat * 3}
             for chat in range(-BATCH_ROWS - 5, BATCH_ROWS + 5) if chat != -101]).execute()
    database.close()
    source = all_rows(database_url)

    result = ariabot(tmp_path / "data", "db", "copy", "--to-env", "TARGET",
                     database_url=database_url, extra_env={"TARGET": second_database_url})

    assert_copied(result, source)
    assert all_rows(second_database_url) == source
