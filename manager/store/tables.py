"""The store's tables (peewee models), and each store's own bound copies of them.

The models here are templates bound to no database: :func:`bind_tables` makes each
:class:`~manager.store.Store` its own copies bound to its own database, so that two stores
(two files) can live in one process without a module-wide binding deciding which file a
query reaches. How an older database reaches these tables is :mod:`manager.store.migrations`.
"""

from __future__ import annotations

from dataclasses import dataclass

import peewee

__all__ = [
    "Activity",
    "ChatMove",
    "ChatView",
    "Download",
    "DownloadMove",
    "Feed",
    "FeedEntry",
    "MirrorJob",
    "Node",
    "NodeCommand",
    "Notice",
    "SchemaVersion",
    "SentPart",
    "Tables",
    "bind_tables",
]


class _Base(peewee.Model):
    class Meta:
        legacy_table_names = False


class Download(_Base):
    """One download of one chat. ``id`` is the public id users type: never given to another
    download, not even after this one is purged (migration 8)."""

    id = peewee.AutoField()
    info_hash = peewee.CharField(max_length=40)
    chat_id = peewee.BigIntegerField()
    user_id = peewee.BigIntegerField()
    message_id = peewee.BigIntegerField(null=True)
    name = peewee.TextField()
    source_kind = peewee.CharField(max_length=8)
    source = peewee.BlobField()
    directory = peewee.TextField()
    gid = peewee.CharField(max_length=16, null=True)
    state = peewee.CharField(max_length=12)
    total_bytes = peewee.BigIntegerField(default=0)
    completed_bytes = peewee.BigIntegerField(default=0)
    upload_bytes = peewee.BigIntegerField(default=0)
    download_speed = peewee.BigIntegerField(default=0)
    upload_speed = peewee.BigIntegerField(default=0)
    seeders = peewee.IntegerField(default=0)
    peers = peewee.IntegerField(default=0)
    error = peewee.TextField(null=True)
    selected_files = peewee.TextField(null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    completed_at = peewee.DateTimeField(null=True)
    node = peewee.CharField(max_length=63, null=True)
    """The node whose aria2c and disk hold it (migration 11); None only before a node joined
    (the first one to join takes them) and in tests of the manager without a node."""

    class Meta:
        table_name = "downloads"
        indexes = (
            (("info_hash", "chat_id"), True),
            (("chat_id", "state"), False),
            (("state",), False),
            (("chat_id", "id"), False),  # migration 2: a chat's list, newest first
            (("node", "state"), False),  # migration 11: a node's own unfinished downloads
        )


class Activity(_Base):
    """The activity log: who did what to which download, and when."""

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


class MirrorJob(_Base):
    """A download's upload to the rclone destination (one per download; a new request
    replaces a finished one). Stored so that a restart of ariabot resumes it."""

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
    folder = peewee.TextField(null=True)
    """The download's own place below ``remote`` (``<chat id>/<id>-<info-hash[:8]>``);
    None for a mirror stored before migration 6, whose files went to ``remote`` itself."""

    class Meta:
        table_name = "mirrors"
        indexes = ((("state",), False),)


class Notice(_Base):
    """The outbox: something a chat must be told, written in the same transaction as the
    change that causes it and kept until the bot says Telegram has it (``sent_at``).

    ``chat_id`` None is the admin chat (aria2c alerts). The row's id is the event's
    idempotency key: one change writes one row, and a row is sent until it is marked.
    """

    id = peewee.AutoField()
    kind = peewee.CharField(max_length=16)
    download_id = peewee.IntegerField(null=True)
    chat_id = peewee.BigIntegerField(null=True)
    detail = peewee.TextField(default="")
    created_at = peewee.DateTimeField()
    tries = peewee.IntegerField(default=0)
    sent_at = peewee.DateTimeField(null=True)
    dropped = peewee.TextField(null=True)
    """Why it was given up instead of sent (chat gone, bot blocked, download deleted)."""

    class Meta:
        table_name = "notices"
        indexes = ((("sent_at", "id"), False), (("download_id",), False))


class ChatView(_Base):
    """Per chat, the message ids the bot keeps editing beyond one download (the ``/status``
    overview), so that a restart finds them again."""

    chat_id = peewee.BigIntegerField(primary_key=True)
    overview_message_id = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "chat_views"


class SentPart(_Base):
    """A part of a file Telegram confirmed in a chat: never sent there again, across
    restarts. The file's size, modification time and the part size (the upload limit when it
    was sent) are part of the key: a changed file or a changed limit makes other parts."""

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


class ChatMove(_Base):
    """A group Telegram upgraded to a supergroup: its old id and its new one, as Telegram
    said it (a service message, or its answer to a request naming the old id), never as a
    user wrote it. The bot serves the new id where the old one was allowed, across restarts."""

    old_chat_id = peewee.BigIntegerField(primary_key=True)
    new_chat_id = peewee.BigIntegerField()
    moved_at = peewee.DateTimeField()

    class Meta:
        table_name = "chat_moves"


class Node(_Base):
    """One ariabot process sharing this database (``ariabot nodes``), kept by its heartbeat.

    Times are the database's clock, in seconds since 1970 (:meth:`~manager.store.engine.Engine.
    clock`): nodes on several machines compare them with one clock, not with their own.
    """

    name = peewee.CharField(max_length=63, primary_key=True)
    home = peewee.CharField(max_length=32)
    """The random id of the data dir that holds the name: its own restart takes the name back
    at once (the data dir's lock says the process before it is gone); another waits until the
    name's holder is dead."""
    epoch = peewee.IntegerField()
    """Raised by each start: a process whose epoch is no longer the row's was replaced."""
    version = peewee.CharField(max_length=32)
    started_at = peewee.DoubleField()
    last_seen = peewee.DoubleField()
    left_at = peewee.DoubleField(null=True)
    """When it stopped cleanly; None while it runs, or when it died without a word."""
    slots_used = peewee.IntegerField(default=0)
    slots_total = peewee.IntegerField(default=0)
    free_disk = peewee.BigIntegerField(default=0)
    downloads = peewee.IntegerField(default=0)

    class Meta:
        table_name = "nodes"


class DownloadMove(_Base):
    """An unfinished download a node took from a dead one (failover), as it was on the dead
    node: when that node comes back, it removes the download from its aria2c and deletes
    the partial data it wrote there, then forgets the move (its own rows say nothing of it
    any more: they name the node that took it)."""

    id = peewee.AutoField()
    download_id = peewee.IntegerField()
    info_hash = peewee.CharField(max_length=40)
    from_node = peewee.CharField(max_length=63)
    from_home = peewee.CharField(max_length=32)
    """The data dir that held the dead node's name: only it has the data to clean up
    (another data dir may take the name later)."""
    to_node = peewee.CharField(max_length=63)
    gid = peewee.CharField(max_length=16, null=True)
    directory = peewee.TextField()
    """Its folder on the dead node's disk."""
    moved_at = peewee.DoubleField()
    """The database's clock (as the nodes' times)."""

    class Meta:
        table_name = "download_moves"
        indexes = ((("from_node",), False),)


class NodeCommand(_Base):
    """An action on a download asked of the node that holds it (pause, resume, cancel, file
    choice), by the node a user asked (the front). The owner takes it (``taken_at``) and
    writes the answer; an asker that gives up first marks it taken by nobody, so that it is
    never run late. Times are the database's clock."""

    id = peewee.AutoField()
    node = peewee.CharField(max_length=63)
    download_id = peewee.IntegerField()
    action = peewee.CharField(max_length=16)
    arguments = peewee.TextField(default="{}")
    """JSON: the action's own arguments (the files chosen, delete the files or not)."""
    chat_id = peewee.BigIntegerField(null=True)
    user_id = peewee.BigIntegerField()
    asked_at = peewee.DoubleField()
    taken_at = peewee.DoubleField(null=True)
    """When the owner took it; a negative value: the asker gave up before it was taken."""
    answered_at = peewee.DoubleField(null=True)
    error = peewee.CharField(max_length=32, null=True)
    """The name of the :mod:`manager.errors` class the owner raised, None when it was done."""
    answer = peewee.TextField(default="{}")
    """JSON: what it did (a cancel's files), or the error's sentence."""

    class Meta:
        table_name = "node_commands"
        indexes = ((("node", "answered_at"), False),)


class Pace(_Base):
    """A pace every node shares (Telegram's limits are the bot's, not a node's): a
    generic cell rate algorithm, whose state is one time. ``due`` is when the next turn
    would come at the sustained pace; a turn may be taken ``tolerance`` seconds before it
    (the burst). Times are the database's clock."""

    key = peewee.CharField(max_length=80, primary_key=True)
    due = peewee.DoubleField()
    spacing = peewee.DoubleField()
    """Seconds between two turns, sustained."""
    tolerance = peewee.DoubleField()
    """How far ahead of ``due`` a turn may be taken: (burst - 1) times the spacing."""
    taken_at = peewee.DoubleField()
    """When the last turn was taken (the database's clock)."""

    class Meta:
        table_name = "paces"


class Feed(_Base):
    """A feed a chat subscribed to (``/rss add``): what it adds, and when it is read next.

    ``url`` is never shown to a chat in full (an indexer's feed URL holds an API key or a
    passkey): messages name its host. ``etag`` and ``last_modified`` are the validators of
    its last full answer, sent back so that an unchanged feed answers 304.
    """

    id = peewee.AutoField()
    chat_id = peewee.BigIntegerField()
    user_id = peewee.BigIntegerField()
    """Who subscribed: the feed's adds are theirs."""
    name = peewee.CharField(max_length=64)
    url = peewee.TextField()
    filter = peewee.TextField(default="{}")
    """Its :class:`~manager.feeds.FeedFilter`, as JSON."""
    paused = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField()
    next_poll_at = peewee.DateTimeField()
    last_poll_at = peewee.DateTimeField(null=True)
    last_ok_at = peewee.DateTimeField(null=True)
    failing_since = peewee.DateTimeField(null=True)
    """The first failure of the current run of failures; None while it reads."""
    failures = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    failure_told = peewee.BooleanField(default=False)
    """The chat was told that this run of failures has lasted a day (told once per run)."""
    etag = peewee.TextField(null=True)
    last_modified = peewee.TextField(null=True)
    added = peewee.IntegerField(default=0)
    last_added_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "feeds"


class FeedEntry(_Base):
    """An item of a feed that was looked at: added, skipped, or seen (the backlog). One row
    per feed and item (``key``: the SHA-1 of its GUID), so an item is added at most once,
    across restarts; ``info_hash`` keeps the same torrent from coming twice in a chat by
    another GUID or another feed."""

    id = peewee.AutoField()
    feed_id = peewee.IntegerField()
    chat_id = peewee.BigIntegerField()
    key = peewee.CharField(max_length=40)
    info_hash = peewee.CharField(max_length=40, null=True)
    title = peewee.TextField(default="")
    state = peewee.CharField(max_length=10)
    """``seen`` (the backlog), ``skipped`` (filtered out), ``adding`` (being added: a crash
    here is settled at the next poll), ``added``, ``duplicate`` (already listed), ``failed``
    (``tries`` attempts failed)."""
    tries = peewee.IntegerField(default=0)
    download_id = peewee.IntegerField(null=True)
    seen_at = peewee.DateTimeField()

    class Meta:
        table_name = "feed_entries"


class SchemaVersion(_Base):
    """One row: the schema version this database is at."""

    version = peewee.IntegerField()

    class Meta:
        table_name = "schema_version"


@dataclass(frozen=True)
class Tables:
    """One store's models, bound to that store's database only."""

    download: type[Download]
    activity: type[Activity]
    mirror: type[MirrorJob]
    notice: type[Notice]
    chat_view: type[ChatView]
    sent_part: type[SentPart]
    chat_move: type[ChatMove]
    node: type[Node]
    download_move: type[DownloadMove]
    node_command: type[NodeCommand]
    pace: type[Pace]
    feed: type[Feed]
    feed_entry: type[FeedEntry]
    schema_version: type[SchemaVersion]


def bind_tables(database: peewee.Database) -> Tables:
    """Copies of the models bound to ``database`` (the templates stay unbound).

    ``Database.bind`` would rebind the template classes themselves, which every store in the
    process shares: the last store opened would receive every store's queries.

    Parameters:
        database: the store's connected database.

    Returns:
        Its own :class:`Tables`.
    """
    return Tables(
        download=_bound(Download, database),
        activity=_bound(Activity, database),
        mirror=_bound(MirrorJob, database),
        notice=_bound(Notice, database),
        chat_view=_bound(ChatView, database),
        sent_part=_bound(SentPart, database),
        chat_move=_bound(ChatMove, database),
        node=_bound(Node, database),
        download_move=_bound(DownloadMove, database),
        node_command=_bound(NodeCommand, database),
        pace=_bound(Pace, database),
        feed=_bound(Feed, database),
        feed_entry=_bound(FeedEntry, database),
        schema_version=_bound(SchemaVersion, database),
    )


def _bound(model: type[peewee.Model], database: peewee.Database) -> type:
    """A subclass of ``model`` on the same table, bound to ``database``."""
    meta = type("Meta", (), {"database": database, "table_name": model._meta.table_name})
    return type(model.__name__, (model,), {"Meta": meta, "__module__": __name__})
