"""The watch folder, end to end: files dropped where ``ARIABOT_WATCH_DIR`` says are added by
the running ariabot (real aria2c, the local swarm) and moved to ``added/`` or ``failed/``."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import downloads
from tests.runner import ariabot_run, wait_until
from tests.swarm import Swarm


def _drop(folder: Path, name: str, data: bytes) -> None:
    """Write a file whole, as a tool does: a hidden name first, then renamed in place."""
    hidden = folder / f".{name}.part"
    hidden.write_bytes(data)
    hidden.rename(folder / name)


def test_dropped_files_are_added_once_and_moved_bad_ones_fail_with_a_reason(
        tmp_path: Path, swarm: Swarm) -> None:
    watch = tmp_path / "watch"
    watch.mkdir()
    as_file = swarm.add("watched-file.bin", 128 * 1024, seed=2611)
    as_magnet = swarm.add("watched-magnet.bin", 128 * 1024, seed=2612)
    env = {"ARIABOT_DOWNLOAD_DIR": str(tmp_path / "downloads"), "ARIABOT_WATCH_DIR": str(watch),
           "ARIABOT_WATCH_CHAT": "-100200"}
    with ariabot_run(tmp_path / "data", env) as run:
        run.wait_ready(60)
        _drop(watch, "file.torrent", as_file.torrent_bytes)
        _drop(watch, "episode.magnet", as_magnet.magnet.encode() + b"\n")
        _drop(watch, "broken.torrent", b"<html>not a torrent</html>")
        wait_until(lambda: not any(p.is_file() for p in watch.iterdir()), 30,
                   "the dropped files to be taken", describe=lambda: run.output[-2000:])
        assert sorted(p.name for p in (watch / "added").iterdir()) == [
            "episode.magnet", "file.torrent"]
        assert sorted(p.name for p in (watch / "failed").iterdir()) == [
            "broken.torrent", "broken.torrent.reason.txt"]
        [reason] = (watch / "failed" / "broken.torrent.reason.txt").read_text().splitlines()
        assert "torrent" in reason
        rows = downloads(run)
        assert sorted((row["name"], row["chat_id"]) for row in rows) == [
            ("watched-file.bin", -100200), ("watched-magnet.bin", -100200)]

        _drop(watch, "file.torrent", as_file.torrent_bytes)  # again: nothing added twice
        wait_until((watch / "added" / "file-1.torrent").exists, 30,
                   "the second copy to be moved", describe=lambda: run.output[-2000:])
        assert len(downloads(run)) == 2
    assert "Traceback" not in run.output


def test_a_file_still_being_written_is_not_read_until_it_is_whole(
        tmp_path: Path, swarm: Swarm) -> None:
    watch = tmp_path / "watch"
    watch.mkdir()
    torrent = swarm.add("written-slowly.bin", 128 * 1024, seed=2613)
    data = torrent.torrent_bytes
    env = {"ARIABOT_DOWNLOAD_DIR": str(tmp_path / "downloads"), "ARIABOT_WATCH_DIR": str(watch)}
    with ariabot_run(tmp_path / "data", env) as run:
        run.wait_ready(60)
        with (watch / "slow.torrent").open("wb") as writer:
            writer.write(data[: len(data) // 2])
            writer.flush()
            wait_until(lambda: "slow.torrent is read once it has not changed" in run.output,
                       30, "ariabot to see the file being written")
            writer.write(data[len(data) // 2:])
        wait_until((watch / "added" / "slow.torrent").exists, 30,
                   "the whole file to be added", describe=lambda: run.output[-2000:])
        assert not list((watch / "failed").iterdir())
        assert [row["name"] for row in downloads(run)] == ["written-slowly.bin"]
