"""``ariabot doctor``: check everything ``ariabot run`` needs, one line per check.

Each line is ``✔ what`` or ``✘ what — how to fix``; a check that cannot be made here (no
token, no network), or a limit worth knowing that stops nothing (aria2c 1.36 and hybrid
torrents), is a ``○`` line with a note and does not count as a failure. When an ariabot runs
on the data dir, its own health (aria2's notification listener) is asked over the control
socket. ``ariabot doctor`` exits 0 when nothing failed, 1 otherwise. It changes nothing: it
creates no directory, takes no lock and stops no process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import psutil

from manager import HYBRID_FIX, human_size, hybrid_limitation
from supervisor.aria2c import Aria2cUnusable, locate_aria2c
from supervisor.config import ConfigError, Settings
from supervisor.control import ControlClient, NotRunning
from supervisor.envnames import unknown_variables
from supervisor.instance import find_stale_aria2c, lock_holder, read_runtime
from supervisor.layout import StateLayout
from supervisor.linkkey import LinkKeyError, read_link_key
from supervisor.logs import SecretMask
from supervisor.parsers import split_listen
from supervisor.rclone import (
    INSTALL_HINT,
    RcloneUnusable,
    locate_rclone,
    probe_remote,
    remote_name,
    remote_names,
)
from supervisor.statedirs import directory_problem

__all__ = [
    "MIN_FREE_DATA",
    "MIN_FREE_DOWNLOADS",
    "Check",
    "check_aria2c",
    "check_bot_api",
    "check_dht",
    "check_directory",
    "check_health",
    "check_instance",
    "check_miniapp",
    "check_rclone",
    "check_telegram",
    "check_variables",
    "config_failure",
    "health_checks",
    "report",
    "run_checks",
]

MIN_FREE_DATA = 100 * 1024 * 1024
"""Less free space than this where the data dir lives fails the check (database, session)."""
MIN_FREE_DOWNLOADS = 1024 * 1024 * 1024
"""Less free space than this where the downloads go fails the check."""

DiskUsage = Callable[[str], Any]


@dataclass(frozen=True)
class Check:
    """One line of the report.

    Attributes:
        ok: True passed, False failed, None not checked (a note, not a failure).
        what: what was checked and what was found.
        fix: how to fix it (failures) or why it was not checked (notes).
    """

    ok: bool | None
    what: str
    fix: str = ""

    @property
    def line(self) -> str:
        """``✔ what``, ``✘ what — fix`` or ``○ what — note``."""
        mark = {True: "✔", False: "✘", None: "○"}[self.ok]
        return f"{mark} {self.what}" + (f" — {self.fix}" if self.fix else "")


def config_failure(error: ConfigError, source: Path | None) -> Check:
    """The line for settings that do not load (the other checks need them)."""
    where = f"in {source} or in " if source else "in "
    return Check(False, f"configuration: {error}",
                 f"correct that value ({where}its ARIABOT_* variable); every setting is in "
                 "docs/configuration.md")


def _config_ok(settings: Settings) -> Check:
    source = f"file {settings.source}" if settings.source else "defaults"
    return Check(True, f"configuration is valid ({source} and ARIABOT_* variables)")


def check_variables(environ: Mapping[str, str]) -> list[Check]:
    """A failure for each ``ARIABOT_*`` variable that is no setting (a typo is ignored)."""
    return [Check(False, variable.problem, variable.fix)
            for variable in unknown_variables(environ)]


def check_dht(settings: Settings) -> list[Check]:
    """A note when DHT is off: aria2 then ignores udp:// trackers too (aria2 1.36)."""
    if settings.enable_dht:
        return []
    return [Check(None, "DHT is off: magnets and torrents find peers only through http(s):// "
                  "trackers, since aria2 does not use udp:// trackers without DHT",
                  "set ARIABOT_ENABLE_DHT=true unless that is what you want")]


def check_aria2c(name: str) -> list[Check]:
    """aria2c is found, runs, and is recent enough; a note on what it cannot download."""
    try:
        path, version = locate_aria2c(name)
    except Aria2cUnusable as error:
        return [Check(False, error.problem, error.fix)]
    return [Check(True, f"aria2c {'.'.join(map(str, version))} at {path}"),
            *_hybrid_notes([hybrid_limitation(version)])]


def _hybrid_notes(limitations: Sequence[str | None]) -> list[Check]:
    return [Check(None, f"hybrid (v1+v2) torrents are refused: {text}", HYBRID_FIX)
            for text in limitations if text]


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_directory(label: str, path: Path, variable: str, min_free: int,
                    disk_usage: DiskUsage = psutil.disk_usage) -> Check:
    """``path`` is a writable directory (or can be created) with ``min_free`` bytes free.

    Parameters:
        label: "data dir" or "download dir".
        path: the directory.
        variable: the setting's variable, named in the fix.
        min_free: fewer free bytes than this fails.
        disk_usage: ``psutil.disk_usage``-like (injected by tests).
    """
    try:
        anchor = _nearest_existing(path)
    except OSError as error:  # a parent this user may not enter
        return Check(False, f"{label} {path} cannot be reached ({error.strerror})",
                     f"give the user running ariabot access to it (sudo chown {_user()} "
                     f"...), or set {variable} to another directory")
    if path.exists():
        if not path.is_dir():
            return Check(False, f"{label} {path} is not a directory",
                         f"remove that file or set {variable} to a directory")
        try:
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as error:
            return Check(False, f"{label} {path} is not writable ({error.strerror})",
                         f"give the user running ariabot write access (sudo chown "
                         f"{_user()} {path}), or under systemd add it to ReadWritePaths=")
        state = "writable"
    else:
        if not anchor.is_dir():
            return Check(False, f"{label} {path} cannot be created: {anchor} is not a "
                         "directory", f"set {variable} to a path below a directory")
        if not os.access(anchor, os.W_OK | os.X_OK):
            return Check(False, f"{label} {path} does not exist and cannot be created "
                         f"({anchor} is not writable)",
                         f"create it for the user running ariabot: sudo install -d -o "
                         f"{_user()} -m 0700 {path}")
        state = "missing, will be created at start"
    try:
        free = int(disk_usage(str(anchor)).free)
    except OSError as error:
        return Check(False, f"{label} {path}: free space unknown ({error.strerror})",
                     "check the file system")
    if free < min_free:
        return Check(False, f"{label} {path}: only {human_size(free)} free (less than "
                     f"{human_size(min_free)})", f"free some space, or set {variable} to a "
                     "bigger disk")
    return Check(True, f"{label} {path} ({state}, {human_size(free)} free)")


def _user() -> str:
    with contextlib.suppress(KeyError, OSError):
        import pwd  # noqa: PLC0415 - POSIX only, and only for this hint

        return pwd.getpwuid(os.getuid()).pw_name
    return "$USER"


def check_telegram(settings: Settings) -> list[Check]:
    """The token is well-formed and somebody is allowed to use the bot (with a token)."""
    if settings.local_mode:
        return []
    checks = [Check(True, "bot token is set and well-formed")]
    if settings.allowed_users:
        count = len(settings.allowed_users)
        checks.append(Check(True, f"allow-list: {count} user{'s' if count > 1 else ''}"))
    else:
        checks.append(Check(False, "allow-list is empty: the bot refuses everybody",
                            "set ARIABOT_ALLOWED_USERS to your Telegram user id (send the "
                            "bot a message: its refusal shows your id)"))
    return checks


def check_bot_api(settings: Settings, timeout: float = 5.0) -> Check:
    """``getMe`` on the configured Bot API server answers for this token.

    Unreachable (offline, DNS, firewall) is a note, not a failure: it may work from where
    ariabot runs. The token never appears in the line, whatever the server answers.
    """
    if settings.local_mode:
        return Check(None, "Bot API not checked",
                     "no Telegram token: ariabot runs in local mode (CLI only); set "
                     "ARIABOT_TELEGRAM_TOKEN to use the bot")
    token = settings.token.reveal()
    mask = SecretMask([token])
    url = f"{settings.api_url}/bot{token}/getMe"
    request = urllib.request.Request(url, headers={"User-Agent": "ariabot-doctor"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            raw = answer.read(1_000_000)
    except urllib.error.HTTPError as error:
        return _api_refusal(settings.api_url, error, mask)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Check(None, f"Bot API at {settings.api_url} unreachable from here (skipped)",
                     mask(f"{reason}; offline? check the network, a proxy or "
                          "ARIABOT_TELEGRAM_API_URL"))
    username, problem = _bot_in(raw)
    if username is None:
        return Check(False, f"Bot API at {settings.api_url} answered getMe with something "
                     f"that is not a Bot API answer ({problem})", "check "
                     "ARIABOT_TELEGRAM_API_URL (the server root, such as "
                     "https://api.telegram.org)")
    return Check(True, mask(f"Bot API at {settings.api_url} knows this bot: @{username}"))


def _bot_in(raw: bytes) -> tuple[str | None, str]:
    """The bot's username in a getMe answer, or None and what is wrong with the answer.

    As strict as python-telegram-bot: ``ariabot run`` fails on an answer without the bot's
    ``id``, ``is_bot`` and ``first_name``, so doctor must not pass it.
    """
    try:
        body = json.loads(raw)
    except ValueError:  # also UnicodeDecodeError
        return None, "not JSON"
    if not (isinstance(body, dict) and body.get("ok") is True and "result" in body):
        return None, "no result"
    result = body["result"]
    fields = {"id": int, "is_bot": bool, "first_name": str, "username": str}
    if not (isinstance(result, dict)
            and all(isinstance(result.get(name), kind) for name, kind in fields.items())):
        return None, "its result is not a bot"
    return str(result["username"]), ""


def _api_refusal(api_url: str, error: urllib.error.HTTPError, mask: SecretMask) -> Check:
    description = ""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        description = str(json.loads(error.read(100_000)).get("description") or "")
    said = mask(f"{error.code} {description or error.reason}".strip())
    if error.code == 401:
        return Check(False, f"Bot API at {api_url} refused the token ({said})",
                     "copy the token again from @BotFather (/mybots → API Token) into "
                     "ARIABOT_TELEGRAM_TOKEN")
    if error.code == 404:
        return Check(False, f"Bot API at {api_url} answered {said}",
                     "check ARIABOT_TELEGRAM_API_URL (the server root, such as "
                     "https://api.telegram.org) and the token")
    return Check(False, f"Bot API at {api_url} answered {said}",
                 "try again later; if it persists, check ARIABOT_TELEGRAM_API_URL")


def check_instance(layout: StateLayout) -> Check:
    """Is an ariabot running on this data dir? Did a killed one leave its aria2c behind?"""
    holder = lock_holder(layout.lock)
    if holder is not None:
        info = read_runtime(layout)
        aria2c = f", aria2c pid {info.aria2c_pid} {info.state}" if info and info.aria2c_pid else ""
        pid = f"pid {holder}" if holder > 0 else "pid unknown"
        return Check(True, f"an ariabot is running on this data dir ({pid}{aria2c}); a "
                     "second one would be refused")
    stale = find_stale_aria2c(layout)
    if stale is not None:
        return Check(False, f"aria2c pid {stale.pid} was left running by an ariabot that was "
                     "killed", f"'ariabot run' stops it when it starts, or stop it now: kill "
                     f"{stale.pid}")
    note = " (its old runtime.json is replaced at start)" if layout.runtime.exists() else ""
    return Check(True, f"no ariabot running on this data dir, no aria2c left behind{note}")


def check_health(layout: StateLayout, timeout: float = 5.0) -> list[Check]:
    """The running ariabot's own health, asked over its control socket (nothing if none runs)."""
    if lock_holder(layout.lock) is None:
        return []
    try:
        answer = ControlClient(layout.control_socket, timeout).request("health")
    except (NotRunning, OSError, ValueError) as error:
        return [Check(None, "the running ariabot's health not checked",
                      f"its control socket did not answer ({error})")]
    if not answer.get("ok") or not isinstance(answer.get("health"), dict):
        return [Check(None, "the running ariabot's health not checked",
                      f"it answered: {answer.get('error', 'nothing')}")]
    health = answer["health"]
    return [_notifications(health.get("notifications")), *_database(health.get("database"))]


def health_checks(health: dict[str, Any]) -> list[Check]:
    """Lines for a ``health`` answer of the control socket (``ariabot status``)."""
    lines = [_notifications(health.get("notifications"))]
    version = health.get("aria2c_version")
    if version:
        lines.append(Check(True, f"aria2c {version} is running"))
    return [*lines, *_database(health.get("database")),
            *_hybrid_notes(health.get("limitations") or [])]


def _database(database: Any) -> list[Check]:
    """The database's line (none from an ariabot too old to say); its name has no password."""
    if not isinstance(database, dict):
        return []
    if database.get("reachable"):
        return [Check(True, f"database {database.get('name')} answers")]
    return [Check(False, f"database {database.get('name')} is unreachable: "
                  f"{database.get('error')}",
                  "ariabot goes on downloading and stores what happened once the database is "
                  "back; check the server and ARIABOT_DATABASE_URL")]


def _notifications(listener: Any) -> Check:
    """The notification listener's line; a listener that failed says how often and why."""
    if not isinstance(listener, dict):
        return Check(None, "aria2 notifications: not listening yet", "ariabot is starting")
    deaths = int(listener.get("deaths") or 0)
    history = ""
    if deaths:
        times = "once" if deaths == 1 else f"{deaths} times"
        history = f" (the listener failed {times} and was restarted; last: " \
                  f"{listener.get('last_error')})"
    if not listener.get("running"):
        return Check(False, f"aria2 notifications: the listener is not running{history}",
                     "completions are seen by the progress poll only; restart ariabot and "
                     "report the error in its log")
    if listener.get("restarting"):
        return Check(False, f"aria2 notifications: restarting after a failure{history}",
                     "it comes back by itself; the error is in ariabot's log")
    if not listener.get("connected"):
        return Check(None, f"aria2 notifications: not connected to aria2c{history}",
                     "aria2c is probably restarting; the listener reconnects by itself")
    return Check(True, f"aria2 notifications: connected{history}")


def check_rclone(settings: Settings, timeout: float = 20.0) -> list[Check]:
    """With mirroring set up: rclone is found and runs, the config file defines the remote,
    and the destination answers (no line at all when mirroring is off)."""
    if not settings.mirroring:
        return []
    try:
        binary, version = locate_rclone(settings.rclone)
    except RcloneUnusable as error:
        return [Check(False, str(error).split(": install", 1)[0], INSTALL_HINT)]
    checks = [Check(True, f"rclone {version} at {binary}")]
    name = remote_name(settings.remote)
    if name is not None:
        try:
            known = remote_names(binary, settings.rclone_config)
        except RcloneUnusable as error:
            return [*checks, Check(False, str(error), "set ARIABOT_RCLONE_CONFIG to the file "
                                   "that defines the remote")]
        if name not in known:
            return [*checks, Check(False, f"no remote named {name!r} in the rclone config",
                                   "define it with 'rclone config', or fix "
                                   "ARIABOT_RCLONE_REMOTE")]
    problem = probe_remote(binary, settings.rclone_config, settings.remote, timeout,
                           settings.rclone_environment())
    if problem is not None:
        return [*checks, Check(False, f"the mirror destination {settings.remote} does not "
                               f"answer: {problem}", "check the remote with 'rclone lsf "
                               f"{settings.remote}'")]
    return [*checks, Check(True, f"the mirror destination {settings.remote} answers "
                           f"({settings.mode}, {'automatic' if settings.auto else 'on request'})")]


def check_links(settings: Settings, running: bool) -> list[Check]:
    """With links on (``ARIABOT_PUBLIC_URL``): the key file, and whether the listen address
    is free (taken by the ``running`` ariabot's own server is fine); no line at all when
    links are off."""
    if not settings.links:
        return []
    checks = []
    key = StateLayout(settings.data_dir).link_key
    try:
        read_link_key(key)  # changes nothing: a missing or short key is made at start
    except LinkKeyError as error:
        checks.append(Check(False, f"link key: {error}", "ariabot makes a new one at start"))
    host, port = split_listen(settings.http_listen)
    if not running:
        try:
            with socket.create_server((host, port)):
                pass
        except OSError as error:
            checks.append(Check(False, f"the link server cannot listen on {settings.http_listen}"
                                f": {error.strerror or error}",
                                "free that port or set ARIABOT_HTTP_LISTEN to another"))
            return checks
    where = "" if _is_loopback(host) else " (not loopback: reachable around the proxy)"
    checks.append(Check(True, f"links: {settings.public_url} → {settings.http_listen}{where}, "
                        f"valid {settings.link_days:g} days"))
    return checks


def check_miniapp(settings: Settings) -> Check:
    """Whether the Mini App is on (it needs links and a bot), and whether Telegram will open
    it: Telegram opens Mini Apps over HTTPS only, so a plain-HTTP public URL is said (links
    still work over HTTP; the bot's menu button is refused)."""
    if not settings.links:
        return Check(None, "Mini App off", "set ARIABOT_PUBLIC_URL (your HTTPS reverse proxy "
                     "in front of ARIABOT_HTTP_LISTEN) to open downloads in a page in Telegram")
    if settings.local_mode:
        return Check(None, "Mini App off", "it opens from the bot: set ARIABOT_TELEGRAM_TOKEN")
    if not settings.public_url.startswith("https://"):
        return Check(None, f"Mini App: {settings.miniapp_url} is plain HTTP, which Telegram "
                     "does not open", "serve ARIABOT_PUBLIC_URL over HTTPS (a reverse proxy with "
                     "a certificate); /web links still open it in a browser")
    return Check(True, f"Mini App: {settings.miniapp_url} (the bot's menu button and /web)")


def _is_loopback(host: str) -> bool:
    """True for a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_checks(settings: Settings, *, timeout: float = 5.0,
               disk_usage: DiskUsage = psutil.disk_usage,
               environ: Mapping[str, str] | None = None) -> list[Check]:
    """Every check, in the order a newcomer would fix them (``environ``: ``os.environ``)."""
    layout = StateLayout(settings.data_dir)
    if directory_problem(settings.data_dir) is None:
        running = lock_holder(layout.lock) is not None
        instance = [*check_links(settings, running=running), check_miniapp(settings),
                    *check_telegram(settings),
                    check_bot_api(settings, timeout), check_instance(layout),
                    *check_health(layout, timeout)]
    else:  # its ✘ line is above; the lock, the key and the socket live in it
        instance = [*check_telegram(settings), check_bot_api(settings, timeout),
                    Check(None, "links and running instances not checked",
                          "they need a usable data dir (ARIABOT_DATA_DIR)")]
    return [
        _config_ok(settings),
        *check_variables(os.environ if environ is None else environ),
        *check_aria2c(settings.aria2c),
        check_directory("data dir", settings.data_dir, "ARIABOT_DATA_DIR", MIN_FREE_DATA,
                        disk_usage),
        check_directory("download dir", settings.download_dir, "ARIABOT_DOWNLOAD_DIR",
                        MIN_FREE_DOWNLOADS, disk_usage),
        *check_dht(settings),
        *check_rclone(settings, max(timeout, 20.0)),
        *instance,
    ]


def report(checks: Sequence[Check], out: TextIO) -> int:
    """Print one line per check; 0 when none failed, 1 otherwise."""
    for check in checks:
        print(check.line, file=out)
    failed = sum(1 for check in checks if check.ok is False)
    print(f"{failed} problem{'s' if failed != 1 else ''} found" if failed
          else "all checks passed", file=out)
    return 1 if failed else 0
