"""Mirroring to the cloud with the real rclone: a download from the local swarm is uploaded
to ``rclone serve webdav`` (password-protected, 127.0.0.1) or to a local-path remote, driven
through the real bot against the fake Bot API server, or through ``ariabot run``.

Nothing sleeps a fixed time: tests wait for the manager's events, the fake server's requests
or the files on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from manager import (
    Event,
    Mirror,
    MirrorChanged,
    MirrorDone,
    MirrorFailed,
    MirrorState,
    TorrentState,
)
from supervisor.config import load_settings
from supervisor.doctor import check_rclone
from supervisor.rclone import RcloneUploader
from tests.dbfaults import hold_writes, wait_for_locks
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.integration.test_bot import LONG, MIB, USER, _download_id, _result_id, running_stack
from tests.integration.test_manager import wait_state
from tests.rclonedest import WebDavServer, require_rclone, sha1_tree, write_rclone_config
from tests.runner import AriabotRun, ariabot_run, until, wait_until
from tests.swarm import Swarm


@pytest.fixture
def webdav(tmp_path: Path) -> Iterator[WebDavServer]:
    require_rclone()
    with WebDavServer(tmp_path / "dav-root", tmp_path / "webdav.log") as server:
        yield server


@pytest.fixture(autouse=True)
def _timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def mirror_env(tmp_path: Path, webdav: WebDavServer | None, **env: str) -> dict[str, str]:
    """Settings for mirroring with a config file that defines ``dav`` and ``nas``."""
    config = write_rclone_config(tmp_path / "rclone.conf", webdav)
    return {"ARIABOT_RCLONE_CONFIG": str(config), "ARIABOT_MIRROR_RETRY_DELAY": "0.2", **env}


def mirror_events(events: list[Event], download_id: int) -> list[Event]:
    return [e for e in events if isinstance(e, MirrorChanged | MirrorDone | MirrorFailed)
            and e.torrent.id == download_id]


def _texts(stack: object, chat: int, needle: str, since: int = 0) -> list[str]:
    server = stack.server  # type: ignore[attr-defined]
    return [r.params["text"] for r in server.requests[since:]
            if r.method == "sendMessage" and r.params.get("chat_id") == chat
            and needle in str(r.params.get("text"))]


@pytest.mark.usefixtures("database_url")  # the mirrors' and notices' queries, both engines
async def test_mirror_button_moves_to_webdav_and_deletes_only_after_the_check(
    engine_settings, swarm: Swarm, tmp_path: Path, webdav: WebDavServer,
) -> None:
    env = mirror_env(tmp_path, webdav, ARIABOT_RCLONE_REMOTE="dav:up",
                     ARIABOT_MIRROR_MODE="move")
    async with running_stack(engine_settings, **env) as stack:
        seeded = swarm.add("mirror-pack", [3 * MIB, MIB], seed=61)
        folder = stack.settings.download_dir / "torrents" / str(USER)
        local = folder / "mirror-pack"
        seen: list[tuple[MirrorState, bool]] = []
        stack.manager.subscribe(lambda e: seen.append((e.torrent.mirror.state, local.exists()))
                                if isinstance(e, MirrorChanged | MirrorDone) else None)
        start = stack.server.mark()
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        progress_id, download_id = _result_id(reply), _download_id(reply.params["text"])
        news = await stack.answer(USER, start, "is downloaded", timeout=LONG)
        buttons = news.params["reply_markup"]["inline_keyboard"][0]
        assert [b["callback_data"] for b in buttons] == [f"mirror:{download_id}"]
        stranger = folder / "not-this-download.txt"  # in the same folder, not its own
        stranger.write_text("stays here")
        want = sha1_tree(local)

        mark = stack.server.mark()  # pressed twice: one upload
        presses = [stack.server.push_callback(USER, USER, _result_id(news),
                                              f"mirror:{download_id}") for _ in range(2)]
        answers = [await stack.server.wait_for(
            "answerCallbackQuery",
            lambda r, query=press["callback_query"]["id"]: (
                r.params.get("callback_query_id") == query), since=mark)
            for press in presses]
        assert sorted(a.params.get("text") for a in answers) == [
            f"#{download_id} is already being mirrored.", "Uploading…"]
        done = await stack.answer(USER, start, "is uploaded", timeout=LONG)

        place = _place(download_id, USER, seeded.info_hash)
        assert sha1_tree(webdav.root / "up" / place / "mirror-pack") == want
        assert sorted(p.name for p in (webdav.root / "up").iterdir()) == [str(USER)]
        assert not local.exists() and stranger.read_text() == "stays here"
        checked = [exists for state, exists in seen if state is MirrorState.VERIFYING]
        assert checked and all(checked), seen  # the files were there while rclone checked
        assert seen[-1] == (MirrorState.DONE, False)
        text = done.params["text"]
        assert f"<code>dav:up/{place}/mirror-pack</code>" in text and "deleted (moved)" in text
        assert str(tmp_path) not in text and webdav.password not in text
        await stack.shown(USER, progress_id, lambda t: "Uploaded to" in t)

        again = await stack.press(USER, _result_id(news), f"mirror:{download_id}")
        assert again.params["text"] == (f"#{download_id} was moved to the mirror already; "
                                        "its files are no longer here.")
        for command, needle in [("/mirror", "Usage: /mirror"), ("/mirror x", "Usage: /mirror"),
                                (f"/mirror {download_id} now", "Usage: /mirror"),
                                ("/mirror 999", "No download #999 in this chat")]:
            answer = await stack.say(USER, command)
            assert needle in answer.params["text"], (command, answer.params["text"])
        assert len(_texts(stack, USER, "is uploaded")) == 1


async def test_automatic_copy_to_a_local_path_remote_keeps_the_files(
    engine_settings, swarm: Swarm, tmp_path: Path,
) -> None:
    target = tmp_path / "nas-folder"
    env = mirror_env(tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}",
                     ARIABOT_MIRROR_AUTO="true")
    async with running_stack(engine_settings, **env) as stack:
        seeded = swarm.add("mirror-auto.bin", 2 * MIB, seed=62)
        start = stack.server.mark()
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        place = _place(_download_id(reply.params["text"]), USER, seeded.info_hash)
        news = await stack.answer(USER, start, "is downloaded", timeout=LONG)
        buttons = news.params["reply_markup"]["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["📎 Send file"]  # automatic: no Mirror button
        done = await stack.answer(USER, start, "is uploaded", timeout=LONG)
        local = stack.settings.download_dir / "torrents" / str(USER) / "mirror-auto.bin"
        # copy: both there
        assert sha1_tree(target / place / "mirror-auto.bin") == sha1_tree(local)
        assert f"<code>nas:…/{place}/mirror-auto.bin</code>" in done.params["text"]
        assert str(tmp_path) not in done.params["text"]


async def test_webdav_killed_mid_upload_is_retried_and_the_chat_told_once(
    engine_settings, swarm: Swarm, tmp_path: Path, webdav: WebDavServer,
) -> None:
    env = mirror_env(tmp_path, webdav, ARIABOT_RCLONE_REMOTE="dav:up",
                     ARIABOT_MIRROR_AUTO="true", ARIABOT_MIRROR_BWLIMIT="4M",
                     ARIABOT_MIRROR_ATTEMPTS="6", ARIABOT_MIRROR_RETRY_DELAY="0.5")
    async with running_stack(engine_settings, **env) as stack:
        seeded = swarm.add("mirror-big.bin", 16 * MIB, seed=63)
        events: list[Event] = []
        stack.manager.subscribe(events.append)
        start = stack.server.mark()
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        download_id = _download_id(reply.params["text"])

        def uploading(at_least: int) -> bool:
            return any(e.torrent.mirror.state is MirrorState.UPLOADING
                       and e.torrent.mirror.bytes >= at_least
                       for e in mirror_events(events, download_id))
        await until(lambda: uploading(3 * MIB), timeout=LONG, what="the upload under way")
        webdav.kill()
        await until(lambda: any(e.torrent.mirror.state is MirrorState.RETRYING
                                for e in mirror_events(events, download_id)),
                    timeout=LONG, what="the failed attempt to be retried")
        await asyncio.to_thread(webdav.start)
        done = await stack.answer(USER, start, "is uploaded", timeout=LONG)

        local = stack.settings.download_dir / "torrents" / str(USER) / "mirror-big.bin"
        place = _place(download_id, USER, seeded.info_hash)
        assert sha1_tree(webdav.root / "up" / place / "mirror-big.bin") == sha1_tree(local)
        outcome = [type(e) for e in mirror_events(events, download_id)
                   if isinstance(e, MirrorDone | MirrorFailed)]
        assert outcome == [MirrorDone]
        attempts = {e.torrent.mirror.attempt for e in mirror_events(events, download_id)}
        assert max(attempts) >= 2
        await stack.bot.board.close()  # every pending message is out
        assert len(_texts(stack, USER, "is uploaded", start)) == 1
        assert _texts(stack, USER, "could not be uploaded", start) == []
        print(f"\nFIGURES mirror retried: attempts {sorted(attempts)}; "
              f"{done.time - reply.time:.1f}s from /torrent to the upload's message")


async def test_webdav_down_for_good_fails_clearly_and_keeps_the_files(
    engine_settings, swarm: Swarm, tmp_path: Path, webdav: WebDavServer,
) -> None:
    env = mirror_env(tmp_path, webdav, ARIABOT_RCLONE_REMOTE="dav:up",
                     ARIABOT_MIRROR_MODE="move", ARIABOT_MIRROR_ATTEMPTS="3")
    webdav.stop()
    async with running_stack(engine_settings, **env) as stack:
        seeded = swarm.add("mirror-down.bin", MIB, seed=64)
        start = stack.server.mark()
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        progress_id, download_id = _result_id(reply), _download_id(reply.params["text"])
        await stack.answer(USER, start, "is downloaded", timeout=LONG)
        answer = await stack.say(USER, f"/mirror {download_id}")
        assert answer.params["text"].startswith(f"☁️ #{download_id} is being uploaded")
        failed = await stack.answer(USER, start, "could not be uploaded", timeout=LONG)
        text = failed.params["text"]
        assert "after 3 attempts" in text and "refused the connection" in text, text
        assert "The files on this server are kept" in text
        local = stack.settings.download_dir / "torrents" / str(USER) / "mirror-down.bin"
        assert local.read_bytes() == seeded.content_path.read_bytes()
        await stack.shown(USER, progress_id, lambda t: "failed: the remote refused" in t)
        await stack.bot.board.close()
        assert len(_texts(stack, USER, "could not be uploaded", start)) == 1
        assert not (webdav.root / "up").exists()


def rclone_copies() -> list[psutil.Process]:
    """This test run's ``rclone copy`` processes (the WebDAV server is an rclone too)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == "rclone" and "copy" in child.cmdline():
                found.append(child)
    return found


async def test_stop_upload_stops_rclone_and_keeps_the_files(
    engine_settings, swarm: Swarm, tmp_path: Path, webdav: WebDavServer,
) -> None:
    env = mirror_env(tmp_path, webdav, ARIABOT_RCLONE_REMOTE="dav:up",
                     ARIABOT_MIRROR_AUTO="true", ARIABOT_MIRROR_MODE="move",
                     ARIABOT_MIRROR_BWLIMIT="1M")
    async with running_stack(engine_settings, **env) as stack:
        seeded = swarm.add("mirror-stop.bin", 8 * MIB, seed=66)
        events: list[Event] = []
        stack.manager.subscribe(events.append)
        reply = await stack.say(USER, f"/torrent {seeded.magnet}")
        progress_id, download_id = _result_id(reply), _download_id(reply.params["text"])
        await until(lambda: any(e.torrent.mirror.bytes > 0
                                for e in mirror_events(events, download_id)),
                    timeout=LONG, what="the upload under way")
        assert rclone_copies()
        shown = await stack.shown(USER, progress_id, lambda t: "Uploading to" in t)
        assert shown["reply_markup"]["inline_keyboard"][-1][0]["callback_data"] == (
            f"mirror:{download_id}:stop")
        answer = await stack.press(USER, progress_id, f"mirror:{download_id}:stop")
        assert answer.params.get("text") == "Upload stopped."
        assert rclone_copies() == []  # the transfer is stopped, not left running
        await stack.shown(USER, progress_id, lambda t: "stopped" in t)
        local = stack.settings.download_dir / "torrents" / str(USER) / "mirror-stop.bin"
        assert local.read_bytes() == seeded.content_path.read_bytes()
        again = await stack.say(USER, f"/mirror {download_id} stop")
        assert again.params["text"] == f"#{download_id} is not being mirrored."
        restarted = await stack.say(USER, f"/mirror {download_id}")
        assert restarted.params["text"].startswith(f"☁️ #{download_id} is being uploaded")
        stopped = await stack.say(USER, f"/mirror {download_id} stop")
        assert stopped.params["text"].startswith(f"⏹ The upload of #{download_id} is stopped")
        assert _texts(stack, USER, "is uploaded") == []


def test_doctor_checks_rclone_and_that_the_destination_answers(
    tmp_path: Path, webdav: WebDavServer,
) -> None:
    config = write_rclone_config(tmp_path / "rclone.conf", webdav)

    def lines(**env: str) -> list[str]:
        settings = load_settings(None, {"ARIABOT_DATA_DIR": str(tmp_path / "data"),
                                        "ARIABOT_RCLONE_CONFIG": str(config), **env})
        return [check.line for check in check_rclone(settings, timeout=20)]

    assert lines() == []  # mirroring is off: nothing to check
    found, answers = lines(ARIABOT_RCLONE_REMOTE="dav:up")
    assert found.startswith("✔ rclone v") and found.endswith(f" at {require_rclone()}")
    assert answers == "✔ the mirror destination dav:up answers (copy, on request)"
    assert lines(ARIABOT_RCLONE_REMOTE="nosuch:up")[1] == (
        "✘ no remote named 'nosuch' in the rclone config — define it with 'rclone config', "
        "or fix ARIABOT_RCLONE_REMOTE")
    assert lines(ARIABOT_RCLONE_REMOTE="dav:up", ARIABOT_RCLONE="/nonexistent/rclone") == [
        "✘ rclone not found ('/nonexistent/rclone') — install it with 'sudo apt-get install "
        "rclone' (or set ARIABOT_RCLONE to its path)"]
    webdav.stop()
    down = lines(ARIABOT_RCLONE_REMOTE="dav:up")[1]
    assert down.startswith("✘ the mirror destination dav:up does not answer: the remote "
                           "refused the connection (is it up?)"), down
    assert webdav.password not in down


# --- ariabot run ---------------------------------------------------------------------------


def cli(run: AriabotRun, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", *args], env=run.env,
                          capture_output=True, text=True, timeout=120, check=False)


def mirror_of(run: AriabotRun, download_id: int) -> dict | None:
    """The download's mirror as ``ariabot status --json`` tells it (None until the control
    socket answers: a killed ariabot leaves its socket file behind)."""
    result = cli(run, "status", str(download_id), "--json")
    if result.returncode == 3:
        return None
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["mirror"]


@pytest.mark.usefixtures("database_url")  # ariabot run resumes it from either engine
def test_a_mirror_cut_by_a_crash_of_ariabot_finishes_after_the_restart_once(
    tmp_path: Path, swarm: Swarm, webdav: WebDavServer, run_database: dict[str, str],
) -> None:
    env = {**mirror_env(tmp_path, webdav, ARIABOT_RCLONE_REMOTE="dav:up",
                        ARIABOT_MIRROR_BWLIMIT="1M"),
           "ARIABOT_SEED_TIME": "0", "ARIABOT_PROGRESS_INTERVAL": "1", **run_database}
    seeded = swarm.add("mirror-crash.bin", 10 * MIB, seed=65)
    data = tmp_path / "data"
    with ariabot_run(data, env) as first:
        first.wait_ready()
        assert cli(first, "add", seeded.magnet, "--wait").returncode == 0
        mirrored = cli(first, "mirror", "1")
        assert mirrored.returncode == 0, mirrored.stderr
        place = _place(1, 0, seeded.info_hash)
        assert f"mirror: queued → dav:up/{place}/mirror-crash.bin" in mirrored.stdout

        def uploading() -> list[psutil.Process]:
            """The rclone children of ariabot while the upload is half way (both seen at
            once: under load the upload may be read as under way only after it ended)."""
            children = []
            for child in psutil.Process(first.process.pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):  # one that just ended
                    if child.name() == "rclone":
                        children.append(child)
            mirror = mirror_of(first, 1)
            return children if mirror and mirror["bytes"] >= 1 * MIB and children else []

        leftover = wait_until(uploading, 60, "the upload under way in an rclone child")
        first.process.send_signal(signal.SIGKILL)  # a crash: nothing is cleaned up
        first.wait_exit()
    with ariabot_run(data, env) as second:
        second.wait_ready()
        done = wait_until(lambda: (m := mirror_of(second, 1)) and m["state"] == "done" and m,
                          60, "the mirror to finish after the restart")
        entries = json.loads(cli(second, "log", "--json", "--limit", "50").stdout)
        output = second.output
    assert done["attempt"] == 1 and done["error"] is None
    assert [e["action"] for e in entries].count("mirror-done") == 1
    assert "resuming the mirror of #1" in output
    assert sha1_tree(webdav.root / "up" / place / "mirror-crash.bin") == sha1_tree(
        seeded.content_path)
    # The orphan dies by itself at its next stats line (its stderr pipe is gone), or the new
    # ariabot stops it by its stored pid if it starts first: either way it is not left.
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in leftover)
    for secret in (webdav.password,):
        assert secret not in first.output + output


def test_a_leftover_rclone_is_stopped_only_when_it_is_that_upload(tmp_path: Path) -> None:
    source = tmp_path / "torrents" / "5"
    source.mkdir(parents=True)
    (source / "big.bin").write_bytes(b"\0" * (4 * MIB))
    target = tmp_path / "target"
    uploader = RcloneUploader(Path(require_rclone()), stop_timeout=5)
    copy = subprocess.Popen([require_rclone(), "copy", str(source), str(target),
                             "--bwlimit", "64K"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until((target / "big.bin").exists, 20, "rclone to be copying")
        uploader.stop_leftover(copy.pid, tmp_path / "torrents" / "6")  # another folder
        uploader.stop_leftover(os.getpid(), source)  # a reused pid: not an rclone
        assert copy.poll() is None
        uploader.stop_leftover(copy.pid, source)
        copy.wait(10)  # stopped long before its 64 s at 64 KiB/s
        assert (target / "big.bin").stat().st_size < 4 * MIB
    finally:
        copy.kill()
        copy.wait()


@pytest.mark.parametrize(("env", "line"), [
    ({"ARIABOT_RCLONE_REMOTE": "bad name!:x"},
     "ariabot: configuration error: ARIABOT_RCLONE_REMOTE: the part before ':' must be the "
     "name of a remote in the rclone config (letters, digits, _ - . and spaces)"),
    ({"ARIABOT_RCLONE_REMOTE": "no-colon"},
     "ariabot: configuration error: ARIABOT_RCLONE_REMOTE: must be an rclone destination, "
     "remote:path (e.g. gdrive:ariabot), or an absolute folder"),
    ({"ARIABOT_RCLONE_REMOTE": "dav:up/../../etc"},
     "ariabot: configuration error: ARIABOT_RCLONE_REMOTE: must not contain '..'"),
    ({"ARIABOT_RCLONE_REMOTE": "nosuch:up"},
     "ariabot: ARIABOT_RCLONE_REMOTE: no remote named 'nosuch' in {config}; define it with "
     "'rclone config' (or fix the name)"),
    ({"ARIABOT_RCLONE_REMOTE": "dav:up", "ARIABOT_RCLONE": "/nonexistent/rclone"},
     "ariabot: rclone not found ('/nonexistent/rclone'): install it with 'sudo apt-get "
     "install rclone' (or set ARIABOT_RCLONE to its path)"),
])
def test_a_bad_remote_or_a_missing_rclone_is_one_line_and_nothing_runs(
    tmp_path: Path, env: dict[str, str], line: str,
) -> None:
    config = write_rclone_config(tmp_path / "rclone.conf")
    run = AriabotRun(tmp_path / "data", {"ARIABOT_RCLONE_CONFIG": str(config), **env}).start()
    try:
        assert run.wait_exit() == 2
    finally:
        run.stop()
    assert run.output.strip().splitlines()[-1] == line.format(config=config)
    assert not (tmp_path / "data" / "aria2.conf").exists()  # stopped before aria2c


# --- each download's own place at the destination ----------------------------------------


async def _wait_mirror(engine: Engine, download_id: int, *states: MirrorState,
                       timeout: float = 60) -> Mirror:
    """The download's mirror once it is in one of ``states`` (read through the manager)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        mirror = (await engine.manager.get(download_id)).mirror
        if mirror is not None and mirror.state in states:
            return mirror
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"#{download_id}'s mirror is {mirror}, wanted {states}")
        await asyncio.sleep(0.05)


def _uploaded(target: Path) -> dict[str, str]:
    """Every file at a local destination, by its path there, with its SHA-1."""
    return {key: digest for top in sorted(target.iterdir()) for key, digest
            in sha1_tree(top).items()}


def _place(download_id: int, chat_id: int, info_hash: str) -> str:
    return f"{chat_id}/{download_id}-{info_hash[:8]}"


async def test_same_named_downloads_each_land_in_their_own_place_and_none_is_overwritten(
    engine_settings, swarm: Swarm, tmp_path: Path,
) -> None:
    """Item 1 of issue 23: two chats, then the same chat after a cancel, each with a
    different ``movie.mkv``, moved to one destination: three copies, none overwritten."""
    target = tmp_path / "nas-folder"
    settings = engine_settings(**mirror_env(tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}",
                                            ARIABOT_MIRROR_MODE="move"))
    engine = await start_engine(settings)
    try:
        first, second, third = (swarm.add("movie.mkv", MIB, seed=seed) for seed in (91, 92, 93))
        expected: dict[str, str] = {}
        shown: dict[str, str] = {}
        for torrent, chat in ((first, 11), (second, 12), (third, 11)):
            added = await engine.manager.add(torrent.torrent_bytes, chat_id=chat, user_id=1)
            download_id = added.torrent.id
            await wait_state(engine, download_id, TorrentState.COMPLETE)
            await engine.manager.mirror(download_id, chat_id=chat)
            mirror = await _wait_mirror(engine, download_id, MirrorState.DONE,
                                        MirrorState.FAILED)
            place = _place(download_id, chat, torrent.info_hash)
            assert (mirror.state, mirror.local_deleted) == (MirrorState.DONE, True), mirror
            shown[mirror.destination] = f"nas:…/{place}/movie.mkv"
            expected[f"{place}/movie.mkv"] = sha1_tree(torrent.content_path)["movie.mkv"]
            assert not (engine.folder(chat) / "movie.mkv").exists()  # moved
            if torrent is first:  # the same chat's next movie.mkv comes after a cancel
                await engine.manager.cancel(download_id, chat_id=chat, delete_files=True)
        every = [p for p in target.rglob("*") if p.is_file()]
        assert sorted(sha1_tree(p)[p.name] for p in every) == sorted(expected.values())
        assert list(shown) == list(shown.values())  # what a user reads names that place
        by_place = {f"{chat_dir.name}/{sub.name}/{key}": digest
                    for chat_dir in sorted(target.iterdir())
                    for sub in sorted(chat_dir.iterdir())
                    for key, digest in _uploaded(sub).items()}
        assert by_place == expected
    finally:
        await stop_engine(engine)


@pytest.mark.usefixtures("database_url")  # a mirror forgotten and started again
async def test_a_readded_download_shows_no_old_mirror_and_mirrors_to_its_place_again(
    engine_settings, swarm: Swarm, tmp_path: Path,
) -> None:
    """Item 17 of issue 23 (the old mirror state), and item 1's decision for the same
    torrent added again after a cancel: the same place, with the same content."""
    target = tmp_path / "nas-folder"
    settings = engine_settings(**mirror_env(tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}"))
    engine = await start_engine(settings)
    try:
        torrent = swarm.add("again.bin", MIB, seed=94)
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=13, user_id=1)
        download_id = added.torrent.id
        await wait_state(engine, download_id, TorrentState.COMPLETE)
        await engine.manager.mirror(download_id, chat_id=13)
        done = await _wait_mirror(engine, download_id, MirrorState.DONE)
        await engine.manager.cancel(download_id, chat_id=13, delete_files=True)

        again = await engine.manager.add(torrent.torrent_bytes, chat_id=13, user_id=1)
        assert again.torrent.id == download_id and again.torrent.mirror is None
        assert (await engine.manager.get(download_id)).mirror is None
        assert all(t.mirror is None for t in await engine.manager.list(13))
        place = target / _place(download_id, 13, torrent.info_hash)
        uploaded = _uploaded(place)
        assert uploaded == sha1_tree(torrent.content_path)
        await wait_state(engine, download_id, TorrentState.COMPLETE)
        await engine.manager.mirror(download_id, chat_id=13)
        second = await _wait_mirror(engine, download_id, MirrorState.DONE, MirrorState.FAILED)
        assert second.state is MirrorState.DONE and second.destination == done.destination
        assert _uploaded(place) == uploaded
        assert [p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()] == [
            f"{_place(download_id, 13, torrent.info_hash)}/again.bin"]
    finally:
        await stop_engine(engine)


async def test_a_mirror_stored_past_a_lowered_attempt_limit_still_ends(
    engine_settings, swarm: Swarm, tmp_path: Path,
) -> None:
    """Item 14 of issue 23: a mirror stored at attempt 5 (cut by a stop), resumed by an
    ariabot whose ARIABOT_MIRROR_ATTEMPTS is now 2, is tried and ends; it is never left
    uploading."""
    target = tmp_path / "nas-folder"
    env = mirror_env(tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}")
    engine = await start_engine(engine_settings(**env, ARIABOT_MIRROR_ATTEMPTS="6"))
    try:
        torrent = swarm.add("lowered.bin", MIB, seed=95)
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=14, user_id=1)
        download_id = added.torrent.id
        await wait_state(engine, download_id, TorrentState.COMPLETE)
        # What an ariabot stopped during its fifth attempt leaves stored.
        await engine.manager.mirror(download_id, chat_id=14)
        await _wait_mirror(engine, download_id, MirrorState.DONE)
        await engine.store.mirrors.update(download_id, state=MirrorState.UPLOADING.value,
                                          attempt=5, link=None)
    finally:
        await stop_engine(engine)
    engine = await start_engine(engine_settings(**env, ARIABOT_MIRROR_ATTEMPTS="2"))
    try:
        mirror = await _wait_mirror(engine, download_id, MirrorState.DONE, MirrorState.FAILED)
        assert mirror.state is MirrorState.DONE and mirror.attempt <= mirror.attempts == 2
    finally:
        await stop_engine(engine)


@pytest.mark.usefixtures("database_url")  # a write lock on SQLite, on PostgreSQL
async def test_a_mirror_whose_store_writes_fail_for_a_while_waits_and_ends_done(
    engine_settings, swarm: Swarm, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by the nodes' promises machine (PostgreSQL restarted as an upload ended): the
    save after the upload failed, the job broke with a traceback and its row stayed
    "uploading" for good. It waits for the store now, and ends done, its file in place."""
    target = tmp_path / "nas-folder"
    env = mirror_env(tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}",
                     ARIABOT_MIRROR_BWLIMIT="512k")
    engine = await start_engine(engine_settings(**env))
    try:
        torrent = swarm.add("outage.bin", 2 * MIB, seed=96)
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=15, user_id=1)
        download_id = added.torrent.id
        await wait_state(engine, download_id, TorrentState.COMPLETE)
        events: list[Event] = []
        engine.manager.subscribe(events.append)
        await engine.manager.mirror(download_id, chat_id=15)
        await until(lambda: any(e.torrent.mirror.state is MirrorState.UPLOADING
                                for e in mirror_events(events, download_id)),
                    timeout=30, what="the upload under way")
        await wait_for_locks(engine.store, 100)
        told = f"mirror of #{download_id}"
        with hold_writes(engine.store.url):  # until the write after the upload failed
            await until(lambda: any(told in r.getMessage() and (
                "save its state" in r.getMessage() or "broke" in r.getMessage())
                for r in caplog.records if r.levelno >= logging.WARNING),
                timeout=60, what="the save after the upload to fail")
        mirror = await _wait_mirror(engine, download_id, MirrorState.DONE, MirrorState.FAILED)
        assert mirror.state is MirrorState.DONE, mirror
        place = target / _place(download_id, 15, torrent.info_hash)
        assert _uploaded(place) == sha1_tree(torrent.content_path)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    finally:
        await stop_engine(engine)


async def test_a_cancel_stops_a_move_under_way_and_keeps_the_files(
    engine_settings, swarm: Swarm, tmp_path: Path,
) -> None:
    """Item 2 of issue 23 (a mirror's move deletes only what its download still owns): a
    download cancelled without its files while its move uploads keeps them, and its upload
    stops (the user dropped the download; nothing of it is moved any more)."""
    target = tmp_path / "nas-folder"
    settings = engine_settings(**mirror_env(
        tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}", ARIABOT_MIRROR_MODE="move",
        ARIABOT_MIRROR_BWLIMIT="1M"))
    engine = await start_engine(settings)
    try:
        torrent = swarm.add("kept-by-cancel.bin", 4 * MIB, seed=96)
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=15, user_id=1)
        download_id = added.torrent.id
        await wait_state(engine, download_id, TorrentState.COMPLETE)
        await engine.manager.mirror(download_id, chat_id=15)
        await until(lambda: any(e.torrent.mirror.bytes > 0
                                for e in mirror_events(engine.events, download_id)),
                    timeout=LONG, what="the upload under way")
        assert rclone_copies()
        cancelled = await engine.manager.cancel(download_id, chat_id=15)  # its files stay
        assert rclone_copies() == [], "the upload of a cancelled download goes on"
        assert cancelled.upload_stopped
        mirror = (await engine.manager.get(download_id)).mirror
        assert mirror is not None and mirror.state is MirrorState.STOPPED
        assert not mirror.local_deleted
        local = engine.folder(15) / "kept-by-cancel.bin"
        assert sha1_tree(local) == sha1_tree(torrent.content_path)
    finally:
        await stop_engine(engine)


async def test_a_move_waits_out_an_aria2c_restart_before_it_stops_seeding(
    engine_settings, swarm: Swarm, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A move stops the download's seeding first (its files must stay as they are). With
    aria2c hung then, and restarted by the supervisor, the move waits for it and goes on:
    a restart of the downloader is no failure of the mirror (it was: "ariabot could not
    run it (Aria2Unavailable)", with a traceback)."""
    target = tmp_path / "nas-folder"
    engine = await start_engine(engine_settings(**mirror_env(
        tmp_path, None, ARIABOT_RCLONE_REMOTE=f"nas:{target}", ARIABOT_MIRROR_MODE="move",
        ARIABOT_SEED_TIME="60")), rpc_timeout=2)
    try:
        torrent = swarm.add("seeding-then-moved.bin", MIB, seed=97)
        added = await engine.manager.add(torrent.torrent_bytes, chat_id=21, user_id=1)
        download_id = added.torrent.id
        await wait_state(engine, download_id, TorrentState.SEEDING)
        session = engine.aria2.session_id
        assert engine.aria2.pid is not None
        os.kill(engine.aria2.pid, signal.SIGSTOP)  # hung: the health check restarts it
        await engine.manager.mirror(download_id, chat_id=21)
        mirror = await _wait_mirror(engine, download_id, MirrorState.DONE, MirrorState.FAILED)
        assert (mirror.state, mirror.local_deleted, mirror.error) == (
            MirrorState.DONE, True, None), mirror
        assert engine.aria2.session_id not in (None, session)  # it was restarted meanwhile
        assert not (engine.folder(21) / "seeding-then-moved.bin").exists()  # moved
        assert _uploaded(target / _place(download_id, 21, torrent.info_hash)) == {
            "seeding-then-moved.bin": sha1_tree(torrent.content_path)[
                "seeding-then-moved.bin"]}
        assert "broke" not in caplog.text
    finally:
        await stop_engine(engine)
