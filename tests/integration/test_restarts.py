"""Finished downloads survive every kind of restart: the real ``ariabot run``, a real swarm.

aria2 does not keep a finished (seeding) download in its session (``force-save=false``), and
its control file is gone once the data is complete, so after a restart ariabot must hand it
back with a hash check of the data on disk, never download it again, never refuse it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import pytest

from tests.integration.test_cli import cli, downloads
from tests.runner import AriabotRun, ariabot_run, wait_until
from tests.swarm import Swarm, SwarmTorrent, file_digests

MiB = 1024 * 1024
SEEDING = {"ARIABOT_SEED_TIME": "60", "ARIABOT_SEED_RATIO": "0"}


def _folder(data: Path, chat: str = "0") -> Path:
    return data / "downloads" / "torrents" / chat


def _mtimes(path: Path) -> dict[str, int]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): p.stat().st_mtime_ns for p in files}


def _only(run: AriabotRun) -> dict:
    [entry] = downloads(run)
    return entry


def _until_state(run: AriabotRun, *states: str, timeout: float = 60) -> dict:
    return wait_until(lambda: (e := _only(run))["state"] in states and e, timeout,
                      f"state in {states}", describe=lambda: f"{downloads(run)}\n"
                      f"{run.output[-3000:]}")


def _restart(first: AriabotRun, how: str) -> None:
    """End ``first`` the way ``how`` says; a killed aria2c is restarted by ``first`` itself."""
    if how == "sigterm":
        first.signal(signal.SIGTERM)
        assert first.wait_exit() == 0
    elif how == "kill-ariabot":
        first.signal(signal.SIGKILL)
        first.wait_exit()
    else:  # kill-aria2c: ariabot stays up and restarts it
        old = first.runtime()["aria2c_pid"]
        psutil.Process(old).kill()
        first.wait_running(30, not_pid=old)


def _check_untouched(data: Path, torrent: SwarmTorrent, before: dict[str, int]) -> None:
    top = _folder(data) / torrent.name
    assert file_digests(top) == torrent.digests
    assert _mtimes(top) == before, "the finished files were written again"


@pytest.mark.parametrize(("how", "database_url"), [
    ("sigterm", "sqlite"), ("kill-ariabot", "sqlite"), ("kill-aria2c", "sqlite"),
    # ariabot run on PostgreSQL too, where ariabot itself restarts (a killed aria2c leaves
    # the store's connection alone).
    pytest.param("sigterm", "postgresql", marks=pytest.mark.postgresql),
    pytest.param("kill-ariabot", "postgresql", marks=pytest.mark.postgresql),
], indirect=["database_url"])
@pytest.mark.usefixtures("database_url")
def test_a_seeding_download_is_still_seeding_after_a_restart(
    tmp_path: Path, swarm: Swarm, how: str, run_database: dict[str, str],
) -> None:
    torrent = swarm.add(f"restart-seed-{how}", [2 * MiB, 1 * MiB], seed=31)
    data = tmp_path / "data"
    with ariabot_run(data, {**SEEDING, **run_database}) as first:
        first.wait_ready()
        assert cli(first, "add", torrent.magnet).returncode == 0
        seeding = _until_state(first, "seeding")
        assert seeding["download_speed"] == 0, "a seeding download shows a download speed"
        uploaded = swarm.seeder.uploaded(torrent.info_hash)
        before = _mtimes(_folder(data) / torrent.name)
        _restart(first, how)
        if how == "kill-aria2c":
            second = first
        else:
            second = AriabotRun(data, {**first.env, **SEEDING}).start()
        try:
            second.wait_ready()
            wait_until(lambda: (e := _only(second))["state"] == "seeding"
                       and e["completed_bytes"] == torrent.total_bytes, 60,
                       "seeding again with every byte",
                       describe=lambda: f"{downloads(second)}\n{second.output[-3000:]}")
            # Give a wrong verdict a chance to show: aria2 reports errors after the check.
            resumed = cli(second, "status", "1", "--json")
            assert '"error": null' in resumed.stdout, resumed.stdout
            assert swarm.seeder.uploaded(torrent.info_hash) == uploaded, "downloaded again"
            _check_untouched(data, torrent, before)
        finally:
            if second is not first:
                second.stop()


@pytest.mark.usefixtures("database_url")
def test_a_paused_finished_download_keeps_its_progress_and_resumes_seeding(
    tmp_path: Path, swarm: Swarm, run_database: dict[str, str],
) -> None:
    torrent = swarm.add("restart-paused", 3 * MiB, seed=32)
    data = tmp_path / "data"
    with ariabot_run(data, {**SEEDING, **run_database}) as first:
        first.wait_ready()
        assert cli(first, "add", torrent.magnet).returncode == 0
        _until_state(first, "seeding")
        assert cli(first, "pause", "1").returncode == 0
        _until_state(first, "paused")
        before = _mtimes(_folder(data) / torrent.name)
        first.signal(signal.SIGTERM)
        assert first.wait_exit() == 0
    with ariabot_run(data, {**SEEDING, **run_database}) as second:
        second.wait_ready()
        wait_until(lambda: cli(second, "list").returncode == 0, 10, "list")
        paused = _until_state(second, "paused")
        # The row shows its real progress, not "0.0% 0 B".
        wait_until(lambda: _only(second)["completed_bytes"] == torrent.total_bytes, 5,
                   "the stored progress", describe=lambda: str(downloads(second)))
        assert paused["total_bytes"] == torrent.total_bytes
        shown = cli(second, "status", "1")
        assert "100" in shown.stdout, shown.stdout
        uploaded = swarm.seeder.uploaded(torrent.info_hash)
        assert cli(second, "resume", "1").returncode == 0
        seeding = _until_state(second, "seeding")
        assert seeding["error"] is None and seeding["completed_bytes"] == torrent.total_bytes
        assert swarm.seeder.uploaded(torrent.info_hash) == uploaded
        _check_untouched(data, torrent, before)


@pytest.mark.usefixtures("database_url")  # the purge's queries, on both engines
def test_the_same_torrent_after_a_purge_kept_its_files_is_refused_and_writes_nothing(
    tmp_path: Path, swarm: Swarm, run_database: dict[str, str],
) -> None:
    """After ``purge`` (files kept, row gone) no download claims those files: adding the
    torrent again is refused at its metadata rather than hash-checked over them."""
    torrent = swarm.add("restart-readd", [1 * MiB, 2 * MiB], seed=33)
    data = tmp_path / "data"
    with ariabot_run(data, {"ARIABOT_SEED_TIME": "0", **run_database}) as run:
        run.wait_ready()
        assert cli(run, "add", torrent.magnet, "--wait").returncode == 0
        _until_state(run, "complete")
        assert cli(run, "purge", "--older-than", "0").returncode == 0
        assert downloads(run) == []
        uploaded = swarm.seeder.uploaded(torrent.info_hash)
        before = _mtimes(_folder(data) / torrent.name)
        assert cli(run, "add", torrent.magnet).returncode == 0
        done = _until_state(run, "complete", "error")
        assert done["state"] == "error", done
        assert (f"files named '{torrent.name}' are already in this chat's folder and no "
                "download here owns them") in done["error"]
        assert swarm.seeder.uploaded(torrent.info_hash) == uploaded
        _check_untouched(data, torrent, before)


def test_cancel_then_add_again_of_a_seeding_download_reuses_its_files(
    tmp_path: Path, swarm: Swarm
) -> None:
    torrent = swarm.add("restart-cancel-readd.bin", 2 * MiB, seed=34)
    data = tmp_path / "data"
    with ariabot_run(data, SEEDING) as run:
        run.wait_ready()
        assert cli(run, "add", torrent.magnet).returncode == 0
        _until_state(run, "seeding")
        assert cli(run, "cancel", "1").returncode == 0
        before = _mtimes(_folder(data) / torrent.name)
        uploaded = swarm.seeder.uploaded(torrent.info_hash)
        assert cli(run, "add", torrent.magnet).returncode == 0
        again = _until_state(run, "seeding", "error")
        assert again["state"] == "seeding", again
        assert swarm.seeder.uploaded(torrent.info_hash) == uploaded
        _check_untouched(data, torrent, before)
        # No renamed second copy (aria2's auto-file-renaming) beside the first.
        assert sorted(p.name for p in _folder(data).iterdir()) == sorted(
            [torrent.name, f"{torrent.info_hash}.torrent"])


def test_a_different_torrent_of_the_same_name_is_refused_and_writes_nothing(
    tmp_path: Path, swarm: Swarm
) -> None:
    """Hash-checking existing data must never overwrite another download's files."""
    first = swarm.add("same-name.bin", 1 * MiB, seed=35)
    other = swarm.add("same-name.bin", 1 * MiB, seed=36)
    assert first.info_hash != other.info_hash
    data = tmp_path / "data"
    with ariabot_run(data, {"ARIABOT_SEED_TIME": "0"}) as run:
        run.wait_ready()
        assert cli(run, "add", first.magnet, "--wait").returncode == 0
        _until_state(run, "complete")
        before = _mtimes(_folder(data) / first.name)
        refused = cli(run, "add", str(other.write_torrent(tmp_path / "files")))
        assert refused.returncode == 1
        assert "already has files named 'same-name.bin'" in refused.stderr
        assert len(downloads(run)) == 1
        assert cli(run, "add", other.magnet).returncode == 0  # its name is known later
        wait_until(lambda: any(e["state"] == "error" for e in downloads(run)), 60,
                   "the magnet refused at its metadata", describe=lambda: str(downloads(run)))
        [failed] = [e for e in downloads(run) if e["info_hash"] == other.info_hash]
        assert "already has files named" in failed["error"]
        _check_untouched(data, first, before)
