"""``ariabot`` command line: ``ariabot run`` and the local control commands.

``run`` starts everything; ``add``, ``list``, ``status``, ``wait``, ``pause``, ``resume``,
``cancel``, ``files``, ``purge`` and ``log`` talk to that running instance through its control
socket (see :mod:`supervisor.control`) and say so clearly when none is running. ``doctor``
checks the installation (see :mod:`supervisor.doctor`); ``db copy`` copies the store into
another database while ariabot is stopped (see :mod:`supervisor.dbcommand`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from manager import ManagerError, human_size, is_http_url, node_text
from supervisor import __version__, doctor
from supervisor.aria2c import Aria2cUnusable, locate_aria2c
from supervisor.config import ConfigError, Settings, load_settings
from supervisor.control import (
    LOG_LIMIT_DEFAULT,
    LOG_LIMIT_MAX,
    ControlClient,
    NotRunning,
    Refused,
    list_torrents,
    node_from_json,
)
from supervisor.dbcommand import add_db_parser, db_command
from supervisor.envnames import unknown_variables, warn_unknown_variables
from supervisor.exits import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_NOT_RUNNING,
    EXIT_TIMEOUT,
    EXIT_USAGE,
)
from supervisor.instance import AlreadyRunning
from supervisor.layout import StateLayout
from supervisor.logs import LOG_FORMATS, setup_logging
from supervisor.rclone import RcloneUnusable, mirror_uploader
from supervisor.root import serve
from supervisor.rsscommand import add_rss_parser, rss_command
from supervisor.statedirs import state_dirs_problem

__all__ = ["build_parser", "main"]

_WAIT_POLL = 0.5
"""Seconds between two status requests while ``add --wait`` waits."""

_FINAL_STATES = frozenset({"complete", "seeding", "error", "cancelled"})


def _download_id(text: str) -> int:
    try:
        value = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a download id: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a download id: {text!r}")
    return value


def _chat_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a chat id: {text!r}") from None


def _amount(kind: type[int] | type[float], unit: str, fits: Callable[[Any], bool],
            bounds: str) -> Callable[[str], Any]:
    """An argument type for a number of ``unit`` that ``fits``; ``bounds`` says which fit."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
        if not fits(value):
            raise argparse.ArgumentTypeError(f"{unit} must be {bounds}, not {text!r}")
        return value

    return parse


_days = _amount(float, "days", lambda v: 0 <= v <= 36500, "from 0 to 36500")  # refuses nan, inf
_seconds = _amount(float, "seconds", lambda v: math.isfinite(v) and 0 < v <= 10**7, "above 0")
_limit = _amount(int, "entries", lambda v: 1 <= v <= LOG_LIMIT_MAX, f"from 1 to {LOG_LIMIT_MAX}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests can check ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="ariabot",
        description="A self-hosted Telegram torrent bot that runs its own aria2c.",
        epilog="Settings come from conf/ariabot.toml's keys, a --config file, and ARIABOT_* "
        "environment variables (which win). Without a Telegram token ariabot runs in "
        "local mode.",
    )
    parser.add_argument("--version", action="version", version=f"ariabot {__version__}")
    parser.add_argument(
        "--config", type=Path, metavar="PATH",
        help="settings file (TOML, laid out like conf/ariabot.toml); default: $ARIABOT_CONFIG",
    )
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default="text",
        help="log lines on stderr: text (default) or json (one JSON object per line)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run", help="start aria2c (and the bot when a token is set) and keep them running"
    )
    add = commands.add_parser(
        "add", help="add a magnet link, a .torrent file, or the http(s) link of a .torrent")
    add.add_argument("source", help="a magnet link, the path of a .torrent file, or its "
                     "http(s) link (fetched by the running ariabot)")
    add.add_argument("--chat", type=_chat_id, default=0,
                     help="the chat it belongs to (default 0: local)")
    add.add_argument("--wait", action="store_true",
                     help="show progress, state changes and why it is stuck until it is "
                     "done; exit 0 when complete, 1 when it failed")
    add.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                     help="with --wait: stop waiting after SECONDS and exit 4; the download "
                     "goes on")
    add.add_argument("--json", action="store_true", help="print the download as JSON")
    listing = commands.add_parser("list", help="list downloads")
    listing.add_argument("--chat", type=_chat_id, help="only this chat's downloads")
    listing.add_argument("--json", action="store_true", help="print JSON")
    status = commands.add_parser(
        "status", help="show one download, or without an id how ariabot itself is doing")
    status.add_argument("id", type=_download_id, nargs="?")
    status.add_argument("--json", action="store_true", help="print JSON")
    for verb, text in (("pause", "pause a download"), ("resume", "resume a paused download")):
        command = commands.add_parser(verb, help=text)
        command.add_argument("id", type=_download_id)
    cancel = commands.add_parser("cancel", help="stop a download for good")
    cancel.add_argument("id", type=_download_id)
    cancel.add_argument("--delete-files", action="store_true",
                        help="also delete what it downloaded")
    wait = commands.add_parser(
        "wait", help="wait until a download is done, showing its progress as 'add --wait' "
        "does; exit 0 when complete, 1 when it failed or was cancelled")
    wait.add_argument("id", type=_download_id)
    wait.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                      help="stop waiting after SECONDS and exit 4; the download goes on")
    mirror = commands.add_parser(
        "mirror", help="upload a finished download to the rclone destination "
        "(ARIABOT_RCLONE_REMOTE)")
    mirror.add_argument("id", type=_download_id)
    mirror.add_argument("--stop", action="store_true", help="stop its upload instead")
    link = commands.add_parser(
        "link", help="print a signed web link to a finished download's page "
        "(ARIABOT_PUBLIC_URL)")
    link.add_argument("id", type=_download_id)
    link.add_argument("--json", action="store_true", help="print JSON")
    files = commands.add_parser("files", help="list a download's files, or choose some")
    files.add_argument("id", type=_download_id)
    files.add_argument("--select", metavar="N,N-M",
                       help="download only these file numbers, e.g. 1,3-5")
    purge = commands.add_parser(
        "purge", help="remove finished downloads (complete, error, cancelled) from the list")
    purge.add_argument("--older-than", type=_days, required=True, metavar="DAYS",
                       help="only those that finished more than DAYS days ago (0: all)")
    purge.add_argument("--delete-files", action="store_true",
                       help="also delete their files (kept by default)")
    activity = commands.add_parser(
        "log", help="show the activity log (who added, paused, cancelled... what), newest first")
    activity.add_argument("--chat", type=_chat_id, help="only this chat's entries (0: local)")
    activity.add_argument("--limit", type=_limit, default=LOG_LIMIT_DEFAULT, metavar="N",
                          help=f"show the latest N entries (default {LOG_LIMIT_DEFAULT})")
    activity.add_argument("--json", action="store_true", help="print JSON")
    nodes = commands.add_parser(
        "nodes", help="list the nodes sharing this database: state, slots, free disk")
    nodes.add_argument("--json", action="store_true", help="print JSON")
    commands.add_parser(
        "doctor", help="check aria2c, directories, settings, the Bot API and running instances")
    add_rss_parser(commands)
    add_db_parser(commands)
    return parser


def _file_numbers(text: str) -> list[int]:
    numbers: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise argparse.ArgumentTypeError(f"not file numbers: {text!r} (use 1,3-5)")
        start, end = int(low), int(high or low)
        if end < start or end - start > 100_000:
            raise argparse.ArgumentTypeError(f"not a file range: {part!r}")
        numbers.extend(range(start, end + 1))
    return numbers


def _activity_line(entry: dict[str, Any]) -> str:
    target = f" #{entry['download_id']}" if entry["download_id"] is not None else ""
    who = f"user {entry['user_id']}" if entry["user_id"] else "local"
    text = f"{entry['at']}  chat {entry['chat_id']}  {who}  {entry['action']}{target}"
    return f"{text}  {entry['detail']}" if entry["detail"] else text


def _line(torrent: dict[str, Any]) -> str:
    state = torrent["state"]
    if torrent["queue_position"]:
        state += f" #{torrent['queue_position']}"
    text = (f"#{torrent['id']:<4} {state:<12} {torrent['progress'] * 100:5.1f}%  "
            f"{human_size(torrent['completed_bytes'])}/{human_size(torrent['total_bytes'])}  "
            f"↓{human_size(torrent['download_speed'])}/s  {torrent['name']}")
    reason = torrent["error"] or torrent["stuck_reason"]
    text = f"{text}  ({reason})" if reason else text
    if torrent.get("elsewhere"):
        text += f"\n      {torrent['elsewhere']}"
    mirror = torrent.get("mirror")
    if mirror:
        text += f"\n      mirror: {mirror['state']} → {mirror['destination']}"
        if mirror["error"]:
            text += f" ({mirror['error']})"
    return text


class _Refused(Exception):
    """The running ariabot answered with an error."""


def _ask(client: ControlClient, operation: str, **fields: Any) -> dict[str, Any]:
    answer = client.request(operation, **fields)
    if not answer.get("ok"):
        raise _Refused(answer.get("error", "refused"))
    return answer


def _milestone(torrent: dict[str, Any]) -> tuple[Any, ...]:
    """What earns a line of its own: a new state, queue place, stuck reason or error, or
    another tenth of the download done (speeds and bytes alone do not)."""
    return (torrent["state"], torrent["queue_position"], torrent["stuck_reason"],
            torrent["error"], int(torrent["progress"] * 10))


def _wait(client: ControlClient, download_id: int, out: TextIO, timeout: float | None = None,
          *, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Show progress until the download is done, or until ``timeout`` seconds have passed.

    On a terminal the line is rewritten in place and each milestone (see :func:`_milestone`)
    stays on screen as a line of its own; into a pipe or a log, only milestones are printed,
    so a stuck download says why once instead of either nothing or a line per poll.

    Returns:
        0 complete (or seeding), :data:`EXIT_ERROR` failed or cancelled,
        :data:`EXIT_TIMEOUT` stopped waiting (the download is left running).
    """
    tty = out.isatty()
    deadline = None if timeout is None else clock() + timeout
    shown, milestone = "", None
    while True:
        torrent = _ask(client, "status", id=download_id)["torrent"]
        line, reached = _line(torrent), _milestone(torrent)
        if tty and line != shown:
            start = "\n" if shown and reached != milestone else "\r\x1b[2K"
            print(f"{start}{line}", end="", file=out, flush=True)
        elif not tty and reached != milestone:
            print(line, file=out, flush=True)
        shown, milestone = line, reached
        state = torrent["state"]
        if state in _FINAL_STATES:
            if tty:
                print(file=out)
            if state in ("complete", "seeding"):
                return 0
            print(f"ariabot: #{download_id} {state}: "
                  f"{torrent['error'] or 'no reason given'}", file=sys.stderr)
            return EXIT_ERROR
        if deadline is not None and clock() >= deadline:
            if tty:
                print(file=out)
            reason = torrent["stuck_reason"]
            print(f"ariabot: stopped waiting after {timeout:g} s; #{download_id} is still "
                  f"{state}{f' ({reason})' if reason else ''}; it goes on in the background "
                  f"('ariabot status {download_id}' shows it)", file=sys.stderr)
            return EXIT_TIMEOUT
        pause = _WAIT_POLL if deadline is None else min(_WAIT_POLL, deadline - clock())
        sleep(max(pause, 0.0))


def _print_rows(rows: Iterable[dict[str, Any]], line: Callable[[dict[str, Any]], str],
                empty: str, out: TextIO, *, as_json: bool) -> int:
    """Print a listing as its rows come (``ariabot list`` gets them a page at a time): as
    JSON (the same text as ``json.dumps(rows, indent=2)``), one ``line`` per row, or
    ``empty`` when there is none."""
    count = 0
    for count, row in enumerate(rows, 1):
        if as_json:
            item = textwrap.indent(json.dumps(row, indent=2), "  ")
            print(f"[\n{item}" if count == 1 else f",\n{item}", end="", file=out)
        else:
            print(line(row), file=out)
    if as_json:
        print("\n]" if count else "[]", file=out)
    elif not count:
        print(empty, file=out)
    return 0


def _print_files(client: ControlClient, args: argparse.Namespace, out: TextIO) -> int:
    """``ariabot files``: one numbered line per file, or why there is none."""
    fields = {"select": _file_numbers(args.select)} if args.select else {}
    listed = _ask(client, "files", id=args.id, **fields)["files"]
    if not listed:
        print(_no_files(_ask(client, "status", id=args.id)["torrent"]), file=out)
        return 0
    # Numbered as --select takes them: places in the list (pad files are not in it).
    for number, entry in enumerate(listed, 1):
        mark = "x" if entry["selected"] else " "
        print(f"[{mark}] {number:>4}  {human_size(entry['length']):>10}  {entry['path']}",
              file=out)
    return 0


def _no_files(torrent: dict[str, Any]) -> str:
    """Why ``ariabot files`` lists nothing: a finished download's files are gone, or a
    magnet's list comes only with its metadata."""
    if torrent["state"] in _FINAL_STATES:
        return f"#{torrent['id']} is {torrent['state']}: it has no files to list"
    return (f"#{torrent['id']}: the file list is not known yet (it comes with the torrent's "
            "metadata)")


def _print_link(answer: dict[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    """``ariabot link``: the URL alone on stdout (for scripts), how long it works on stderr."""
    if args.json:
        print(json.dumps({"url": answer["url"], "expires_at": answer["expires_at"]},
                         indent=2), file=out)
    else:
        print(answer["url"], file=out)
        print(f"works until {answer['expires_at']} (UTC), or until #{args.id} is cancelled, "
              "purged or its files deleted", file=sys.stderr)
    return 0


def _add(client: ControlClient, args: argparse.Namespace, out: TextIO) -> int:
    """``ariabot add``: one line saying what was added (or was already there), then the
    wait when asked."""
    source = args.source
    if not source.strip():
        print("ariabot: give a magnet link, the path of a .torrent file or its http(s) link",
              file=sys.stderr)
        return EXIT_USAGE
    if source.startswith("magnet:"):
        answer = _ask(client, "add", magnet=source, chat=args.chat)
    elif is_http_url(source):
        answer = _ask(client, "add", url=source.strip(), chat=args.chat)
    elif re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", source.strip()):
        print("ariabot: only http:// and https:// links to a .torrent file are fetched",
              file=sys.stderr)
        return EXIT_USAGE
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as error:
            print(f"ariabot: cannot read {source}: {error.strerror}", file=sys.stderr)
            return EXIT_USAGE
        answer = _ask(client, "add", torrent_b64=base64.b64encode(data).decode(),
                      chat=args.chat)
    torrent = answer["torrent"]
    if args.json:
        print(json.dumps(torrent, indent=2), file=out)
    elif answer.get("existing"):
        # Nothing was added: say so, once (exit 0: it is in the list, as asked).
        print(f"#{torrent['id']} is already in the list: {torrent['name']}", file=out)
    else:
        print(f"added #{torrent['id']}: {torrent['name']}", file=out)
    if answer.get("note") and not answer.get("existing"):
        print(f"note: {answer['note']}", file=sys.stderr)
    if not args.wait:
        return 0
    return _wait(client, torrent["id"], sys.stderr if args.json else out, args.timeout)


def _control(args: argparse.Namespace, settings: Settings) -> int:
    client = ControlClient(StateLayout(settings.data_dir).control_socket)
    out = sys.stdout
    if args.command == "add":
        return _add(client, args, out)
    if args.command == "list":
        torrents = list_torrents(client, args.chat)
        return _print_rows(torrents, _line, "no downloads", out, as_json=args.json)
    if args.command == "log":
        fields = {"chat": args.chat} if args.chat is not None else {}
        entries = _ask(client, "log", limit=args.limit, **fields)["entries"]
        return _print_rows(entries, _activity_line, "no activity", out, as_json=args.json)
    if args.command == "rss":
        return rss_command(client, args, sys.stdin, out, sys.stderr)
    if args.command == "nodes":
        found = _ask(client, "nodes")["nodes"]
        return _print_rows(found, lambda fields: node_text(node_from_json(fields)),
                           "no nodes", out, as_json=args.json)
    if args.command == "status" and args.id is None:
        health = _ask(client, "health")["health"]
        if args.json:
            print(json.dumps(health, indent=2), file=out)
        else:
            for check in doctor.health_checks(health):
                print(check.line, file=out)
        return 0
    if args.command == "status":
        torrent = _ask(client, "status", id=args.id)["torrent"]
        print(json.dumps(torrent, indent=2) if args.json else _line(torrent), file=out)
        return 0
    if args.command == "files":
        return _print_files(client, args, out)
    if args.command == "purge":
        answer = _ask(client, "purge", older_than_days=args.older_than,
                      delete_files=args.delete_files)
        files = " and their files" if args.delete_files else " (files kept)"
        print(f"removed {answer['purged']} finished download(s) from the list{files}",
              file=out)
        return 0
    if args.command == "mirror":
        torrent = _ask(client, "mirror", id=args.id, stop=args.stop)["torrent"]
        print(_line(torrent), file=out)
        return 0
    if args.command == "wait":
        return _wait(client, args.id, out, args.timeout)
    if args.command == "link":
        return _print_link(_ask(client, "link", id=args.id), args, out)
    fields = {"delete_files": args.delete_files} if args.command == "cancel" else {}
    answer = _ask(client, args.command, id=args.id, **fields)
    print("\n".join([_line(answer["torrent"]), *_cancelled_lines(answer)]), file=out)
    return 0


def _cancelled_lines(answer: dict[str, Any]) -> list[str]:
    """What a cancel really did to the files and the upload (its files may be kept,
    though asked to go: another download in the list owns their name); nothing for the
    other commands, whose answers have none of these keys."""
    lines = []
    if answer.get("kept_for") is not None:
        lines.append(f"its files were kept: #{answer['kept_for']} uses the same name")
    elif answer.get("files_deleted"):
        lines.append("its files are deleted")
    if answer.get("upload_stopped"):
        lines.append("its upload to the mirror is stopped")
    return lines


def _doctor(config: Path | None) -> int:
    """``ariabot doctor``: a bad configuration is a ✘ line (exit 1), not exit code 2."""
    try:
        settings = load_settings(config)
    except ConfigError as error:
        source = config or (Path(os.environ["ARIABOT_CONFIG"])
                            if os.environ.get("ARIABOT_CONFIG") else None)
        return doctor.report([
            doctor.config_failure(error, source),
            *doctor.check_variables(os.environ),
            doctor.Check(None, "other checks skipped", "they need a valid configuration"),
        ], sys.stdout)
    return doctor.report(doctor.run_checks(settings), sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ariabot`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "add" and args.timeout is not None and not args.wait:
        parser.error("--timeout works only with --wait")
    if args.command == "doctor":
        return _doctor(args.config)
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(f"ariabot: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    problem = state_dirs_problem(settings, downloads=args.command == "run")
    if problem is not None:
        print(f"ariabot: configuration error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.command != "run":
        for variable in unknown_variables(os.environ):
            print(f"ariabot: warning: {variable.problem}; {variable.fix}", file=sys.stderr)
        if args.command == "db":
            return db_command(args, settings, sys.stdin, sys.stdout, sys.stderr)
        try:
            return _control(args, settings)
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
        except NotRunning as error:
            print(f"ariabot: {error}", file=sys.stderr)
            return EXIT_NOT_RUNNING
        except (_Refused, Refused) as error:
            print(f"ariabot: {error}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # The reader left (``| head -1``): end quietly, as git and coreutils do. What is
            # still buffered goes nowhere, or Python's own flush at exit would fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
    secrets = [settings.token.reveal(), *(value.reveal() for value in settings.remote_secrets)]
    formatter = setup_logging(settings.level, secrets, args.log_format)
    warn_unknown_variables(os.environ)
    try:
        aria2c, version = locate_aria2c(settings.aria2c)
        uploader = mirror_uploader(settings)
        return asyncio.run(serve(settings, aria2c, formatter, version, uploader=uploader))
    except (Aria2cUnusable, RcloneUnusable, AlreadyRunning, ManagerError, OSError) as error:
        print(f"ariabot: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
