"""Adding again, lost downloads and the CLI's edges, through the real ``ariabot run``: a
cancelled download added again in the other form (magnet after .torrent and back), one lost
download that cannot be re-added beside one that can, and output cut short by a pipe."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.control import ControlClient
from tests.integration.test_cli import cli, downloads
from tests.runner import AriabotRun, ariabot_run, wait_until
from tests.swarm import Swarm, file_digests

MiB = 1024 * 1024


@pytest.fixture
def run(tmp_path: Path):
    with ariabot_run(tmp_path / "data", {"ARIABOT_SEED_TIME": "0"}) as running:
        running.wait_ready()
        yield running


def _folder(run: AriabotRun) -> Path:
    return run.data_dir / "downloads" / "torrents" / "0"


@pytest.mark.parametrize("first", ["torrent", "magnet"])
def test_a_cancelled_download_added_again_in_the_other_form_downloads(
    run: AriabotRun, swarm: Swarm, tmp_path: Path, first: str
) -> None:
    torrent = swarm.add(f"readd-{first}.bin", 1 * MiB, seed=41 if first == "torrent" else 42)
    as_file = str(torrent.write_torrent(tmp_path / "files"))
    sources = [as_file, torrent.magnet] if first == "torrent" else [torrent.magnet, as_file]
    assert cli(run, "add", sources[0]).returncode == 0
    assert cli(run, "cancel", "1", "--delete-files").returncode == 0
    again = cli(run, "add", sources[1], "--wait")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"added #1: readd-{first}.bin\n")
    assert file_digests(_folder(run) / f"readd-{first}.bin") == torrent.digests
    [entry] = downloads(run)
    assert entry["state"] in ("seeding", "complete"), entry


def test_an_empty_source_and_one_already_listed_each_get_one_honest_line(
    run: AriabotRun, swarm: Swarm
) -> None:
    empty = cli(run, "add", "")
    assert (empty.returncode, empty.stdout) == (2, "")
    assert empty.stderr == (
        "ariabot: give a magnet link, the path of a .torrent file or its http(s) link\n")
    magnet = swarm.dead_magnet("listed-once")
    assert cli(run, "add", magnet).returncode == 0
    again = cli(run, "add", magnet)
    assert (again.returncode, again.stdout, again.stderr) == (
        0, "#1 is already in the list: listed-once\n", "")


def _cut_short(run: AriabotRun, *args: str) -> subprocess.CompletedProcess[str]:
    """``ariabot <args> | head -1``: a real pipe whose reader leaves after one line."""
    process = subprocess.Popen([sys.executable, "-m", "supervisor", *args], env=run.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # what head does after its line: the writer meets a closed pipe
    stderr = process.stderr.read()
    process.stderr.close()
    return subprocess.CompletedProcess(args, process.wait(timeout=60), first, stderr)


def test_list_and_log_cut_short_by_a_pipe_end_quietly(run: AriabotRun, swarm: Swarm) -> None:
    client = ControlClient(run.data_dir / "control.sock")
    # More than a pipe holds (64 KiB): the writer is still writing when the reader leaves.
    for number in range(300):
        client.request("add", magnet=swarm.dead_magnet(f"{number:03d}-{'x' * 240}"), chat=0)
    for args in (["list"], ["log", "--limit", "1000"]):
        result = _cut_short(run, *args)
        assert result.stdout.startswith("#") or "add #" in result.stdout, result.stdout
        assert (result.returncode, result.stderr) == (141, ""), result.stderr


def test_a_lost_download_that_cannot_be_re_added_does_not_stop_the_others(
    tmp_path: Path, swarm: Swarm
) -> None:
    data = tmp_path / "data"
    torrent = swarm.add("readd-lost.bin", 2 * MiB, seed=43)
    with ariabot_run(data, {"ARIABOT_SEED_TIME": "0"}) as run, swarm.throttled(64 * 1024):
        run.wait_ready()
        assert cli(run, "add", swarm.dead_magnet("damaged")).returncode == 0
        assert cli(run, "add", torrent.magnet).returncode == 0
        run.signal(signal.SIGTERM)
        assert run.wait_exit() == 0
    # aria2 forgets both (no session); #1's stored magnet is damaged beyond use.
    (data / "aria2.session").unlink(missing_ok=True)
    with sqlite3.connect(data / "ariabot.db") as db:
        db.execute('UPDATE downloads SET source = ? WHERE id = 1', (b"magnet:\xf1\xff",))
    db.close()
    with ariabot_run(data, {"ARIABOT_SEED_TIME": "0"}) as run:
        run.wait_ready()
        def by_id() -> dict[int, dict]:
            return {entry["id"]: entry for entry in downloads(run)}

        wait_until(lambda: by_id()[2]["state"] in ("seeding", "complete"), 60,
                   "#2 downloaded", describe=lambda: f"{downloads(run)}\n{run.output[-3000:]}")
        damaged = by_id()[1]
        assert damaged["state"] == "error" and damaged["error"], damaged
        assert file_digests(_folder(run) / "readd-lost.bin") == torrent.digests
        assert "Traceback" not in run.output, run.output[-3000:]
