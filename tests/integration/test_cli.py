"""The local CLI end to end: the real ``ariabot run`` and ``ariabot add/list/...`` commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from manager import Store
from supervisor.control import LIST_PAGE
from supervisor.layout import StateLayout
from tests.runner import AriabotRun, ariabot_run, wait_until
from tests.swarm import Swarm, file_digests

MiB = 1024 * 1024

JSON_KEYS = {"id", "info_hash", "name", "state", "progress", "completed_bytes", "total_bytes",
             "download_speed", "upload_speed", "seeders", "peers", "queue_position", "error",
             "stuck_reason", "path", "chat_id", "created_at", "completed_at", "mirror",
             "node", "elsewhere"}


def cli(run: AriabotRun, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", *args], env=run.env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def downloads(run: AriabotRun) -> list[dict]:
    result = cli(run, "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def run(tmp_path: Path):
    with ariabot_run(tmp_path / "data", {"ARIABOT_SEED_TIME": "0"}) as running:
        running.wait_ready()
        yield running


def _aria2_says(run: AriabotRun) -> str:
    """ariabot's log and aria2c's errors and warnings: what a failed download's test shows
    (a magnet here ended once in CI with aria2's error 1, "unknown", and nothing to read)."""
    aria2_log = run.data_dir / "aria2.log"
    lines = aria2_log.read_text(errors="replace").splitlines() if aria2_log.exists() else []
    said = [line for line in lines if "[ERROR]" in line or "[WARN]" in line]
    return "\n".join([run.output[-3000:], "aria2.log:", *said[-40:]])


def test_add_magnet_wait_completes_byte_for_byte(run: AriabotRun, swarm: Swarm) -> None:
    torrent = swarm.add("cli-album", [2 * MiB, 1 * MiB], seed=11)
    result = cli(run, "add", torrent.magnet, "--wait")
    assert result.returncode == 0, result.stderr + _aria2_says(run)
    assert "added #1" in result.stdout
    folder = run.data_dir / "downloads" / "torrents" / "0"
    assert file_digests(folder / "cli-album") == torrent.digests
    [entry] = downloads(run)
    assert set(entry) == JSON_KEYS
    assert entry["state"] in ("seeding", "complete")
    assert entry["completed_bytes"] == torrent.total_bytes
    assert entry["path"] == str(folder / "cli-album")


def test_wait_follows_an_existing_download_to_its_end_and_its_exit_says_how_it_ended(
    run: AriabotRun, swarm: Swarm
) -> None:
    torrent = swarm.add("cli-waited.bin", 2 * MiB, seed=15)
    assert cli(run, "add", torrent.magnet).returncode == 0
    waited = cli(run, "wait", "1")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.splitlines()[-1].startswith(("#1    seeding", "#1    complete"))
    assert file_digests(run.data_dir / "downloads" / "torrents" / "0" / "cli-waited.bin") == (
        torrent.digests)
    assert cli(run, "cancel", "1").returncode == 0
    cancelled = cli(run, "wait", "#1")
    assert cancelled.returncode == 1
    assert cancelled.stderr == "ariabot: #1 cancelled: no reason given\n"
    unknown = cli(run, "wait", "9")
    assert unknown.returncode == 1 and "#9" in unknown.stderr


def test_add_torrent_file_into_a_chat_and_status_json(
    run: AriabotRun, swarm: Swarm, tmp_path: Path
) -> None:
    torrent = swarm.add("cli-one.bin", 1 * MiB, seed=12)
    path = torrent.write_torrent(tmp_path / "files")
    result = cli(run, "add", str(path), "--chat", "77", "--json", "--wait")
    assert result.returncode == 0, result.stderr
    added = json.loads(result.stdout)
    assert added["chat_id"] == 77 and set(added) == JSON_KEYS
    status = json.loads(cli(run, "status", str(added["id"]), "--json").stdout)
    assert status["state"] in ("seeding", "complete")
    assert file_digests(run.data_dir / "downloads" / "torrents" / "77" / "cli-one.bin") == (
        torrent.digests)


def test_invalid_magnet_is_refused_and_nothing_is_stored(run: AriabotRun) -> None:
    result = cli(run, "add", "magnet:?xt=urn:btih:xyz")
    assert result.returncode == 1
    assert "info-hash" in result.stderr
    assert downloads(run) == []


def test_pause_resume_cancel_with_delete(run: AriabotRun, swarm: Swarm) -> None:
    torrent = swarm.add("cli-slow.bin", 6 * MiB, seed=13)
    with swarm.throttled(256 * 1024):
        assert cli(run, "add", torrent.magnet).returncode == 0
        wait_until(lambda: downloads(run)[0]["state"] == "downloading", 30, "downloading")
        paused = cli(run, "pause", "1")
        assert paused.returncode == 0 and "paused" in paused.stdout
        assert cli(run, "pause", "1").returncode == 1  # already paused: a clear refusal
        assert cli(run, "resume", "#1").returncode == 0
        cancelled = cli(run, "cancel", "1", "--delete-files")
        assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert not (run.data_dir / "downloads" / "torrents" / "0" / "cli-slow.bin").exists()
    assert cli(run, "status", "99").returncode == 1
    gone = cli(run, "files", "1")  # nothing to show says why, as 'list' says "no downloads"
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout == "#1 is cancelled: it has no files to list\n"


def test_restart_of_ariabot_mid_download_resumes_the_same_row(
    tmp_path: Path, swarm: Swarm
) -> None:
    torrent = swarm.add("cli-restart.bin", 12 * MiB, seed=14)
    data = tmp_path / "data"
    with swarm.throttled(1 * MiB):
        with ariabot_run(data, {"ARIABOT_SEED_TIME": "0"}) as first:
            first.wait_ready()
            assert cli(first, "add", torrent.magnet).returncode == 0
            wait_until(lambda: downloads(first)[0]["completed_bytes"] > 2 * MiB, 60,
                       "some progress")
            first.signal(signal.SIGTERM)
            assert first.wait_exit() == 0
        with ariabot_run(data, {"ARIABOT_SEED_TIME": "0"}) as second:
            second.wait_ready()
            [resumed] = downloads(second)
            assert resumed["completed_bytes"] > 0
    with ariabot_run(data, {"ARIABOT_SEED_TIME": "0"}) as third:
        third.wait_ready()
        wait_until(lambda: downloads(third)[0]["state"] == "complete", 120,
                   "completion", describe=lambda: f"{downloads(third)}\n{third.output[-3000:]}")
        assert len(downloads(third)) == 1
    assert file_digests(data / "downloads" / "torrents" / "0" / "cli-restart.bin") == (
        torrent.digests)


def test_commands_say_when_no_ariabot_is_running(tmp_path: Path) -> None:
    env = {**os.environ, "ARIABOT_DATA_DIR": str(tmp_path / "nothing")}
    result = subprocess.run([sys.executable, "-m", "supervisor", "list"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 3
    assert "not running" in result.stderr and "ariabot run" in result.stderr


def test_a_data_dir_too_deep_for_a_unix_socket_path_still_works(tmp_path: Path) -> None:
    # sun_path holds 108 bytes: a socket path longer than that cannot be bound or connected
    # by name, yet nothing else limits how deep a data dir may be.
    data_dir = tmp_path / ("d" * 60) / ("e" * 60) / "data"
    assert len(bytes(data_dir / "control.sock")) > 108
    data_dir.parent.mkdir(parents=True)
    with ariabot_run(data_dir, {"ARIABOT_SEED_TIME": "0"}) as running:
        running.wait_ready()
        result = cli(running, "list")
        assert result.returncode == 0, result.stderr
        assert "no downloads" in result.stdout.lower()
        assert running.process is not None and running.process.poll() is None


def test_commands_say_when_no_ariabot_is_running_in_a_deep_data_dir(tmp_path: Path) -> None:
    env = {**os.environ, "ARIABOT_DATA_DIR": str(tmp_path / ("n" * 120))}
    result = subprocess.run([sys.executable, "-m", "supervisor", "list"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 3, result.stderr
    assert "not running" in result.stderr and "Traceback" not in result.stderr


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "ARIABOT_DATA_DIR": str(tmp_path)}
    for args in (["pause", "abc"], ["pause", "0"], ["files", "1", "--select", "x"]):
        result = subprocess.run([sys.executable, "-m", "supervisor", *args], env=env,
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 2, args


BAD_DATA_DIR_COMMANDS = [["list"], ["status"], ["status", "1"], ["log"], ["pause", "1"],
                         ["files", "1"], ["purge", "--older-than", "0"], ["run"],
                         ["add", "magnet:?xt=urn:btih:" + "ab" * 20]]


@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_a_data_dir_that_is_no_directory_is_one_line_naming_the_setting(
    tmp_path: Path, where: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    data_dir = blocker if where == "a file" else blocker / "data"
    env = {**os.environ, "ARIABOT_DATA_DIR": str(data_dir),
           "ARIABOT_DOWNLOAD_DIR": str(tmp_path / "downloads")}
    for args in BAD_DATA_DIR_COMMANDS:
        result = subprocess.run([sys.executable, "-m", "supervisor", *args], env=env,
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 2, (args, result.stderr)
        [line] = result.stderr.splitlines()
        assert line.startswith(f"ariabot: configuration error: ARIABOT_DATA_DIR: {data_dir} "), (
            args, line)
        assert line.endswith("is not a directory" if where == "a file"
                             else f"cannot be created: {blocker} is not a directory"), line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]  # nothing created


def test_a_data_dir_this_user_cannot_read_is_one_line_naming_the_setting() -> None:
    """A data dir of another user (0700): root reads everything, so as root the commands run
    as nobody; as anyone else the dir is made unreadable to its own user. (In /tmp: pytest's
    own temporary folders are closed to other users.)"""
    base = Path(tempfile.mkdtemp(prefix="ariabot-unreadable-"))
    base.chmod(0o755)
    private = base / "private"
    private.mkdir(mode=0o700)
    env = {**os.environ, "ARIABOT_DATA_DIR": str(private), "HOME": str(base)}
    as_other = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    prefix = as_other if os.geteuid() == 0 else []
    if not prefix:
        private.chmod(0)
    try:
        for args in (["list"], ["add", "magnet:?xt=urn:btih:" + "ab" * 20], ["run"]):
            result = subprocess.run([*prefix, sys.executable, "-m", "supervisor", *args],
                                    env=env, capture_output=True, text=True, timeout=30,
                                    check=False)
            assert result.returncode == 2, (args, result.stderr)
            assert result.stderr == (f"ariabot: configuration error: ARIABOT_DATA_DIR: "
                                     f"{private} is not readable and writable by this user\n")
        doctor = subprocess.run([*prefix, sys.executable, "-m", "supervisor", "doctor"],
                                env=env, capture_output=True, text=True, timeout=60,
                                check=False)
        assert doctor.returncode == 1 and doctor.stderr == "", doctor.stderr
        assert f"✘ data dir {private} is not writable" in doctor.stdout
        assert f"✘ download dir {private / 'downloads'} cannot be reached" in doctor.stdout
        private.chmod(0o700)
        assert list(private.iterdir()) == []
    finally:
        private.chmod(0o700)
        shutil.rmtree(base)


def test_a_bad_download_dir_stops_run_before_anything_is_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {**os.environ, "ARIABOT_DATA_DIR": str(tmp_path / "data"),
           "ARIABOT_DOWNLOAD_DIR": str(blocker)}
    result = subprocess.run([sys.executable, "-m", "supervisor", "run"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert result.stderr == (f"ariabot: configuration error: ARIABOT_DOWNLOAD_DIR: {blocker} "
                             "is not a directory\n")
    assert not (tmp_path / "data").exists()


def test_home_of_an_unknown_user_stops_run_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "ARIABOT_DATA_DIR": "~nosuchuser"}
    result = subprocess.run([sys.executable, "-m", "supervisor", "run"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()  # one line, no traceback
    assert line.startswith("ariabot: configuration error: ARIABOT_DATA_DIR: cannot expand "
                           "~nosuchuser")


def test_misspelt_variable_is_named_in_the_start_log_without_its_value(tmp_path: Path) -> None:
    token = "123456:" + "W" * 35
    with ariabot_run(tmp_path / "data", {"ARIABOT_TELEGRAM_TOKN": token}) as running:
        running.wait_ready()
        output = running.output
    assert ("WARNING supervisor.envnames: ARIABOT_TELEGRAM_TOKN is not an ariabot setting and "
            "is ignored; did you mean ARIABOT_TELEGRAM_TOKEN?") in output
    assert "local mode" in output  # what the typo did: no token, no bot
    assert token not in output and "W" * 35 not in output


def test_local_command_warns_about_a_misspelt_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARIABOT_")}
    env.update(ARIABOT_DATA_DIR=str(tmp_path / "nothing"), ARIABOT_DATADIR=str(tmp_path / "a"))
    result = subprocess.run([sys.executable, "-m", "supervisor", "list"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 3
    assert ("ariabot: warning: ARIABOT_DATADIR is not an ariabot setting and is ignored; did "
            "you mean ARIABOT_DATA_DIR?") in result.stderr


@contextlib.contextmanager
def udp_tracker() -> Iterator[tuple[socket.socket, str]]:
    """A UDP socket on 127.0.0.1 posing as a udp:// tracker; it records what arrives."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        yield sock, f"udp://127.0.0.1:{sock.getsockname()[1]}/announce"


def received(sock: socket.socket) -> int:
    """How many datagrams are waiting on ``sock``."""
    count = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            sock.recv(2048)
            count += 1
    return count


def magnet(info_hash: str, *trackers: str) -> str:
    return f"magnet:?xt=urn:btih:{info_hash}" + "".join(
        f"&tr={urllib.parse.quote(url, safe='')}" for url in trackers)


def test_dht_off_and_only_udp_trackers_says_why_no_peer_is_found(
    run: AriabotRun, swarm: Swarm
) -> None:
    assert run.env["ARIABOT_ENABLE_DHT"] == "false"
    with udp_tracker() as (tracker, url):
        assert cli(run, "add", magnet("ab" * 20, url)).returncode == 0
        assert cli(run, "add", magnet("cd" * 20)).returncode == 0  # no tracker at all
        # An http tracker that knows no seeder: stuck too, but not for want of a tracker.
        assert cli(run, "add", swarm.dead_magnet("cli-dead")).returncode == 0

        def reasons() -> dict[str, str | None] | None:
            found = {d["info_hash"]: d["stuck_reason"] for d in downloads(run)}
            return found if found.get("ab" * 20) and found.get("cd" * 20) else None

        found = wait_until(reasons, 30, "the stuck reasons",
                           describe=lambda: f"{downloads(run)}\n{run.output[-2000:]}")
        udp_only, trackerless = found.pop("ab" * 20), found.pop("cd" * 20)
        assert udp_only is not None and trackerless is not None
        assert "udp:// trackers" in udp_only and "DHT is off" in udp_only
        assert "enable DHT" in udp_only and "http" in udp_only
        assert "no tracker" in trackerless and "DHT is off" in trackerless
        assert list(found.values()) == [None]
        # What the reason says is true: aria2 never sent the udp:// tracker a packet.
        assert received(tracker) == 0
    [row] = [d for d in downloads(run) if d["info_hash"] == "ab" * 20]
    assert row["state"] == "metadata" and row["progress"] == 0


def test_add_wait_says_why_it_does_not_move_and_timeout_ends_the_wait(run: AriabotRun) -> None:
    with udp_tracker() as (_tracker, url):
        result = cli(run, "add", magnet("ab" * 20, url), "--wait", "--timeout", "6")
    assert result.returncode == 4, result.stderr  # EXIT_TIMEOUT: distinct from 0, 1, 2, 3
    lines = result.stdout.splitlines()
    assert lines[0].startswith("added #1")
    # The stuck reason is shown while it waits, once: a line per change, not per poll.
    shown = [text for text in lines if "aria2 ignores udp:// trackers" in text]
    assert len(shown) == 1 and shown[0].startswith("#1") and "metadata" in shown[0]
    assert len(lines) <= 3, lines
    [last] = result.stderr.splitlines()
    assert last.startswith("ariabot: stopped waiting after 6 s; #1 is still metadata")
    assert "'ariabot status 1'" in last
    # The download goes on: giving up waiting cancels nothing.
    [row] = downloads(run)
    assert row["state"] == "metadata" and row["stuck_reason"]


def test_timeout_without_wait_is_a_usage_error(run: AriabotRun) -> None:
    result = cli(run, "add", magnet("ab" * 20), "--timeout", "5")
    assert result.returncode == 2 and "--timeout" in result.stderr
    assert downloads(run) == []


def test_log_shows_the_activity_newest_first_per_chat_and_limited(run: AriabotRun) -> None:
    first, second = "1" * 40, "2" * 40
    assert cli(run, "add", magnet(first), "--chat", "77").returncode == 0
    assert cli(run, "add", magnet(second), "--chat", "88").returncode == 0
    assert cli(run, "pause", "2").returncode == 0

    every = cli(run, "log")
    assert every.returncode == 0, every.stderr
    lines = every.stdout.splitlines()
    assert len(lines) == 3
    assert "chat 88  local  pause #2" in lines[0]  # newest first
    assert "chat 88  local  add #2" in lines[1] and second in lines[1]
    assert "chat 77  local  add #1" in lines[2] and first in lines[2]

    only_77 = cli(run, "log", "--chat", "77", "--json")
    assert only_77.returncode == 0, only_77.stderr
    [entry] = json.loads(only_77.stdout)
    assert set(entry) == {"at", "chat_id", "user_id", "action", "download_id", "detail"}
    assert (entry["chat_id"], entry["user_id"], entry["action"], entry["download_id"]) == (
        77, 0, "add", 1)
    assert entry["at"].endswith("Z") and first in entry["detail"]

    latest = cli(run, "log", "--limit", "1")
    assert latest.returncode == 0 and latest.stdout.splitlines() == lines[:1]
    assert cli(run, "log", "--chat", "5").stdout.strip() == "no activity"
    for bad in ("0", "x", "10001"):
        assert cli(run, "log", "--limit", bad).returncode == 2, bad


def test_list_shows_every_download_a_page_at_a_time(tmp_path: Path) -> None:
    # More downloads than one answer of the control socket holds (LIST_PAGE): `ariabot
    # list` asks page after page and prints them all, newest first, as one listing.
    data = tmp_path / "data"
    StateLayout(data).create()

    async def fill() -> list[int]:
        store = Store(f"sqlite:///{StateLayout(data).database}")
        await store.open()
        try:
            return [(await store.downloads.create(
                info_hash=f"{n:040x}", chat_id=7 if n % 50 == 0 else 0, user_id=0,
                name=f"stored-{n:03d}", source_kind="magnet", source=b"magnet:?",
                directory=str(data / "downloads"), state="complete")).id
                for n in range(2 * LIST_PAGE + 30)]
        finally:
            await store.close()

    ids = asyncio.run(fill())
    with ariabot_run(data, {"ARIABOT_SEED_TIME": "0"}) as running:
        running.wait_ready()
        plain = cli(running, "list")
        assert plain.returncode == 0, plain.stderr
        lines = plain.stdout.splitlines()
        assert [int(line.split()[0].lstrip("#")) for line in lines] == ids[::-1]
        listed = downloads(running)
        assert [entry["id"] for entry in listed] == ids[::-1]
        assert set(listed[0]) == JSON_KEYS
        chat = json.loads(cli(running, "list", "--chat", "7", "--json").stdout)
        assert [entry["name"] for entry in chat] == [f"stored-{n:03d}"
                                                     for n in range(200, -1, -50)]
        assert cli(running, "list", "--chat", "8", "--json").stdout == "[]\n"
        assert cli(running, "list", "--chat", "8").stdout == "no downloads\n"
