"""The store's migrations: the schema carries a version, and :data:`MIGRATIONS` brings an
older database up to date inside one transaction (:func:`upgrade`).

Each migration builds frozen copies of the tables as they were at its version, so that a
later change of :mod:`manager.store.tables` never alters what an old migration does. What a
migration must do differently on SQLite and PostgreSQL is asked of
:mod:`manager.store.engine`.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from manager.store.engine import engine_of
from manager.store.tables import Tables

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "upgrade"]


def _version1_download_columns() -> dict[str, peewee.Field]:
    """Migration 1's columns of ``downloads`` (besides ``id``), as new fields: frozen here
    once for migration 1 and for migration 8, which rebuilds the table with them."""
    return dict(
        info_hash=peewee.CharField(max_length=40),
        chat_id=peewee.BigIntegerField(),
        user_id=peewee.BigIntegerField(),
        message_id=peewee.BigIntegerField(null=True),
        name=peewee.TextField(),
        source_kind=peewee.CharField(max_length=8),
        source=peewee.BlobField(),
        directory=peewee.TextField(),
        gid=peewee.CharField(max_length=16, null=True),
        state=peewee.CharField(max_length=12),
        total_bytes=peewee.BigIntegerField(default=0),
        completed_bytes=peewee.BigIntegerField(default=0),
        upload_bytes=peewee.BigIntegerField(default=0),
        download_speed=peewee.BigIntegerField(default=0),
        upload_speed=peewee.BigIntegerField(default=0),
        seeders=peewee.IntegerField(default=0),
        peers=peewee.IntegerField(default=0),
        error=peewee.TextField(null=True),
        selected_files=peewee.TextField(null=True),
        created_at=peewee.DateTimeField(),
        updated_at=peewee.DateTimeField(),
        completed_at=peewee.DateTimeField(null=True),
    )


def _migration_0001_initial(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 1: downloads, activity. Frozen copies, so later model changes don't alter it."""

    FrozenDownload = type("FrozenDownload", (peewee.Model,), {
        "id": peewee.AutoField(), **_version1_download_columns(),
        "Meta": type("Meta", (), {"table_name": "downloads", "indexes": (
            (("info_hash", "chat_id"), True),
            (("chat_id", "state"), False),
            (("state",), False),
        )}),
    })

    class FrozenActivity(peewee.Model):
        id = peewee.AutoField()
        at = peewee.DateTimeField()
        chat_id = peewee.BigIntegerField()
        user_id = peewee.BigIntegerField()
        action = peewee.CharField(max_length=32)
        download_id = peewee.IntegerField(null=True)
        detail = peewee.TextField(default="")

        class Meta:
            table_name = "activity"
            indexes = ((("chat_id", "at"), False),)

    frozen = [FrozenDownload, FrozenActivity]
    database.bind(frozen)
    database.create_tables(frozen)


def _migration_0002_chat_list_index(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 2: an index for a chat's list newest first (``/status``, ``ariabot list``).

    ``WHERE chat_id = ? ORDER BY id DESC LIMIT n`` then reads n index entries instead of
    sorting all of the chat's rows in a temporary B-tree.
    """
    migrate(migrator.add_index("downloads", ("chat_id", "id"), False,
                               name="downloads_chat_id_id"))


def _migration_0003_mirrors(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 3: the mirrors table (uploads to the rclone destination). Frozen copy."""

    class FrozenMirror(peewee.Model):
        id = peewee.AutoField()
        download_id = peewee.IntegerField(unique=True)
        chat_id = peewee.BigIntegerField()
        user_id = peewee.BigIntegerField()
        state = peewee.CharField(max_length=12)
        remote = peewee.TextField()
        move = peewee.BooleanField(default=False)
        attempt = peewee.IntegerField(default=0)
        bytes = peewee.BigIntegerField(default=0)
        total_bytes = peewee.BigIntegerField(default=0)
        error = peewee.TextField(null=True)
        link = peewee.TextField(null=True)
        local_deleted = peewee.BooleanField(default=False)
        pid = peewee.IntegerField(null=True)
        created_at = peewee.DateTimeField()
        updated_at = peewee.DateTimeField()

        class Meta:
            table_name = "mirrors"
            indexes = ((("state",), False),)

    database.bind([FrozenMirror])
    database.create_tables([FrozenMirror])


def _migration_0004_outbox(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 4: the notices outbox and the chats' stored message ids. Frozen copies."""

    class FrozenNotice(peewee.Model):
        id = peewee.AutoField()
        kind = peewee.CharField(max_length=16)
        download_id = peewee.IntegerField(null=True)
        chat_id = peewee.BigIntegerField(null=True)
        detail = peewee.TextField(default="")
        created_at = peewee.DateTimeField()
        tries = peewee.IntegerField(default=0)
        sent_at = peewee.DateTimeField(null=True)
        dropped = peewee.TextField(null=True)

        class Meta:
            table_name = "notices"
            indexes = ((("sent_at", "id"), False), (("download_id",), False))

    class FrozenChatView(peewee.Model):
        chat_id = peewee.BigIntegerField(primary_key=True)
        overview_message_id = peewee.BigIntegerField(null=True)

        class Meta:
            table_name = "chat_views"

    database.bind([FrozenNotice, FrozenChatView])
    database.create_tables([FrozenNotice, FrozenChatView])


def _migration_0005_sent_parts(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 5: the parts of files Telegram confirmed (sending). Frozen copy."""

    class FrozenSentPart(peewee.Model):
        id = peewee.AutoField()
        download_id = peewee.IntegerField()
        chat_id = peewee.BigIntegerField()
        file_index = peewee.IntegerField()
        file_size = peewee.BigIntegerField()
        file_mtime_ns = peewee.BigIntegerField()
        part_size = peewee.BigIntegerField()
        part = peewee.IntegerField()
        sent_at = peewee.DateTimeField()

        class Meta:
            table_name = "sent_parts"
            indexes = ((("download_id", "chat_id", "file_index", "file_size", "file_mtime_ns",
                         "part_size", "part"), True),)

    database.bind([FrozenSentPart])
    database.create_tables([FrozenSentPart])


def _migration_0006_mirror_folder(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 6: each mirror's own place at the destination (``mirrors.folder``), so that
    no download's upload lands on another's. Rows stored before keep NULL (the root).

    Like the ``create_tables`` of the migrations before it, it does nothing to a schema
    that has it already."""
    if "folder" not in {column.name for column in database.get_columns("mirrors")}:
        migrate(migrator.add_column("mirrors", "folder", peewee.TextField(null=True)))


def _migration_0007_chat_moves(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 7: the groups Telegram upgraded to supergroups (old id → new id). Frozen copy."""

    class FrozenChatMove(peewee.Model):
        old_chat_id = peewee.BigIntegerField(primary_key=True)
        new_chat_id = peewee.BigIntegerField()
        moved_at = peewee.DateTimeField()

        class Meta:
            table_name = "chat_moves"

    database.bind([FrozenChatMove])
    database.create_tables([FrozenChatMove])


def _migration_0008_download_ids_never_reused(migrator: SchemaMigrator,
                                              database: peewee.Database) -> None:
    """Version 8: a download's id is never given again, not even after its row is purged.

    Users act on a download by its id from old messages (a button's ``verb:id``, ``/cancel
    <id>``, a notice, a mirror place ``<chat>/<id>-<hash>``): a reused id would let them act
    on another download. SQLite's plain ``INTEGER PRIMARY KEY`` could give one again and its
    table is rebuilt with ``AUTOINCREMENT``; PostgreSQL's ``SERIAL`` never could
    (:meth:`manager.store.engine.Engine.keep_ids_unique`).
    """
    engine_of(database).keep_ids_unique(database, _version1_download_columns)


def _migration_0009_nodes(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 9: the nodes sharing this database and their heartbeats. Frozen copy."""

    class FrozenNode(peewee.Model):
        name = peewee.CharField(max_length=63, primary_key=True)
        home = peewee.CharField(max_length=32)
        epoch = peewee.IntegerField()
        version = peewee.CharField(max_length=32)
        started_at = peewee.DoubleField()
        last_seen = peewee.DoubleField()
        left_at = peewee.DoubleField(null=True)
        slots_used = peewee.IntegerField(default=0)
        slots_total = peewee.IntegerField(default=0)
        free_disk = peewee.BigIntegerField(default=0)
        downloads = peewee.IntegerField(default=0)

        class Meta:
            table_name = "nodes"

    database.bind([FrozenNode])
    database.create_tables([FrozenNode])


def _migration_0010_feeds(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 10: the feeds chats subscribe to, and the items each one looked at. Frozen."""

    class FrozenFeed(peewee.Model):
        id = peewee.AutoField()
        chat_id = peewee.BigIntegerField()
        user_id = peewee.BigIntegerField()
        name = peewee.CharField(max_length=64)
        url = peewee.TextField()
        filter = peewee.TextField(default="{}")
        paused = peewee.BooleanField(default=False)
        created_at = peewee.DateTimeField()
        next_poll_at = peewee.DateTimeField()
        last_poll_at = peewee.DateTimeField(null=True)
        last_ok_at = peewee.DateTimeField(null=True)
        failing_since = peewee.DateTimeField(null=True)
        failures = peewee.IntegerField(default=0)
        last_error = peewee.TextField(null=True)
        failure_told = peewee.BooleanField(default=False)
        etag = peewee.TextField(null=True)
        last_modified = peewee.TextField(null=True)
        added = peewee.IntegerField(default=0)
        last_added_at = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "feeds"
            indexes = ((("chat_id", "name"), True), (("next_poll_at",), False))

    class FrozenFeedEntry(peewee.Model):
        id = peewee.AutoField()
        feed_id = peewee.IntegerField()
        chat_id = peewee.BigIntegerField()
        key = peewee.CharField(max_length=40)
        info_hash = peewee.CharField(max_length=40, null=True)
        title = peewee.TextField(default="")
        state = peewee.CharField(max_length=10)
        tries = peewee.IntegerField(default=0)
        download_id = peewee.IntegerField(null=True)
        seen_at = peewee.DateTimeField()

        class Meta:
            table_name = "feed_entries"
            indexes = ((("feed_id", "key"), True), (("chat_id", "info_hash"), False))

    frozen = [FrozenFeed, FrozenFeedEntry]
    database.bind(frozen)
    database.create_tables(frozen)


def _migration_0011_download_nodes(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 11: the node that holds each download (``downloads.node``), so that a node
    tracks, purges and acts on its own downloads only. Rows stored before keep NULL until
    the first node joins (:meth:`manager.store.nodes.Nodes.join` takes them)."""
    if "node" not in {column.name for column in database.get_columns("downloads")}:
        migrate(migrator.add_column("downloads", "node",
                                    peewee.CharField(max_length=63, null=True)))
    # Not migrator.add_index: it looks columns up as attributes of peewee's column factory,
    # whose own ``node`` attribute is the table ("downloads", "state" was indexed).
    database.execute_sql('CREATE INDEX IF NOT EXISTS "downloads_node_state" '
                         'ON "downloads" ("node", "state")')


def _migration_0012_download_moves(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 12: the unfinished downloads taken from dead nodes (failover), for the
    dead node to clean up when it returns. Frozen copy."""

    class FrozenDownloadMove(peewee.Model):
        id = peewee.AutoField()
        download_id = peewee.IntegerField()
        info_hash = peewee.CharField(max_length=40)
        from_node = peewee.CharField(max_length=63)
        from_home = peewee.CharField(max_length=32)
        to_node = peewee.CharField(max_length=63)
        gid = peewee.CharField(max_length=16, null=True)
        directory = peewee.TextField()
        moved_at = peewee.DoubleField()

        class Meta:
            table_name = "download_moves"
            indexes = ((("from_node",), False),)

    database.bind([FrozenDownloadMove])
    database.create_tables([FrozenDownloadMove])


def _migration_0013_node_commands(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 13: actions on a download asked of the node that holds it. Frozen copy."""

    class FrozenNodeCommand(peewee.Model):
        id = peewee.AutoField()
        node = peewee.CharField(max_length=63)
        download_id = peewee.IntegerField()
        action = peewee.CharField(max_length=16)
        arguments = peewee.TextField(default="{}")
        chat_id = peewee.BigIntegerField(null=True)
        user_id = peewee.BigIntegerField()
        asked_at = peewee.DoubleField()
        taken_at = peewee.DoubleField(null=True)
        answered_at = peewee.DoubleField(null=True)
        error = peewee.CharField(max_length=32, null=True)
        answer = peewee.TextField(default="{}")

        class Meta:
            table_name = "node_commands"
            indexes = ((("node", "answered_at"), False),)

    database.bind([FrozenNodeCommand])
    database.create_tables([FrozenNodeCommand])


def _migration_0014_paces(migrator: SchemaMigrator, database: peewee.Database) -> None:
    """Version 14: the paces every node shares (Telegram's limits). Frozen copy."""

    class FrozenPace(peewee.Model):
        key = peewee.CharField(max_length=80, primary_key=True)
        due = peewee.DoubleField()
        spacing = peewee.DoubleField()
        tolerance = peewee.DoubleField()
        taken_at = peewee.DoubleField()

        class Meta:
            table_name = "paces"

    database.bind([FrozenPace])
    database.create_tables([FrozenPace])


MIGRATIONS: tuple[Callable[[SchemaMigrator, peewee.Database], None], ...] = (
    _migration_0001_initial,
    _migration_0002_chat_list_index,
    _migration_0003_mirrors,
    _migration_0004_outbox,
    _migration_0005_sent_parts,
    _migration_0006_mirror_folder,
    _migration_0007_chat_moves,
    _migration_0008_download_ids_never_reused,
    _migration_0009_nodes,
    _migration_0010_feeds,
    _migration_0011_download_nodes,
    _migration_0012_download_moves,
    _migration_0013_node_commands,
    _migration_0014_paces,
)
"""Migration N+1 takes the schema from version N to N+1. Append; never edit a shipped one."""

SCHEMA_VERSION = len(MIGRATIONS)


def upgrade(database: peewee.Database, tables: Tables) -> None:
    """Create or migrate the schema up to :data:`SCHEMA_VERSION`, in one transaction.

    A database already at that version is only read: no lock is taken, so a store opened
    while another process writes (a long purge) waits for nothing. Otherwise the transaction
    excludes every other process's (:meth:`~manager.store.engine.Engine.migrating`), and
    reads the version again inside it: of nodes opening a new database at once, the first
    creates the schema and the others find it made.

    Parameters:
        database: the connected database.
        tables: its bound tables.

    Raises:
        peewee.DatabaseError: the file is at a newer version than this ariabot knows.
    """
    version = tables.schema_version
    if database.table_exists(version._meta.table_name) and (
            (row := version.select().first()) is not None and row.version == SCHEMA_VERSION):
        return
    with engine_of(database).migrating(database):
        database.create_tables([version])
        row = version.select().first()
        current = row.version if row else 0
        if current > SCHEMA_VERSION:
            raise peewee.DatabaseError(
                f"the database is at schema version {current}, newer than this ariabot "
                f"({SCHEMA_VERSION}); upgrade ariabot"
            )
        migrator = SchemaMigrator.from_database(database)
        for migration in MIGRATIONS[current:]:
            migration(migrator, database)
        if row is None:
            version.create(version=SCHEMA_VERSION)
        elif current != SCHEMA_VERSION:
            version.update(version=SCHEMA_VERSION).execute()
