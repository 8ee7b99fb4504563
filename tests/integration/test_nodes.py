"""Nodes sharing one database, end to end: the real ``ariabot run`` processes, the fake Bot
API server, the session's PostgreSQL server (and SQLite where the engine does not matter).

What a node promises so far: it shows itself (``ariabot nodes``, the admin chat's
``/nodes``), a restart of its own data dir gets its name back at once, another data dir is
refused its name (or the database) while the holder lives and changes nothing, a node
frozen while its name went to another start stops as soon as it wakes, a node leaves
the downloads of another node (and their files) alone, and a node that joins takes the
unfinished downloads of a dead one (failover), which lets go of them when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from bot.callbackdata import callback_data
from manager import NoticeKind
from manager.nodes.routing import ANSWER_WAIT
from manager.store import DownloadRecord, Store
from supervisor import __version__
from tests.fakes.feeds import FakeItem, FeedSite, nyaa
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer
from tests.fakes.torrentsite import TorrentSite
from tests.integration.test_cli import cli, downloads
from tests.integration.test_miniapp import init_data
from tests.pgserver import PostgresServer
from tests.rclonedest import require_rclone, write_rclone_config
from tests.runner import AriabotRun, ariabot_run, free_port, rpc, wait_until
from tests.swarm import Swarm, file_digests

USER = 424242
GROUP = -100777
MiB = 1024 * 1024
CHAT = 4242
"""The chat of the failover tests' downloads (the local CLI's chat 0 is told nothing)."""
DEAD_AFTER = 3.0
"""The heartbeat limit of these tests (seconds): beats every 0.5 s."""


def _env(download_dir: Path, **extra: str) -> dict[str, str]:
    return {"ARIABOT_DOWNLOAD_DIR": str(download_dir),
            "ARIABOT_NODE_DEAD_AFTER": str(DEAD_AFTER), **extra}


def _node_env(download_dir: Path, name: str, url: str, **extra: str) -> dict[str, str]:
    """A node of the PostgreSQL database ``url`` whose downloads stop seeding at once."""
    return _env(download_dir, ARIABOT_NODE_NAME=name, ARIABOT_DATABASE_URL=url,
                ARIABOT_SEED_TIME="0", **extra)


def _nodes(run: AriabotRun) -> list[dict]:
    listed = cli(run, "nodes", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _refused_start(data_dir: Path, env: dict[str, str]) -> tuple[int, str]:
    """Start ``ariabot run`` that must refuse: its exit code and its output."""
    run = AriabotRun(data_dir, env).start()
    try:
        return run.wait_exit(30), run.output
    finally:
        run.stop()


async def _stored_nodes(url: str) -> dict[str, object]:
    store = Store(url)
    await store.open()
    try:
        return {node.name: node for node in await store.nodes.all()}
    finally:
        await store.close()


async def test_a_node_shows_itself_in_the_cli_and_in_the_admin_chat(tmp_path: Path) -> None:
    async with FakeTelegramServer() as server:
        env = _env(tmp_path / "downloads", ARIABOT_NODE_NAME="box-a",
                   ARIABOT_TELEGRAM_TOKEN=DEFAULT_TOKEN, ARIABOT_TELEGRAM_API_URL=server.url,
                   ARIABOT_ALLOWED_USERS=str(USER), ARIABOT_ALLOWED_CHATS=f"{GROUP},{USER}",
                   ARIABOT_ADMIN_CHAT=str(GROUP))
        run = AriabotRun(tmp_path / "data", env).start()
        try:
            await asyncio.to_thread(run.wait_ready, 60)
            (node,) = await asyncio.to_thread(
                wait_until, lambda: [n for n in _nodes(run) if n["slots_total"]], 15,
                "a heartbeat with the node's room")
            assert (node["name"], node["state"], node["this"], node["version"]) == (
                "box-a", "online", True, __version__)
            assert (node["slots_total"], node["downloads"]) == (3, 0)
            assert node["free_disk"] > 0
            line = cli(run, "nodes").stdout
            assert line.startswith("box-a (this node): online, last heard from ")
            assert "slots 0/3 used" in line

            mark = server.mark()
            server.push_text(GROUP, USER, "/nodes")
            answer = await server.wait_for("sendMessage", lambda r: r.status == 200
                                           and r.params.get("chat_id") == GROUP, since=mark)
            text = str(answer.params["text"])
            assert "Nodes</b> (1)" in text
            assert "box-a (this node): online" in text
            mark = server.mark()
            server.push_text(USER, USER, "/nodes")  # not the admin chat: no machine named
            answer = await server.wait_for("sendMessage", lambda r: r.status == 200
                                           and r.params.get("chat_id") == USER, since=mark)
            assert "in the admin chat only" in str(answer.params["text"])
            assert "box-a" not in str(answer.params["text"])

            run.signal(signal.SIGTERM)
            assert await asyncio.to_thread(run.wait_exit) == 0
        finally:
            await asyncio.to_thread(run.stop)
    stored = await _stored_nodes(f"sqlite:///{tmp_path / 'data' / 'ariabot.db'}")
    assert stored["box-a"].left_at is not None  # it said it stopped: "stopped", not offline
    assert "Traceback" not in run.output


def test_a_node_killed_takes_its_name_back_at_once(tmp_path: Path) -> None:
    """No wait for the 30 s limit: the data dir's lock says the process before is gone."""
    env = _env(tmp_path / "downloads", ARIABOT_NODE_NAME="box-a",
               ARIABOT_NODE_DEAD_AFTER="30")
    with ariabot_run(tmp_path / "data", env) as first:
        first.wait_ready(60)
        first.signal(signal.SIGKILL)
        first.wait_exit()
    with ariabot_run(tmp_path / "data", env) as second:
        second.wait_ready(20)
        (node,) = _nodes(second)
        assert (node["name"], node["state"]) == ("box-a", "online")


@pytest.mark.postgresql
async def test_another_data_dir_is_refused_the_name_and_changes_nothing(
        tmp_path: Path, postgresql_server: PostgresServer, postgresql_url: str) -> None:
    env = _env(tmp_path / "downloads-a", ARIABOT_NODE_NAME="box-a",
               ARIABOT_DATABASE_URL=postgresql_url)
    with ariabot_run(tmp_path / "a", env) as first:
        await asyncio.to_thread(first.wait_ready, 60)
        before = (await _stored_nodes(postgresql_url))["box-a"]
        other = _env(tmp_path / "downloads-a-2", ARIABOT_NODE_NAME="box-a",
                     ARIABOT_DATABASE_URL=postgresql_url)
        code, output = await asyncio.to_thread(_refused_start, tmp_path / "box-a-2", other)
        assert code == 2, output
        assert "give each machine its own ARIABOT_NODE_NAME" in output
        assert "aria2c STOPPED -> STARTING" not in output  # nothing was done as a node
        assert "Traceback" not in output
        assert postgresql_server.password not in output
        after = await _stored_nodes(postgresql_url)
        assert list(after) == ["box-a"]
        assert (after["box-a"].started_at, after["box-a"].version) == (
            before.started_at, before.version)
        assert [n["state"] for n in await asyncio.to_thread(_nodes, first)] == ["online"]


@pytest.mark.postgresql
async def test_a_frozen_node_whose_name_was_taken_stops_when_it_wakes(
        tmp_path: Path, postgresql_url: str) -> None:
    """SIGSTOP past the limit, the name started again elsewhere, SIGCONT: the frozen
    process finds out at its next heartbeat and stops (exit 1), its aria2c with it; the
    new start keeps the name."""
    env = _env(tmp_path / "downloads-a", ARIABOT_NODE_NAME="box-a",
               ARIABOT_DATABASE_URL=postgresql_url)
    with ariabot_run(tmp_path / "a", env) as frozen:
        info = await asyncio.to_thread(frozen.wait_ready, 60)
        frozen.signal(signal.SIGSTOP)
        try:
            await asyncio.to_thread(
                wait_until, lambda: asyncio.run(_stored_nodes(postgresql_url))[
                    "box-a"].silent_for > DEAD_AFTER, 30, "the frozen node to go silent")
            moved = _env(tmp_path / "downloads-a2", ARIABOT_NODE_NAME="box-a",
                         ARIABOT_DATABASE_URL=postgresql_url)
            with ariabot_run(tmp_path / "a2", moved) as taken:
                await asyncio.to_thread(taken.wait_ready, 60)
                frozen.signal(signal.SIGCONT)
                assert await asyncio.to_thread(frozen.wait_exit, 30) == 1
                assert "was replaced while this process was not heard from" in frozen.output
                assert not psutil.pid_exists(info["aria2c_pid"])
                (node,) = await asyncio.to_thread(_nodes, taken)
                assert (node["name"], node["state"], node["this"]) == ("box-a", "online", True)
        finally:
            frozen.signal(signal.SIGCONT)


def _placed(run: AriabotRun, count: int) -> dict[str, str] | None:
    """Each download's node by its name, once ``count`` downloads are claimed (else None)."""
    placed = {d["name"]: d["node"] for d in downloads(run) if d["node"]}
    return placed if len(placed) == count else None


def _aria2_holds(run: AriabotRun) -> list[str]:
    """The GIDs the node's own aria2c holds, running, waiting or stopped."""
    info = run.runtime()
    assert info is not None
    port, secret = info["rpc_port"], info["rpc_secret"]
    keys = ["gid"]
    return [entry["gid"]
            for answer in (rpc(port, "aria2.tellActive", keys, secret=secret),
                           rpc(port, "aria2.tellWaiting", 0, 1000, keys, secret=secret),
                           rpc(port, "aria2.tellStopped", 0, 1000, keys, secret=secret))
            for entry in answer["result"]]


@pytest.mark.postgresql
async def test_a_node_leaves_another_nodes_downloads_and_files_alone(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """alpha finishes one download, has another waiting for peers, and stops; beta starts
    on the same database with its own dirs. beta lists both as alpha's, never adds them to
    its aria2c, refuses to cancel them, and its purge leaves them and their files; alpha
    started again has both, the finished one byte for byte."""
    finished = swarm.add("node-alpha.bin", 1 * MiB, seed=41)
    alpha_env = _node_env(tmp_path / "downloads-a", "alpha", postgresql_url)
    folder = tmp_path / "downloads-a" / "torrents" / "0"
    with ariabot_run(tmp_path / "a", alpha_env) as alpha:
        await asyncio.to_thread(alpha.wait_ready, 60)
        added = await asyncio.to_thread(cli, alpha, "add", finished.magnet, "--wait")
        assert added.returncode == 0, added.stderr
        waiting = await asyncio.to_thread(cli, alpha, "add", swarm.dead_magnet("node-wait"))
        assert waiting.returncode == 0, waiting.stderr
        await asyncio.to_thread(wait_until, lambda: _placed(alpha, 2), 30, "alpha's claim")
        before = {d["id"]: d for d in await asyncio.to_thread(downloads, alpha)}
        assert [(d["node"], d["elsewhere"]) for d in before.values()] == [("alpha", None)] * 2
        alpha.signal(signal.SIGTERM)
        assert await asyncio.to_thread(alpha.wait_exit) == 0

    beta_env = _node_env(tmp_path / "downloads-b", "beta", postgresql_url)
    with ariabot_run(tmp_path / "b", beta_env) as beta:
        await asyncio.to_thread(beta.wait_ready, 60)  # its reconcile at start is done
        assert await asyncio.to_thread(_aria2_holds, beta) == []
        listed = {d["id"]: d for d in await asyncio.to_thread(downloads, beta)}
        assert {i: (d["node"], d["state"]) for i, d in listed.items()} == {
            i: ("alpha", d["state"]) for i, d in before.items()}
        assert all(d["elsewhere"].startswith("on node alpha, stopped ")
                   for d in listed.values())
        text = (await asyncio.to_thread(cli, beta, "list")).stdout
        assert text.count("\n      on node alpha, stopped ") == 2, text
        for download_id in before:
            refused = await asyncio.to_thread(cli, beta, "cancel", str(download_id),
                                              "--delete-files")
            assert refused.returncode == 1
            assert refused.stderr.startswith(
                f"ariabot: #{download_id} is on node alpha, stopped "), refused.stderr
        purged = await asyncio.to_thread(cli, beta, "purge", "--older-than", "0",
                                         "--delete-files")
        assert purged.returncode == 0, purged.stderr
        assert file_digests(folder / "node-alpha.bin") == finished.digests
        after = {d["id"]: d for d in await asyncio.to_thread(downloads, beta)}
        assert {i: d["state"] for i, d in after.items()} == {
            i: d["state"] for i, d in before.items()}
        assert "Traceback" not in beta.output

    with ariabot_run(tmp_path / "a", alpha_env) as alpha:
        await asyncio.to_thread(alpha.wait_ready, 60)
        again = {d["id"]: d for d in await asyncio.to_thread(downloads, alpha)}
        assert {i: d["state"] for i, d in again.items()} == {
            i: d["state"] for i, d in before.items()}
        assert len(await asyncio.to_thread(_aria2_holds, alpha)) == 1  # the waiting one
    assert file_digests(folder / "node-alpha.bin") == finished.digests


async def _stored_download(url: str, download_id: int) -> tuple[DownloadRecord | None, int]:
    """The row as stored, and how many completion notices were ever written for it."""
    store = Store(url)
    await store.open()
    try:
        notice = store.database.tables.notice
        completions = await store.database.run(lambda: notice.select().where(
            (notice.download_id == download_id)
            & (notice.kind == NoticeKind.COMPLETED.value)).count())
        return await store.downloads.get(download_id), completions
    finally:
        await store.close()


def _home(data_dir: Path) -> str:
    """The node id of a data dir."""
    return (data_dir / "node.id").read_text().strip()


def _silent(url: str, name: str) -> bool:
    return asyncio.run(_stored_nodes(url))[name].silent_for > DEAD_AFTER


def _finished_on(run: AriabotRun, download_id: int) -> dict | None:
    listed = {d["id"]: d for d in downloads(run)}
    entry = listed.get(download_id)
    return entry if entry and entry["completed_at"] else None


@pytest.mark.postgresql
async def test_a_killed_nodes_download_finishes_on_the_next_node_and_its_data_goes_on_return(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """alpha is killed (-9) mid-download; beta, started once alpha is past the heartbeat
    limit, takes the download and finishes it from the swarm in its own folder, byte for
    byte, with one completion. alpha, back after beta stopped, lets go of it: its aria2c
    holds nothing, and the partial data it had written is gone; beta's copy is untouched."""
    torrent = swarm.add("failover.bin", 4 * MiB, seed=43)
    alpha_env = _node_env(tmp_path / "downloads-a", "alpha", postgresql_url)
    beta_env = _node_env(tmp_path / "downloads-b", "beta", postgresql_url)
    partial = tmp_path / "downloads-a" / "torrents" / str(CHAT) / "failover.bin"
    finished = tmp_path / "downloads-b" / "torrents" / str(CHAT) / "failover.bin"
    with swarm.throttled(64 * 1024), ariabot_run(tmp_path / "a", alpha_env) as alpha:
        await asyncio.to_thread(alpha.wait_ready, 60)
        added = await asyncio.to_thread(cli, alpha, "add", torrent.magnet, "--chat", str(CHAT))
        assert added.returncode == 0, added.stderr
        (entry,) = await asyncio.to_thread(
            wait_until, lambda: [d for d in downloads(alpha) if d["completed_bytes"]], 60,
            "alpha's first bytes")
        alpha.signal(signal.SIGKILL)
        await asyncio.to_thread(alpha.wait_exit)
    download_id = entry["id"]
    assert partial.exists()
    await asyncio.to_thread(wait_until, lambda: _silent(postgresql_url, "alpha"), 30,
                            "alpha past the heartbeat limit")

    with ariabot_run(tmp_path / "b", beta_env) as beta:
        await asyncio.to_thread(beta.wait_ready, 60)
        done = await asyncio.to_thread(wait_until, lambda: _finished_on(beta, download_id),
                                       90, "the download finished on beta")
        assert (done["node"], done["elsewhere"]) == ("beta", None)
        assert file_digests(finished) == torrent.digests
        assert f"its unfinished download(s) #{download_id} go back in the queue" in beta.output
        beta.signal(signal.SIGTERM)
        assert await asyncio.to_thread(beta.wait_exit) == 0
    record, completions = await _stored_download(postgresql_url, download_id)
    assert record is not None and record.node == "beta"
    assert completions == 1

    with ariabot_run(tmp_path / "a", alpha_env) as alpha:
        await asyncio.to_thread(alpha.wait_ready, 60)
        assert await asyncio.to_thread(_aria2_holds, alpha) == [], alpha.output
        assert not partial.exists()
        assert not partial.with_name("failover.bin.aria2").exists()
        (listed,) = await asyncio.to_thread(downloads, alpha)
        assert listed["node"] == "beta"
        assert listed["elsewhere"].startswith("on node beta, stopped ")
        assert f"#{download_id} was taken over by node 'beta'" in alpha.output
        assert "Traceback" not in alpha.output + beta.output
    assert file_digests(finished) == torrent.digests
    store = Store(postgresql_url)
    await store.open()
    try:
        assert await store.nodes.moves_from("alpha", _home(tmp_path / "a")) == []
    finally:
        await store.close()


@pytest.mark.postgresql
async def test_a_frozen_node_whose_download_was_taken_announces_nothing_when_it_wakes(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """alpha's ariabot is frozen (SIGSTOP) mid-download while its aria2c runs on and
    finishes. beta takes the download and finishes it too. alpha, woken, finds the
    finished download in its aria2c, but its writes are fenced: no second completion, the
    row stays beta's; it stops at its next heartbeat (exit 1), its aria2c with it. Started
    again later, alpha deletes the copy its aria2c had finished there."""
    torrent = swarm.add("frozen.bin", 4 * MiB, seed=44)
    alpha_env = _node_env(tmp_path / "downloads-a", "alpha", postgresql_url)
    beta_env = _node_env(tmp_path / "downloads-b", "beta", postgresql_url)
    alpha_copy = tmp_path / "downloads-a" / "torrents" / str(CHAT) / "frozen.bin"
    with ariabot_run(tmp_path / "a", alpha_env) as alpha:
        info = await asyncio.to_thread(alpha.wait_ready, 60)
        try:
            with swarm.throttled(64 * 1024):
                added = await asyncio.to_thread(cli, alpha, "add", torrent.magnet,
                                                "--chat", str(CHAT))
                assert added.returncode == 0, added.stderr
                (entry,) = await asyncio.to_thread(
                    wait_until, lambda: [d for d in downloads(alpha) if d["completed_bytes"]],
                    60, "alpha's first bytes")
                alpha.signal(signal.SIGSTOP)
            download_id = entry["id"]
            # Unthrottled, alpha's aria2c finishes the download while ariabot sleeps.
            await asyncio.to_thread(
                wait_until, lambda: file_digests(alpha_copy) == torrent.digests
                and not alpha_copy.with_name("frozen.bin.aria2").exists(), 60,
                "alpha's aria2c to finish on its own")
            await asyncio.to_thread(wait_until, lambda: _silent(postgresql_url, "alpha"), 30,
                                    "alpha past the heartbeat limit")
            with ariabot_run(tmp_path / "b", beta_env) as beta:
                await asyncio.to_thread(beta.wait_ready, 60)
                await asyncio.to_thread(wait_until, lambda: _finished_on(beta, download_id),
                                        90, "the download finished on beta",
                                        lambda: beta.output)
                alpha.signal(signal.SIGCONT)
                assert await asyncio.to_thread(alpha.wait_exit, 30) == 1
                assert "was replaced while this process was not heard from" in alpha.output
                assert not psutil.pid_exists(info["aria2c_pid"])
                record, completions = await _stored_download(postgresql_url, download_id)
                assert record is not None
                assert (record.node, completions) == ("beta", 1)
                assert not re.search(r"-> (seeding|complete)", alpha.output), alpha.output
                assert "Traceback" not in beta.output
                beta.signal(signal.SIGTERM)
                assert await asyncio.to_thread(beta.wait_exit) == 0
        finally:
            alpha.signal(signal.SIGCONT)

    with ariabot_run(tmp_path / "a", alpha_env) as alpha:
        await asyncio.to_thread(alpha.wait_ready, 60)
        assert await asyncio.to_thread(_aria2_holds, alpha) == []
        assert not alpha_copy.exists()
    assert file_digests(tmp_path / "downloads-b" / "torrents" / str(CHAT) / "frozen.bin") == (
        torrent.digests)


def _bot_env(server: FakeTelegramServer, download_dir: Path, name: str,
             url: str, **extra: str) -> dict[str, str]:
    return _node_env(download_dir, name, url, ARIABOT_TELEGRAM_TOKEN=DEFAULT_TOKEN,
                     ARIABOT_TELEGRAM_API_URL=server.url, ARIABOT_ALLOWED_USERS=str(USER),
                     **extra)


def _slots(count: int) -> dict[str, str]:
    """A node with ``count`` slots: the one with the most free slots claims new work."""
    return {"ARIABOT_MAX_CONCURRENT": str(count)}


async def _front_and_other(running: contextlib.ExitStack, server: FakeTelegramServer,
                           tmp_path: Path, url: str, *, claims: str, **extra: str
                           ) -> tuple[AriabotRun, AriabotRun]:
    """alpha started first, its bot up (the front), then beta: both ready. The node named
    by ``claims`` has one slot more than the other: new downloads go there."""
    alpha = running.enter_context(ariabot_run(tmp_path / "a", _bot_env(
        server, tmp_path / "downloads-a", "alpha", url,
        **_slots(4 if claims == "alpha" else 3), **extra)))
    await asyncio.to_thread(alpha.wait_ready, 60)
    await asyncio.to_thread(wait_until, lambda: "the Telegram bot @" in alpha.output, 30,
                            "alpha's bot")
    beta = running.enter_context(ariabot_run(tmp_path / "b", _bot_env(
        server, tmp_path / "downloads-b", "beta", url,
        **_slots(4 if claims == "beta" else 3), **extra)))
    await asyncio.to_thread(beta.wait_ready, 60)
    return alpha, beta


async def _answered_status(server: FakeTelegramServer, timeout: float) -> float:
    """Send /status from the user's chat; seconds until the bot answered it."""
    mark, started = server.mark(), time.monotonic()
    server.push_text(USER, USER, "/status")
    answer = await server.wait_for("sendMessage", lambda r: r.status == 200
                                   and r.params.get("chat_id") == USER, timeout, since=mark)
    return answer.time - started


@pytest.mark.postgresql
async def test_two_nodes_are_one_bot_and_the_other_takes_over_when_the_front_dies(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """alpha and beta run at once on one database with one token. Only the front (alpha,
    started first) receives updates: one answer per command, no 409 from Telegram. alpha
    is killed (-9) while it downloads a magnet sent in the chat: beta becomes the front and
    answers within 15 s, takes the download and finishes it, byte for byte; the chat is
    told of its completion once."""
    torrent = swarm.add("front.bin", 4 * MiB, seed=45)
    async with FakeTelegramServer() as server:
        with contextlib.ExitStack() as running:
            alpha, beta = await _front_and_other(running, server, tmp_path, postgresql_url,
                                                 claims="alpha")
            await asyncio.to_thread(wait_until, lambda: "another node is the front" in
                                    beta.output, 30, "beta to find alpha the front")
            await _answered_status(server, 10)
            with swarm.throttled(64 * 1024):
                mark = server.mark()
                server.push_text(USER, USER, torrent.magnet)
                await server.wait_for("sendMessage", lambda r: r.status == 200
                                      and "front.bin" in str(r.params.get("text")), 30,
                                      since=mark)
                (entry,) = await asyncio.to_thread(
                    wait_until, lambda: [d for d in downloads(alpha) if d["completed_bytes"]],
                    60, "alpha's first bytes")
                assert entry["node"] == "alpha"
                alpha.signal(signal.SIGKILL)
                await asyncio.to_thread(alpha.wait_exit)
            assert "the Telegram bot @" not in beta.output

            took = await _answered_status(server, 30)
            assert took < 15, f"beta answered {took:.1f} s after the front died"
            done = await asyncio.to_thread(
                wait_until, lambda: _finished_on(beta, entry["id"]), 90,
                "the download finished on beta", lambda: beta.output)
            assert done["node"] == "beta"
            assert file_digests(tmp_path / "downloads-b" / "torrents" / str(USER)
                                / "front.bin") == torrent.digests
            told = f"is downloaded (#{entry['id']})"
            await server.wait_for("sendMessage", lambda r: r.status == 200
                                  and told in str(r.params.get("text")), 30)
            beta.signal(signal.SIGTERM)
            assert await asyncio.to_thread(beta.wait_exit) == 0
    assert server.count("getUpdates", status=409) == 0
    assert len([r for r in server.requests_for("sendMessage")
                if told in str(r.params.get("text"))]) == 1
    assert "Traceback" not in alpha.output + beta.output


@pytest.mark.postgresql
async def test_postgresql_restarted_under_two_nodes_leaves_one_front_and_loses_nothing(
        tmp_path: Path, postgresql_server: PostgresServer, postgresql_url: str,
        swarm: Swarm) -> None:
    """alpha (the front) and beta each download a torrent of the chat (two added, spread
    by free slots: one each) when PostgreSQL restarts. The front's lock goes with its
    session: one node is the front again, it answers, both downloads finish on their
    nodes, and each completion is told once."""
    torrents = [swarm.add("pg-1.bin", 2 * MiB, seed=46), swarm.add("pg-2.bin", 2 * MiB, seed=47)]
    async with FakeTelegramServer() as server:
        envs = {name: _bot_env(server, tmp_path / f"downloads-{name}", name, postgresql_url)
                for name in ("alpha", "beta")}
        with contextlib.ExitStack() as running:
            runs = {}
            for name in ("alpha", "beta"):  # alpha first: the front
                runs[name] = running.enter_context(ariabot_run(tmp_path / name, envs[name]))
                await asyncio.to_thread(runs[name].wait_ready, 60)
            assert "the Telegram bot @" in runs["alpha"].output
            with swarm.throttled(64 * 1024):
                for torrent in torrents:
                    added = await asyncio.to_thread(cli, runs["alpha"], "add", torrent.magnet,
                                                    "--chat", str(USER))
                    assert added.returncode == 0, added.stderr
                placed = await asyncio.to_thread(wait_until, lambda: _placed(runs["alpha"], 2),
                                                 30, "both downloads claimed")
                assert sorted(placed.values()) == ["alpha", "beta"], placed
                await asyncio.to_thread(postgresql_server.restart)
                for name, run in runs.items():
                    await asyncio.to_thread(wait_until, lambda r=run: "lost with its database "
                                            "session" in r.output or "another node is the "
                                            "front" in r.output, 30, f"{name} to see it")
            await _answered_status(server, 30)
            ids = {}
            for torrent in torrents:
                name = placed[torrent.name]
                run = runs[name]
                (entry,) = [d for d in await asyncio.to_thread(downloads, run)
                            if d["name"] == torrent.name]
                assert entry["node"] == name  # it did not move
                ids[name] = entry["id"]
                await asyncio.to_thread(wait_until, lambda r=run, i=entry["id"]:
                                        _finished_on(r, i), 90, f"{name}'s download")
                folder = tmp_path / f"downloads-{name}" / "torrents" / str(USER)
                assert file_digests(folder / torrent.name) == torrent.digests
            for download_id in ids.values():
                await server.wait_for("sendMessage", lambda r, i=download_id: r.status == 200
                                      and f"is downloaded (#{i})" in str(r.params.get("text")),
                                      30)
            fronts = [name for name, run in runs.items()
                      if run.output.count("this node is the front") >
                      run.output.count("stops talking to Telegram")]
            assert len(fronts) == 1, {n: r.output for n, r in runs.items()}
            for run in runs.values():
                run.signal(signal.SIGTERM)
                assert await asyncio.to_thread(run.wait_exit) == 0
    for download_id in ids.values():
        told = [r for r in server.requests_for("sendMessage")
                if f"is downloaded (#{download_id})" in str(r.params.get("text"))]
        assert len(told) == 1
    assert server.count("getUpdates", status=409) == 0
    assert "Traceback" not in "".join(run.output for run in runs.values())


@pytest.mark.postgresql
async def test_a_frozen_front_is_replaced_and_steps_down_when_it_wakes(
        tmp_path: Path, postgresql_url: str) -> None:
    """alpha, the front, is frozen (SIGSTOP): its session, and so its lock, live on. Once its
    heartbeat is past the limit, beta ends that session, becomes the front and answers.
    alpha, woken, finds its lock gone, stops its bot and runs on as a node; a command is
    then answered once."""
    async with FakeTelegramServer() as server:
        with contextlib.ExitStack() as running:
            alpha, beta = await _front_and_other(running, server, tmp_path, postgresql_url,
                                                 claims="alpha")
            alpha.signal(signal.SIGSTOP)
            try:
                took = await _answered_status(server, 30)
                assert took < DEAD_AFTER + 10, f"beta answered {took:.1f} s after the freeze"
                assert "its session was ended, and this node takes over" in beta.output
            finally:
                alpha.signal(signal.SIGCONT)
            await asyncio.to_thread(wait_until, lambda: "no longer talks to Telegram" in
                                    alpha.output, 30, "alpha to step down")
            mark = server.mark()
            await _answered_status(server, 10)
            server.push_text(USER, USER, "/help")  # answered after /status by the front
            await server.wait_for("sendMessage", lambda r: r.status == 200
                                  and "/status" in str(r.params.get("text")), 10, since=mark)
            statuses = [r for r in server.requests[mark:] if r.method == "sendMessage"
                        and r.status == 200 and "Downloads" in str(r.params.get("text"))]
            assert len(statuses) == 1, statuses
            assert alpha.process is not None and alpha.process.poll() is None  # runs on
            assert "Traceback" not in alpha.output + beta.output


async def _said(server: FakeTelegramServer, text: str) -> str:
    """Send ``text`` from the user's chat; the bot's answer."""
    mark = server.mark()
    server.push_text(USER, USER, text)
    answer = await server.wait_for("sendMessage", lambda r: r.status == 200
                                   and r.params.get("chat_id") == USER, 30, since=mark)
    return str(answer.params["text"])


def _aria2_status(run: AriabotRun, info_hash: str) -> str | None:
    """The status of the torrent's real download in the node's own aria2c (None: absent)."""
    info = run.runtime()
    assert info is not None
    keys = ["status", "infoHash", "numPieces"]
    answers = [rpc(info["rpc_port"], method, *params, keys, secret=info["rpc_secret"])
               for method, params in (("aria2.tellActive", ()),
                                      ("aria2.tellWaiting", (0, 1000)),
                                      ("aria2.tellStopped", (0, 1000)))]
    return next((entry["status"] for answer in answers for entry in answer["result"]
                 if entry.get("infoHash") == info_hash and int(entry.get("numPieces", 0))),
                None)


async def _running_on(node: AriabotRun, magnet: str) -> dict[str, Any]:
    """Add ``magnet`` to the user's chat from ``node``'s command line; its entry once the
    first bytes came (the node's only download)."""
    added = await asyncio.to_thread(cli, node, "add", magnet, "--chat", str(USER))
    assert added.returncode == 0, added.stderr
    (entry,) = await asyncio.to_thread(
        wait_until, lambda: [d for d in downloads(node) if d["completed_bytes"]], 60,
        "the first bytes")
    return entry


@pytest.mark.postgresql
async def test_actions_from_the_chat_reach_the_node_that_holds_the_download(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """alpha is the front; the chat's download runs on beta (which has more free slots:
    it claims it). /pause and
    /resume in the chat, and then a cancel with its files from alpha's command line, are
    done by beta's aria2c and on beta's disk; the answers are the usual ones. Once beta has
    stopped, the same action is refused with where the download is, and nothing changes."""
    torrent = swarm.add("routed.bin", 4 * MiB, seed=48)
    async with FakeTelegramServer() as server:
        with contextlib.ExitStack() as running, swarm.throttled(64 * 1024):
            alpha, beta = await _front_and_other(running, server, tmp_path, postgresql_url,
                                                 claims="beta")
            entry = await _running_on(beta, torrent.magnet)
            number = entry["id"]
            on_beta = tmp_path / "downloads-b" / "torrents" / str(USER) / "routed.bin"

            assert await _said(server, f"/pause {number}") == f"⏸ #{number} is paused."
            assert await asyncio.to_thread(_aria2_status, beta, torrent.info_hash) == "paused"
            assert await _said(server, f"/resume {number}") == f"▶ #{number} is resumed."
            assert await asyncio.to_thread(_aria2_status, beta, torrent.info_hash) in (
                "active", "waiting")
            assert "asked of this node: done" in beta.output

            cancelled = await asyncio.to_thread(cli, alpha, "cancel", str(number),
                                                "--delete-files")
            assert cancelled.returncode == 0, cancelled.stderr
            assert await asyncio.to_thread(_aria2_status, beta, torrent.info_hash) is None
            assert not on_beta.exists()
            (row,) = [d for d in await asyncio.to_thread(downloads, alpha)
                      if d["id"] == number]
            assert (row["state"], row["node"]) == ("cancelled", "beta")

            later = swarm.add("routed-2.bin", 1 * MiB, seed=49)
            added = await asyncio.to_thread(cli, beta, "add", later.magnet, "--chat",
                                            str(USER))
            assert added.returncode == 0, added.stderr
            (second,) = await asyncio.to_thread(
                wait_until, lambda: [d["id"] for d in downloads(beta)
                                     if d["id"] != number and d["node"] == "beta"], 30,
                "beta to claim the second download")
            beta.signal(signal.SIGTERM)
            assert await asyncio.to_thread(beta.wait_exit) == 0
            said = await _said(server, f"/pause {second}")
            assert said.startswith(f"#{second} is on node beta, stopped "), said
            (row,) = [d for d in await asyncio.to_thread(downloads, alpha)
                      if d["id"] == second]
            assert row["state"] != "paused"
            assert "Traceback" not in alpha.output + beta.output


@pytest.mark.postgresql
async def test_an_action_on_a_download_of_a_node_just_killed_is_refused_without_the_wait(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """beta holds the chat's download and is killed (-9); its heartbeat is not past the
    limit yet (60 s here), so it still reads as online. /pause of the download is refused,
    nothing done, as soon as alpha finds beta's listening session gone from the database:
    not after the whole wait an owner is given to answer (found by a helper's trial: Stop
    or Send just after a kill waited 15 s)."""
    torrent = swarm.add("killed-owner.bin", 4 * MiB, seed=50)
    async with FakeTelegramServer() as server:
        with contextlib.ExitStack() as running, swarm.throttled(64 * 1024):
            alpha, beta = await _front_and_other(running, server, tmp_path, postgresql_url,
                                                 claims="beta", ARIABOT_NODE_DEAD_AFTER="60")
            entry = await _running_on(beta, torrent.magnet)
            beta.signal(signal.SIGKILL)
            await asyncio.to_thread(beta.wait_exit)
            started = time.monotonic()
            said = await _said(server, f"/pause {entry['id']}")
            took = time.monotonic() - started
            assert said == (f"#{entry['id']} is on node beta, which did not answer; nothing "
                            "was done."), said
            assert took < ANSWER_WAIT, f"refused after {took:.1f} s, the whole wait"
            print(f"\nFIGURES an action on a node just killed refused after {took:.1f} s")
            (row,) = [d for d in await asyncio.to_thread(downloads, alpha)
                      if d["id"] == entry["id"]]
            assert (row["state"], row["node"]) == ("downloading", "beta")
            assert "Traceback" not in alpha.output


@pytest.mark.postgresql
async def test_a_feed_subscribed_on_another_node_is_read_by_the_front_on_its_schedule(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """``ariabot rss add`` on beta stores the feed; alpha, the front, reads the feeds. The
    item published right after is added within the feed's interval (1 s here) and its
    read: the store's announcement wakes alpha's schedule. Found by the nodes' promises
    machine: alpha, with no feed yet, slept its longest nap, 60 s."""
    torrent = swarm.add("fed.bin", MiB, seed=51)
    async with FakeTelegramServer() as server, FeedSite() as feeds, TorrentSite(
            {"fed": torrent.torrent_bytes}, magnet=torrent.magnet, too_large=1) as site:
        feeds.feeds["catalog"] = nyaa([])
        with contextlib.ExitStack() as running:
            alpha, beta = await _front_and_other(
                running, server, tmp_path, postgresql_url, claims="beta",
                ARIABOT_FEED_INTERVAL="1", ARIABOT_FETCH_ALLOW_NETWORKS="127.0.0.1/32")
            added = await asyncio.to_thread(cli, beta, "rss", "--chat", str(USER), "add",
                                            feeds.url("/feeds/catalog"), "catalog")
            assert added.returncode == 0, added.stderr
            feeds.feeds["catalog"] = nyaa([FakeItem(
                title="fed.bin", guid="https://catalog.example/fed",
                torrent_url=site.url("/files/fed.torrent"), info_hash=torrent.info_hash,
                size=torrent.total_bytes)])
            published = time.monotonic()
            await asyncio.to_thread(wait_until, lambda: [
                d for d in downloads(beta) if d["name"] == "fed.bin"], 60, "the feed's add")
            took = time.monotonic() - published
            assert took < 20, f"the item was added {took:.0f} s after it was published"
            print(f"\nFIGURES a feed subscribed on another node: its item added {took:.1f} s "
                  "after it was published")
            assert "Traceback" not in alpha.output + beta.output


@pytest.mark.postgresql
async def test_an_outage_of_postgresql_longer_than_the_limit_kills_no_node(
        tmp_path: Path, postgresql_server: PostgresServer, postgresql_url: str,
        swarm: Swarm) -> None:
    """Three nodes, two of them downloading, and PostgreSQL away for three times the
    heartbeat limit: when it is back, every node's last heartbeat is as old as the outage,
    yet none is taken for dead. No download moves, no node stops."""
    torrents = [swarm.add(f"outage-{n}.bin", 4 * MiB, seed=50 + n) for n in range(2)]
    with contextlib.ExitStack() as running, swarm.throttled(32 * 1024):
        runs = {}
        for name in ("alpha", "beta", "gamma"):
            runs[name] = running.enter_context(ariabot_run(tmp_path / name, _env(
                tmp_path / f"downloads-{name}", ARIABOT_NODE_NAME=name,
                ARIABOT_DATABASE_URL=postgresql_url)))
        for run in runs.values():
            await asyncio.to_thread(run.wait_ready, 60)
        for torrent in torrents:
            added = await asyncio.to_thread(cli, runs["alpha"], "add", torrent.magnet)
            assert added.returncode == 0, added.stderr
        placed = await asyncio.to_thread(wait_until, lambda: _placed(runs["gamma"], 2), 30,
                                         "both downloads claimed")
        assert len(set(placed.values())) == 2, placed  # spread by free slots
        with postgresql_server.outage():
            await asyncio.to_thread(wait_until, lambda: all(
                "the heartbeat cannot be written" in run.output for run in runs.values()),
                30, "every node to miss its heartbeat")
            await asyncio.sleep(3 * DEAD_AFTER)  # the outage's length (not a wait for anything)
        await asyncio.to_thread(wait_until, lambda: all(
            "the heartbeat is written again" in run.output for run in runs.values()), 60,
            "every node to be heard again")
        # The window in which a node back first would take the others' downloads: a whole
        # limit, and the looks that follow it (nothing to wait for: what must not happen).
        await asyncio.sleep(2 * DEAD_AFTER)
        for run in runs.values():
            assert run.process is not None and run.process.poll() is None, run.output
            assert "is dead (not heard from" not in run.output, run.output
        assert await asyncio.to_thread(_placed, runs["gamma"], 2) == placed


def _by_name(run: AriabotRun) -> dict[str, dict]:
    return {d["name"]: d for d in downloads(run)}


@pytest.mark.postgresql
async def test_three_nodes_spread_the_downloads_by_free_slots_in_the_queues_order(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """Three nodes of one slot each; five downloads added on alpha. The first three go one
    to each node; the other two wait without a node, and the list says so. The fifth is
    paused while it waits. A cancel (with its files) from gamma's command line frees the
    slot of the first download's node, which claims the fourth (the oldest waiting one
    that is not paused). Resumed, the fifth goes to the first node that finishes. All four
    finish where they were claimed, byte for byte; nothing was written for the cancelled
    one anywhere."""
    torrents = [swarm.add(f"spread-{n}.bin", 2 * MiB, seed=60 + n) for n in range(5)]
    names = [t.name for t in torrents]
    runs: dict[str, AriabotRun] = {}
    with contextlib.ExitStack() as running:
        for name in ("alpha", "beta", "gamma"):
            runs[name] = running.enter_context(ariabot_run(tmp_path / name, _node_env(
                tmp_path / f"downloads-{name}", name, postgresql_url, **_slots(1))))
        for run in runs.values():
            await asyncio.to_thread(run.wait_ready, 60)
        alpha = runs["alpha"]
        ids = {}
        with swarm.throttled(48 * 1024):
            for torrent in torrents:
                added = await asyncio.to_thread(cli, alpha, "add", torrent.magnet, "--json")
                assert added.returncode == 0, added.stderr
                ids[torrent.name] = json.loads(added.stdout)["id"]
                if len(ids) == 3:  # three running, one on each node
                    placed = await asyncio.to_thread(wait_until, lambda: _placed(alpha, 3),
                                                     30, "the first three claimed")
                    assert sorted(placed.values()) == ["alpha", "beta", "gamma"], placed
            listed = await asyncio.to_thread(_by_name, alpha)
            for name in names[3:]:
                assert (listed[name]["node"], listed[name]["state"]) == (None, "queued")
                assert listed[name]["elsewhere"] == (
                    "waiting for a node with a free slot and room for it")
            paused = await asyncio.to_thread(cli, alpha, "pause", str(ids[names[4]]))
            assert paused.returncode == 0, paused.stderr

            first_node = placed[names[0]]
            cancelled = await asyncio.to_thread(cli, runs["gamma"], "cancel",
                                                str(ids[names[0]]), "--delete-files")
            assert cancelled.returncode == 0, cancelled.stderr
            fourth = await asyncio.to_thread(
                wait_until, lambda: _by_name(alpha)[names[3]]["node"], 30,
                "the fourth claimed")
            assert fourth == first_node
            listed = await asyncio.to_thread(_by_name, alpha)
            assert (listed[names[4]]["node"], listed[names[4]]["state"]) == (None, "paused")
            resumed = await asyncio.to_thread(cli, runs["beta"], "resume", str(ids[names[4]]))
            assert resumed.returncode == 0, resumed.stderr
            assert (await asyncio.to_thread(_by_name, alpha))[names[4]]["state"] == "queued"
        # Unthrottled: the three running finish, and the fifth is claimed by the first free.
        finished = await asyncio.to_thread(wait_until, lambda: _all_finished(alpha, names[1:]),
                                           120, "all four finished")
        for torrent in torrents[1:]:
            folder = tmp_path / f"downloads-{finished[torrent.name]['node']}" / "torrents" / "0"
            assert file_digests(folder / torrent.name) == torrent.digests
        assert finished[names[0]]["state"] == "cancelled"
        for name in ("alpha", "beta", "gamma"):
            assert not (tmp_path / f"downloads-{name}" / "torrents" / "0" / names[0]).exists()
        assert "Traceback" not in "".join(run.output for run in runs.values())


def _all_finished(run: AriabotRun, names: list[str]) -> dict[str, dict] | None:
    listed = _by_name(run)
    return listed if all(listed[name]["completed_at"] for name in names) else None


@pytest.mark.postgresql
async def test_the_progress_message_of_a_download_on_another_node_moves(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """A magnet sent in the chat goes to beta (more free slots) while alpha is the front:
    alpha's bot edits the download's progress message as beta downloads it, long before
    the end, and the completion is told once. Red before: the message stayed as it was
    first sent until the completion."""
    torrent = swarm.add("moving.bin", 4 * MiB, seed=70)
    async with FakeTelegramServer() as server:
        with contextlib.ExitStack() as running:
            alpha, beta = await _front_and_other(running, server, tmp_path, postgresql_url,
                                                 claims="beta")
            with swarm.throttled(32 * 1024):
                mark = server.mark()
                server.push_text(USER, USER, torrent.magnet)
                reply = await server.wait_for("sendMessage", lambda r: r.status == 200
                                              and "moving.bin" in str(r.params.get("text")),
                                              30, since=mark)
                message_id = reply.response["result"]["message_id"]
                edited = await server.wait_for(
                    "editMessageText", lambda r: r.status == 200
                    and r.params.get("message_id") == message_id
                    and "Downloading" in str(r.params.get("text")), 40, since=mark)
                (entry,) = await asyncio.to_thread(downloads, alpha)
                assert entry["node"] == "beta" and not entry["completed_at"]
                assert re.search(r"\d+%", str(edited.params["text"])), edited.params["text"]
            done = await asyncio.to_thread(wait_until, lambda: _finished_on(beta, entry["id"]),
                                           90, "the download finished on beta")
            assert done["node"] == "beta"
            told = f"is downloaded (#{entry['id']})"
            await server.wait_for("sendMessage", lambda r: r.status == 200
                                  and told in str(r.params.get("text")), 30)
            assert "Traceback" not in alpha.output + beta.output
    assert len([r for r in server.requests_for("sendMessage")
                if told in str(r.params.get("text"))]) == 1


@pytest.mark.postgresql
async def test_a_link_and_a_mirror_of_a_download_on_another_node_are_made_there(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """Each node has its own public URL, link key and rclone destination. A download that
    beta holds gets, from alpha's command line, a link signed by beta at beta's URL, which
    beta's link server serves (alpha's refuses it), and a mirror uploaded by beta's rclone
    to beta's destination, byte for byte. Red before: both refused with where it is."""
    require_rclone()
    torrent = swarm.add("shared.bin", 1 * MiB, seed=71)
    ports = {name: free_port() for name in ("alpha", "beta")}
    runs: dict[str, AriabotRun] = {}
    with contextlib.ExitStack() as running:
        for name in ("alpha", "beta"):
            config = write_rclone_config(tmp_path / f"rclone-{name}.conf")
            runs[name] = running.enter_context(ariabot_run(tmp_path / name, _node_env(
                tmp_path / f"downloads-{name}", name, postgresql_url,
                **_slots(4 if name == "beta" else 3),
                ARIABOT_PUBLIC_URL=f"https://{name}.example.org/files",
                ARIABOT_HTTP_LISTEN=f"127.0.0.1:{ports[name]}",
                ARIABOT_RCLONE_CONFIG=str(config),
                ARIABOT_RCLONE_REMOTE=f"nas:{tmp_path / f'cloud-{name}'}")))
        for run in runs.values():
            await asyncio.to_thread(run.wait_ready, 60)
        alpha = runs["alpha"]
        added = await asyncio.to_thread(cli, alpha, "add", torrent.magnet, "--json")
        assert added.returncode == 0, added.stderr
        number = json.loads(added.stdout)["id"]
        done = await asyncio.to_thread(wait_until, lambda: _finished_on(alpha, number), 60,
                                       "the download finished")
        assert done["node"] == "beta"

        made = await asyncio.to_thread(cli, alpha, "link", str(number), "--json")
        assert made.returncode == 0, made.stderr
        url = json.loads(made.stdout)["url"]
        assert url.startswith("https://beta.example.org/files/d/"), url
        path = url.removeprefix("https://beta.example.org/files")
        page = await asyncio.to_thread(_get, f"http://127.0.0.1:{ports['beta']}{path}")
        assert page[0] == 200 and b"shared.bin" in page[1]
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{ports['alpha']}{path}"))[0] in (
            403, 404, 410)

        mirrored = await asyncio.to_thread(cli, alpha, "mirror", str(number))
        assert mirrored.returncode == 0, mirrored.stderr
        place = f"0/{number}-{torrent.info_hash[:8]}"  # the chat, then the download's own
        uploaded = tmp_path / "cloud-beta" / place / "shared.bin"
        await asyncio.to_thread(wait_until, lambda: uploaded.exists()
                                and file_digests(uploaded) == torrent.digests, 60,
                                "beta's rclone to upload it")
        assert not (tmp_path / "cloud-alpha").exists()
        assert "Traceback" not in "".join(run.output for run in runs.values())


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.postgresql
async def test_a_claimed_torrent_never_writes_over_a_users_file_of_its_name(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """A user's own file has the name of a .torrent added on a PostgreSQL node. The node
    that claims it finds the name taken in its folder: the download fails with why, and
    the user's file is untouched. Red before: the claimed row counted as owning the name,
    and aria2 checked and overwrote the file."""
    torrent = swarm.add("report.pdf", 1 * MiB, seed=72)
    env = _node_env(tmp_path / "downloads", "alpha", postgresql_url)
    mine = tmp_path / "downloads" / "torrents" / "0" / "report.pdf"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"the user's own report\n")
    with ariabot_run(tmp_path / "a", env) as alpha:
        await asyncio.to_thread(alpha.wait_ready, 60)
        added = await asyncio.to_thread(cli, alpha, "add",
                                        str(torrent.write_torrent(tmp_path)), "--json")
        assert added.returncode == 0, added.stderr
        number = json.loads(added.stdout)["id"]
        failed = await asyncio.to_thread(wait_until, lambda: next(
            (d for d in downloads(alpha) if d["id"] == number and d["state"] == "error"),
            None), 30, "the claimed download to fail")
        assert "already in this chat's folder" in failed["error"], failed
        assert mine.read_bytes() == b"the user's own report\n"
        assert "Traceback" not in alpha.output


@pytest.mark.postgresql
async def test_a_node_back_before_its_taken_download_restarted_elsewhere_deletes_its_data(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """alpha is killed mid-download; beta, its one slot busy, puts the download back in the
    queue, where it waits (paused, so that alpha does not claim it again). alpha, back,
    still deletes the data it had written, though the row says nothing of it any more (a
    magnet without its size). Red before: 'it never wrote them', and they stayed."""
    torrent = swarm.add("back-early.bin", 4 * MiB, seed=73)
    partial = tmp_path / "downloads-a" / "torrents" / "0" / "back-early.bin"
    alpha_env = _node_env(tmp_path / "downloads-a", "alpha", postgresql_url, **_slots(1))
    with ariabot_run(tmp_path / "b", _node_env(tmp_path / "downloads-b", "beta",
                                               postgresql_url, **_slots(1))) as beta:
        await asyncio.to_thread(beta.wait_ready, 60)
        busy = await asyncio.to_thread(cli, beta, "add", swarm.dead_magnet("busy"))
        assert busy.returncode == 0, busy.stderr
        await asyncio.to_thread(wait_until, lambda: _placed(beta, 1), 30, "beta's slot taken")
        with swarm.throttled(64 * 1024), ariabot_run(tmp_path / "a", alpha_env) as alpha:
            await asyncio.to_thread(alpha.wait_ready, 60)
            added = await asyncio.to_thread(cli, alpha, "add", torrent.magnet, "--json")
            assert added.returncode == 0, added.stderr
            number = json.loads(added.stdout)["id"]
            await asyncio.to_thread(wait_until, lambda: [
                d for d in downloads(alpha) if d["id"] == number and d["completed_bytes"]],
                60, "alpha's first bytes")
            alpha.signal(signal.SIGKILL)
            await asyncio.to_thread(alpha.wait_exit)
        assert partial.exists()
        await asyncio.to_thread(wait_until, lambda: [
            d for d in downloads(beta) if d["id"] == number and d["node"] is None], 30,
            "the download back in the queue")
        paused = await asyncio.to_thread(cli, beta, "pause", str(number))
        assert paused.returncode == 0, paused.stderr
        with ariabot_run(tmp_path / "a", alpha_env) as alpha:
            await asyncio.to_thread(alpha.wait_ready, 60)
            assert await asyncio.to_thread(_aria2_holds, alpha) == []
            assert not partial.exists(), alpha.output
            assert not partial.with_name("back-early.bin.aria2").exists()
            (row,) = [d for d in await asyncio.to_thread(downloads, alpha) if d["id"] == number]
            assert (row["node"], row["state"]) == (None, "paused")
            assert "Traceback" not in alpha.output + beta.output


async def _said_with_markup(server: FakeTelegramServer, text: str) -> Any:
    """Send ``text`` from the user's chat; the bot's answer (its request, buttons and all)."""
    mark = server.mark()
    server.push_text(USER, USER, text)
    return await server.wait_for("sendMessage", lambda r: r.status == 200
                                 and r.params.get("chat_id") == USER, 30, since=mark)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()  # as the swarm's digests


@pytest.mark.postgresql
async def test_send_from_the_chat_is_done_by_the_node_with_the_files_and_all_stay_paced(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """Three nodes with one slot each, alpha the front: three downloads finish one on each
    node. beta's /files list is asked of beta. "Send" pressed under two completion messages
    and under beta's file in its list, at once: each file reaches the chat byte for byte,
    uploaded by the node whose disk has it (beta's and gamma's logs say so), and the three
    nodes together get no 429 from Telegram: their turns in the chat are taken in the
    database. Stop of a send another node made is asked of that node. Once gamma has
    stopped, Send of its download says where it is and sends nothing. Red before: the other
    nodes' sends were refused with where the download is; without the shared turns, 429s."""
    torrents = [swarm.add(f"sent-{n}.bin", 256 * 1024, seed=80 + n) for n in range(3)]
    async with FakeTelegramServer() as server:
        with contextlib.ExitStack() as running:
            runs: dict[str, AriabotRun] = {}
            for name in ("alpha", "beta", "gamma"):
                runs[name] = running.enter_context(ariabot_run(tmp_path / name, _bot_env(
                    server, tmp_path / f"downloads-{name}", name, postgresql_url,
                    **_slots(1))))
                await asyncio.to_thread(runs[name].wait_ready, 60)
            alpha = runs["alpha"]
            await asyncio.to_thread(wait_until, lambda: "the Telegram bot @" in alpha.output,
                                    30, "alpha's bot")
            with swarm.throttled(64 * 1024):  # each claimed before the first one ends
                for torrent in torrents:
                    added = await asyncio.to_thread(cli, alpha, "add", torrent.magnet,
                                                    "--chat", str(USER))
                    assert added.returncode == 0, added.stderr
                placed = await asyncio.to_thread(wait_until, lambda: _placed(alpha, 3), 30,
                                                 "the three claimed")
            assert sorted(placed.values()) == ["alpha", "beta", "gamma"], placed
            finished = await asyncio.to_thread(
                wait_until, lambda: _all_finished(alpha, [t.name for t in torrents]), 90,
                "all three finished")
            told = {}
            for torrent in torrents:
                number = finished[torrent.name]["id"]
                notice = await server.wait_for(
                    "sendMessage", lambda r, n=number: r.status == 200
                    and f"is downloaded (#{n})" in str(r.params.get("text")), 30)
                told[torrent.name] = (number, notice.response["result"]["message_id"])

            # beta's one file from its /files list (asked of beta), the others' "Send all".
            on_beta = told[next(t for t, p in placed.items() if p == "beta")]
            listed = await _said_with_markup(server, f"/files {on_beta[0]}")
            assert "sent-" in listed.params["text"], listed.params
            (button,) = [b["callback_data"] for row in listed.params["reply_markup"][
                "inline_keyboard"] for b in row if b["callback_data"].startswith("sendfile:")]
            presses = {number: (message_id, callback_data("send", number))
                       for number, message_id in told.values()}
            presses[on_beta[0]] = (listed.response["result"]["message_id"], button)
            mark = server.mark()
            for message_id, data in presses.values():
                server.push_callback(USER, USER, message_id, data)
            await server.wait_until(
                lambda: len([r for r in server.requests[mark:] if r.method == "sendDocument"
                             and r.status == 200]) >= 3, timeout=60, what="three uploads")
            uploads = {r.params["document"].filename: r.params["document"].data
                       for r in server.requests[mark:]
                       if r.method == "sendDocument" and r.status == 200}
            assert {name: _digest(data) for name, data in uploads.items()} == {
                t.name: t.digests[t.name] for t in torrents}
            for name in ("beta", "gamma"):
                number = finished[next(t for t, p in placed.items() if p == name)]["id"]
                await asyncio.to_thread(
                    wait_until, lambda n=number, r=runs[name]: f"sending #{n} to chat {USER}: "
                    "done" in r.output, 30, f"{name} to say it sent its file")
            assert server.too_many == 0

            on_gamma = finished[next(t for t, p in placed.items() if p == "gamma")]["id"]
            mark = server.mark()
            stop = server.push_callback(USER, USER, told[next(
                t for t, p in placed.items() if p == "gamma")][1],
                callback_data("unsend", on_gamma))
            answered = await server.wait_for(
                "answerCallbackQuery", lambda r: r.params.get("callback_query_id")
                == stop["callback_query"]["id"], 30, since=mark)
            assert answered.params.get("text") == f"Nothing of #{on_gamma} is being sent."
            await asyncio.to_thread(wait_until, lambda: "stop-send asked of this node: done"
                                    in runs["gamma"].output, 30, "gamma to be asked")

            runs["gamma"].signal(signal.SIGTERM)
            assert await asyncio.to_thread(runs["gamma"].wait_exit) == 0
            mark = server.mark()
            press = server.push_callback(USER, USER, told[next(
                t for t, p in placed.items() if p == "gamma")][1], callback_data("send", on_gamma))
            answered = await server.wait_for(
                "answerCallbackQuery", lambda r: r.params.get("callback_query_id")
                == press["callback_query"]["id"], 30, since=mark)
            assert str(answered.params.get("text")).startswith(
                f"#{on_gamma} is on node gamma, stopped "), answered.params
            assert server.count("sendDocument") == 3
            assert "Traceback" not in "".join(run.output for run in runs.values())


def _app(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The Mini App's API of the node listening on ``port``, asked as the user's page asks."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/app/{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"tma {init_data(USER)}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


@pytest.mark.postgresql
async def test_the_mini_app_on_the_front_acts_on_a_download_another_node_holds(
        tmp_path: Path, postgresql_url: str, swarm: Swarm) -> None:
    """The page (alpha's Mini App, alpha the front) lists a download beta holds with where
    it is and its buttons; its files are asked of beta; Pause and Resume are done by beta's
    aria2c. Red before: no button for another node's download, and its files refused."""
    torrent = swarm.add("app-routed.bin", 4 * MiB, seed=90)
    port = free_port()
    async with FakeTelegramServer() as server:
        with contextlib.ExitStack() as running, swarm.throttled(48 * 1024):
            alpha = running.enter_context(ariabot_run(tmp_path / "a", _bot_env(
                server, tmp_path / "downloads-a", "alpha", postgresql_url, **_slots(3),
                ARIABOT_PUBLIC_URL="https://127.0.0.1:9",
                ARIABOT_HTTP_LISTEN=f"127.0.0.1:{port}")))
            await asyncio.to_thread(alpha.wait_ready, 60)
            await asyncio.to_thread(wait_until, lambda: "the Telegram bot @" in alpha.output,
                                    30, "alpha's bot")
            beta = running.enter_context(ariabot_run(tmp_path / "b", _bot_env(
                server, tmp_path / "downloads-b", "beta", postgresql_url, **_slots(4))))
            await asyncio.to_thread(beta.wait_ready, 60)
            added = await asyncio.to_thread(cli, alpha, "add", torrent.magnet, "--chat",
                                            str(USER), "--json")
            assert added.returncode == 0, added.stderr
            number = json.loads(added.stdout)["id"]
            await asyncio.to_thread(wait_until, lambda: _by_name(alpha)[torrent.name][
                "state"] == "downloading", 60, "beta downloading it (its metadata known)")

            status, listed = await asyncio.to_thread(_app, port, "GET", "api/downloads")
            assert status == 200, listed
            (shown,) = [d for d in listed["downloads"] if d["id"] == number]
            assert (shown["elsewhere"], shown["may_act"]) == ("on node beta", True), shown
            status, files = await asyncio.to_thread(
                _app, port, "GET", f"api/downloads/{number}/files")
            assert status == 200 and [f["path"] for f in files["files"]] == [torrent.name]

            status, paused = await asyncio.to_thread(
                _app, port, "POST", f"api/downloads/{number}/pause")
            assert status == 200, paused
            assert await asyncio.to_thread(_aria2_status, beta, torrent.info_hash) == "paused"
            status, resumed = await asyncio.to_thread(
                _app, port, "POST", f"api/downloads/{number}/resume")
            assert status == 200, resumed
            assert await asyncio.to_thread(_aria2_status, beta, torrent.info_hash) in (
                "active", "waiting")
            assert "Traceback" not in alpha.output + beta.output
