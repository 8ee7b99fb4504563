"""Settings: code defaults, overridden by a TOML file, overridden by ``ARIABOT_*`` variables.

Every setting is declared once in :data:`FIELDS` (section, key, environment name, parser,
default, help); the parsers live in :mod:`supervisor.parsers`. The shipped
``conf/ariabot.toml`` mirrors those declarations and a test keeps the two in step, so the file
a user copies is always complete and true.

A bad value raises :class:`ConfigError` naming the key; ``ariabot`` turns that into one line
on stderr and exit code 2. Secrets are held in :class:`Secret`, whose ``repr``/``str`` never
show the value, so a settings object can be logged safely.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor import parsers
from supervisor.parsers import Secret, between
from supervisor.rcloneremote import parse_destination

__all__ = ["FIELDS", "ConfigError", "Field", "Secret", "Settings", "load_settings"]


class ConfigError(ValueError):
    """A setting has a bad value; the message names the key and what is wrong."""


@dataclass(frozen=True)
class Field:
    """One setting: where it lives in the TOML file, its variable, parser and default."""

    section: str
    key: str
    env: str
    parse: Callable[[Any], Any]
    default: Any
    help: str


FIELDS: tuple[Field, ...] = (
    Field("paths", "data_dir", "ARIABOT_DATA_DIR", parsers.path, "~/.local/share/ariabot",
          "state: database, aria2 session, rendered aria2.conf, runtime.json, lock"),
    Field("paths", "download_dir", "ARIABOT_DOWNLOAD_DIR", parsers.optional_path, "",
          "downloads root; torrents go to <download_dir>/torrents/<chat_id>/ "
          "(empty: <data_dir>/downloads)"),
    Field("aria2", "aria2c", "ARIABOT_ARIA2C", str, "aria2c",
          "the aria2c binary: a path, or a name looked up on PATH"),
    Field("aria2", "rpc_port", "ARIABOT_RPC_PORT", between(int, 0, 65535), 0,
          "RPC port on 127.0.0.1 only; 0 picks a free port at every start"),
    Field("aria2", "max_concurrent", "ARIABOT_MAX_CONCURRENT", between(int, 1, 50), 3,
          "downloads that run at once; the others wait in the queue"),
    Field("aria2", "seed_ratio", "ARIABOT_SEED_RATIO", between(float, 0, 100), 1.0,
          "stop seeding at this upload/download ratio (0: no ratio limit)"),
    Field("aria2", "seed_time", "ARIABOT_SEED_TIME", between(int, 0, 525600), 60,
          "stop seeding after this many minutes (0: stop as soon as the download is complete)"),
    Field("aria2", "bt_stop_timeout", "ARIABOT_BT_STOP_TIMEOUT", between(int, 0, 604800), 900,
          "end a torrent that received no data for this many seconds (dead swarm; 0: never)"),
    Field("aria2", "file_allocation", "ARIABOT_FILE_ALLOCATION",
          parsers.one_of("none", "falloc", "trunc", "prealloc"), "none",
          "disk space reservation; 'none' and 'falloc' never stall aria2, 'prealloc' can"),
    Field("aria2", "listen_port", "ARIABOT_LISTEN_PORT", parsers.port_range, "6881-6999",
          "TCP port(s) for incoming BitTorrent peers (open it in your firewall for speed)"),
    Field("aria2", "enable_dht", "ARIABOT_ENABLE_DHT", parsers.boolean, True,
          "find peers through DHT (needed for trackerless magnets); when it is off, aria2 "
          "does not use udp:// trackers either, only http(s):// ones"),
    Field("supervisor", "start_timeout", "ARIABOT_START_TIMEOUT", between(float, 1, 120), 15.0,
          "seconds aria2c has to answer RPC after it was spawned"),
    Field("supervisor", "health_interval", "ARIABOT_HEALTH_INTERVAL",
          between(float, 0.2, 300), 5.0, "seconds between two health probes of aria2c"),
    Field("supervisor", "health_timeout", "ARIABOT_HEALTH_TIMEOUT", between(float, 0.2, 300),
          10.0, "seconds one RPC probe may take (pre-allocation can stall aria2 briefly)"),
    Field("supervisor", "health_failures", "ARIABOT_HEALTH_FAILURES", between(int, 1, 100), 3,
          "failed probes in a row before aria2c is declared hung and restarted"),
    Field("supervisor", "stop_timeout", "ARIABOT_STOP_TIMEOUT", between(float, 1, 300), 15.0,
          "seconds aria2c has to save its session and exit before it is killed"),
    Field("supervisor", "backoff_initial", "ARIABOT_BACKOFF_INITIAL",
          between(float, 0.05, 60), 0.25, "first delay before restarting a dead aria2c (s)"),
    Field("supervisor", "backoff_max", "ARIABOT_BACKOFF_MAX", between(float, 0.05, 3600), 30.0,
          "longest delay between restarts; the delay doubles up to this (s)"),
    Field("supervisor", "min_uptime", "ARIABOT_MIN_UPTIME", between(float, 0, 3600), 10.0,
          "aria2c that ran this long is healthy again: the backoff starts over (s)"),
    Field("supervisor", "restart_burst", "ARIABOT_RESTART_BURST", between(int, 1, 1000), 5,
          "more restarts than this within restart_window is FATAL: ariabot exits non-zero"),
    Field("supervisor", "restart_window", "ARIABOT_RESTART_WINDOW",
          between(float, 1, 86400), 120.0, "the window for restart_burst (s)"),
    Field("manager", "database_url", "ARIABOT_DATABASE_URL", parsers.database_url, "",
          "where downloads are stored: sqlite:///path or postgresql://user:password@host:port/db "
          "(empty: SQLite <data_dir>/ariabot.db)"),
    Field("manager", "progress_interval", "ARIABOT_PROGRESS_INTERVAL", between(float, 1, 10),
          5.0, "seconds between two progress polls (one batched RPC for all downloads)"),
    Field("manager", "torrent_max_bytes", "ARIABOT_TORRENT_MAX_BYTES",
          between(int, 1024, 10_000_000), 10_000_000,
          "largest .torrent file accepted, in bytes (torf reads at most 10 MB)"),
    Field("manager", "fetch_allow_networks", "ARIABOT_FETCH_ALLOW_NETWORKS", parsers.networks,
          [], "private or local networks a .torrent link sent in a chat may be fetched from, "
          "e.g. 127.0.0.1/32 for a Jackett or Prowlarr on this machine (empty: public "
          "addresses only, so a chat cannot make the server reach its own network)"),
    Field("manager", "feed_interval", "ARIABOT_FEED_INTERVAL", between(float, 1, 86400), 900,
          "seconds between two reads of a feed (each feed on its own schedule, with ±10% "
          "jitter; a feed that fails waits twice as long each time, up to 6 hours)"),
    Field("manager", "feed_max_adds", "ARIABOT_FEED_MAX_ADDS", between(int, 1, 1000), 10,
          "most downloads one read of a feed adds; the rest wait for its next read"),
    Field("manager", "feed_max_bytes", "ARIABOT_FEED_MAX_BYTES",
          between(int, 10_000, 50_000_000), 5_000_000,
          "largest feed document read, in bytes"),
    Field("manager", "feed_failing_after", "ARIABOT_FEED_FAILING_AFTER",
          between(float, 1, 30 * 86400), 86400,
          "seconds a feed may keep failing before its chat is told (once per run of "
          "failures)"),
    Field("manager", "watch_dir", "ARIABOT_WATCH_DIR", parsers.optional_path, "",
          "a folder whose .torrent and .magnet files are added (Sonarr/Radarr blackhole), "
          "then moved to added/ or failed/ inside it (empty: no watch folder)"),
    Field("manager", "watch_chat", "ARIABOT_WATCH_CHAT", parsers.chat_id, 0,
          "the chat the watch folder's downloads belong to, told of their completion as for "
          "its own adds (0: the local chat of ariabot add)"),
    Field("manager", "retention_days", "ARIABOT_RETENTION_DAYS", between(int, 0, 36500), 0,
          "finished downloads (complete, error, cancelled) older than this many days leave "
          "the list, checked daily; their files stay (0: keep them forever)"),
    Field("node", "node_name", "ARIABOT_NODE_NAME", parsers.node_name, "",
          "this machine's name among the nodes sharing one database, shown by ariabot nodes "
          "(empty: the host name)"),
    Field("node", "node_dead_after", "ARIABOT_NODE_DEAD_AFTER", between(float, 3, 3600), 30.0,
          "seconds without a heartbeat after which a node reads as offline; it beats six "
          "times as often"),
    Field("telegram", "token", "ARIABOT_TELEGRAM_TOKEN", parsers.token, "",
          "bot token from @BotFather; empty runs ariabot in local mode (CLI only)"),
    Field("telegram", "api_url", "ARIABOT_TELEGRAM_API_URL", parsers.http_url,
          "https://api.telegram.org",
          "root of the Bot API server (a local Bot API server: http://127.0.0.1:8081)"),
    Field("telegram", "allowed_users", "ARIABOT_ALLOWED_USERS", parsers.telegram_ids("user"),
          [],
          "Telegram user ids allowed to use the bot; everyone else is refused"),
    Field("telegram", "allowed_chats", "ARIABOT_ALLOWED_CHATS", parsers.telegram_ids("chat"),
          [],
          "chats the bot answers in (a private chat's id is the user's id); empty: only "
          "the allowed users' private chats, so a group works only when listed here"),
    Field("telegram", "admin_chat", "ARIABOT_ADMIN_CHAT", parsers.chat_id, 0,
          "chat that gets supervisor alerts such as aria2 restarts (0: none)"),
    Field("telegram", "edit_interval", "ARIABOT_EDIT_INTERVAL", between(float, 1, 600), 10.0,
          "least seconds between two edits of one progress message"),
    Field("telegram", "upload_limit_mb", "ARIABOT_UPLOAD_LIMIT_MB", between(int, 1, 2000), 50,
          "largest upload (MiB): a finished file up to it is sent as one document, a bigger "
          "one in numbered parts of this size (50 for Telegram's servers, up to 2000 with a "
          "local Bot API server)"),
    Field("telegram", "api_local_mode", "ARIABOT_TELEGRAM_LOCAL_MODE", parsers.boolean, False,
          "the Bot API server at api_url runs with --local on this machine: it reads the files "
          "it sends from disk by path, so ariabot holds none of a file in memory"),
    Field("telegram", "webhook_url", "ARIABOT_WEBHOOK_URL", parsers.webhook_url, "",
          "public https:// URL Telegram posts updates to (empty: long polling)"),
    Field("telegram", "webhook_listen", "ARIABOT_WEBHOOK_LISTEN", parsers.host_port,
          "127.0.0.1:8443", "host:port the webhook server listens on, behind your HTTPS proxy"),
    Field("mirror", "remote", "ARIABOT_RCLONE_REMOTE", parsers.rclone_remote, "",
          "rclone destination finished downloads are mirrored to, e.g. gdrive:ariabot, or a "
          "connection string such as :webdav,url=...,pass=...:path whose parameters reach "
          "rclone by its environment, never its command line (empty: mirroring is off)"),
    Field("mirror", "rclone_config", "ARIABOT_RCLONE_CONFIG", parsers.optional_path, "",
          "the rclone config file that defines the remote (empty: rclone's own default)"),
    Field("mirror", "rclone", "ARIABOT_RCLONE", str, "rclone",
          "the rclone binary: a path, or a name looked up on PATH"),
    Field("mirror", "auto", "ARIABOT_MIRROR_AUTO", parsers.boolean, False,
          "mirror every finished download at once (false: only when asked, /mirror or the "
          "Mirror button)"),
    Field("mirror", "mode", "ARIABOT_MIRROR_MODE", parsers.one_of("copy", "move"), "copy",
          "copy keeps the local files; move deletes them once the upload is verified "
          "(seeding stops first)"),
    Field("mirror", "attempts", "ARIABOT_MIRROR_ATTEMPTS", between(int, 1, 20), 4,
          "tries of one upload before it is reported failed"),
    Field("mirror", "retry_delay", "ARIABOT_MIRROR_RETRY_DELAY", between(float, 0.1, 3600),
          30.0, "seconds before the first retry of a failed upload; it doubles each time"),
    Field("mirror", "bwlimit", "ARIABOT_MIRROR_BWLIMIT", parsers.rclone_bwlimit, "",
          "upload speed limit as rclone's --bwlimit, e.g. 10M (empty: none)"),
    Field("http", "public_url", "ARIABOT_PUBLIC_URL", parsers.public_url, "",
          "where users reach ariabot's link server, behind your reverse proxy, e.g. "
          "https://files.example.org (empty: no links, the server stays off)"),
    Field("http", "http_listen", "ARIABOT_HTTP_LISTEN", parsers.listen_address,
          "127.0.0.1:8090", "host:port the link server listens on (0 as the port: any free "
          "one); keep it on loopback behind the proxy"),
    Field("http", "link_days", "ARIABOT_LINK_DAYS", between(float, 0.01, 365), 7.0,
          "days a download's link works (it dies sooner when the download is cancelled, "
          "purged or its files deleted)"),
    Field("http", "miniapp_max_age", "ARIABOT_MINIAPP_MAX_AGE", between(float, 60, 604800),
          86400.0, "seconds a Mini App page opened from Telegram keeps working before it "
          "must be opened again (the age of Telegram's signed initData)"),
    Field("log", "level", "ARIABOT_LOG_LEVEL", parsers.log_level, "INFO",
          "DEBUG, INFO, WARNING or ERROR"),
)


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with :func:`load_settings`; defaults live in :data:`FIELDS`."""

    data_dir: Path
    download_dir: Path
    aria2c: str
    rpc_port: int
    max_concurrent: int
    seed_ratio: float
    seed_time: int
    bt_stop_timeout: int
    file_allocation: str
    listen_port: str
    enable_dht: bool
    start_timeout: float
    health_interval: float
    health_timeout: float
    health_failures: int
    stop_timeout: float
    backoff_initial: float
    backoff_max: float
    min_uptime: float
    restart_burst: int
    restart_window: float
    database_url: str
    progress_interval: float
    torrent_max_bytes: int
    fetch_allow_networks: tuple[str, ...]
    feed_interval: float
    feed_max_adds: int
    feed_max_bytes: int
    feed_failing_after: float
    watch_dir: Path | None
    watch_chat: int
    retention_days: int
    node_name: str
    node_dead_after: float
    token: Secret
    api_url: str
    allowed_users: tuple[int, ...]
    allowed_chats: tuple[int, ...]
    admin_chat: int
    edit_interval: float
    upload_limit_mb: int
    api_local_mode: bool
    webhook_url: str
    webhook_listen: str
    remote: str
    rclone_config: Path | None
    rclone: str
    auto: bool
    mode: str
    attempts: int
    retry_delay: float
    bwlimit: str
    public_url: str
    http_listen: str
    link_days: float
    miniapp_max_age: float
    level: str
    source: Path | None = field(default=None, compare=False)
    remote_env: tuple[tuple[str, Secret], ...] = field(default=(), repr=False)
    """The connection string's parameters of ``remote``, as rclone's variables (see
    :mod:`supervisor.rcloneremote`); ``remote`` itself holds none."""
    remote_secrets: tuple[Secret, ...] = field(default=(), repr=False)
    """Those of their values that look like credentials: the log masks them."""

    def rclone_environment(self) -> dict[str, str]:
        """The variables rclone reads the destination's parameters from (secrets revealed:
        only for rclone's own environment)."""
        return {name: value.reveal() for name, value in self.remote_env}

    @property
    def mirroring(self) -> bool:
        """True when finished downloads can be mirrored (an rclone destination is set)."""
        return bool(self.remote)

    @property
    def links(self) -> bool:
        """True when the link server runs and the bot offers links (a public URL is set)."""
        return bool(self.public_url)

    @property
    def miniapp_url(self) -> str:
        """The Mini App's address: on the link server, when there is one and a bot (its
        pages are checked with the bot's token); empty otherwise."""
        if not self.links or self.local_mode:
            return ""
        return f"{self.public_url.rstrip('/')}/app/"

    @property
    def local_mode(self) -> bool:
        """True when no Telegram token is set: the bot stays off, the CLI drives ariabot."""
        return not self.token


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"config file {path}: {error}") from None


def _file_values(document: Mapping[str, Any], path: Path) -> dict[str, Any]:
    known = {(f.section, f.key) for f in FIELDS}
    sections = {f.section for f in FIELDS}
    values: dict[str, Any] = {}
    for section, table in document.items():
        if section not in sections or not isinstance(table, dict):
            raise ConfigError(f"config file {path}: unknown section [{section}]")
        for key, value in table.items():
            if (section, key) not in known:
                raise ConfigError(f"config file {path}: unknown key {section}.{key}")
            values[key] = value
    return values


def load_settings(
    config_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from defaults, then ``config_path`` (if any), then ``environ``.

    Parameters:
        config_path: a TOML file laid out like ``conf/ariabot.toml``; ``None`` uses
            ``$ARIABOT_CONFIG`` when set, otherwise the defaults alone.
        environ: the environment to read ``ARIABOT_*`` from (``os.environ`` by default).

    Returns:
        The validated settings.

    Raises:
        ConfigError: a value is invalid or the file cannot be read; the message names the key
            and never contains the value of a secret.
    """
    env = os.environ if environ is None else environ
    if config_path is None and env.get("ARIABOT_CONFIG"):
        try:
            config_path = parsers.path(env["ARIABOT_CONFIG"])
        except ValueError as error:
            raise ConfigError(f"ARIABOT_CONFIG: {error}") from None
    file_values = _file_values(_read_toml(config_path), config_path) if config_path else {}

    parsed: dict[str, Any] = {}
    for spec in FIELDS:
        if spec.env in env:
            raw, origin = env[spec.env], spec.env
        elif spec.key in file_values:
            raw, origin = file_values[spec.key], f"{spec.section}.{spec.key}"
        else:
            raw, origin = spec.default, f"{spec.section}.{spec.key}"
        try:
            parsed[spec.key] = spec.parse(raw)
        except ValueError as error:
            raise ConfigError(f"{origin}: {error}") from None

    if parsed["download_dir"] is None:
        parsed["download_dir"] = parsed["data_dir"] / "downloads"
    if parsed["backoff_max"] < parsed["backoff_initial"]:
        raise ConfigError("supervisor.backoff_max: must not be smaller than backoff_initial")
    destination = parse_destination(parsed["remote"]) if parsed["remote"] else None
    if destination is not None:
        parsed["remote"] = destination.remote
        parsed["remote_env"] = tuple((name, Secret(value))
                                     for name, value in destination.environment)
        parsed["remote_secrets"] = tuple(Secret(value) for value in destination.secret_values)
    return Settings(**parsed, source=config_path)

