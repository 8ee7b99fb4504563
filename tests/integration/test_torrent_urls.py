"""A ``.torrent`` given by its link, end to end: ``ariabot add <url>``, a link pasted in a chat
and ``/torrent <url>`` (the fake Bot API server), fetched by the running ariabot from a web
site on 127.0.0.1 (tests/fakes/torrentsite.py), downloaded from the local swarm.

These ariabots allow 127.0.0.1/32 (``ARIABOT_FETCH_ALLOW_NETWORKS``), as a user with a Jackett
on the same machine would; the one that does not shows that the site is never reached.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from manager.store import Store
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer
from tests.fakes.torrentsite import TorrentSite
from tests.integration.test_bot import LONG, USER, _download_id
from tests.integration.test_cli import cli, downloads
from tests.runner import AriabotRun
from tests.swarm import Swarm, SwarmTorrent

CAP = 64 * 1024
"""``ARIABOT_TORRENT_MAX_BYTES`` here: /big.torrent and /stream.torrent are larger."""


async def _add(run: AriabotRun, url: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, run, "add", url, "--json")


async def _ids(run: AriabotRun) -> set[int]:
    return {row["id"] for row in await asyncio.to_thread(downloads, run)}


async def _stored_source(data_dir: Path, download_id: int) -> tuple[str, bytes] | None:
    store = Store(f"sqlite:///{data_dir / 'ariabot.db'}")
    await store.open()
    try:
        return await store.downloads.source(download_id)
    finally:
        await store.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"ARIABOT_DOWNLOAD_DIR": str(tmp_path / "downloads"), "ARIABOT_SEED_TIME": "0",
            "ARIABOT_TORRENT_MAX_BYTES": str(CAP), **extra}


async def test_a_torrent_link_is_fetched_stored_as_its_bytes_and_downloaded(
        tmp_path: Path, swarm: Swarm) -> None:
    first = swarm.add("by-link.bin", 256 * 1024, seed=2601)
    other = swarm.add("by-redirect.bin", 256 * 1024, seed=2602)
    behind = swarm.add("behind-redirect.bin", 256 * 1024, seed=2603)
    site = TorrentSite({"first": first.torrent_bytes, "other": other.torrent_bytes},
                       magnet=behind.magnet, too_large=CAP)
    async with site:
        run = AriabotRun(tmp_path / "data",
                         _env(tmp_path, ARIABOT_FETCH_ALLOW_NETWORKS="127.0.0.1/32")).start()
        try:
            await asyncio.to_thread(run.wait_ready, 60)
            added = await _add(run, site.url("/files/first.torrent"))
            assert added.returncode == 0, added.stderr
            torrent = json.loads(added.stdout)
            assert torrent["name"] == "by-link.bin"
            assert await _stored_source(run.data_dir, torrent["id"]) == (
                "torrent", first.torrent_bytes)  # the file's bytes, not the link
            done = await asyncio.to_thread(cli, run, "wait", str(torrent["id"]))
            assert done.returncode == 0, done.stdout + done.stderr
            assert _complete(tmp_path / "downloads", first)

            relative = await _add(run, site.url("/relative"))  # -> files/first.torrent
            assert relative.returncode == 0, relative.stderr
            assert json.loads(relative.stdout)["id"] == torrent["id"]  # already listed

            magnet = await _add(run, site.url("/magnet.torrent"))
            assert magnet.returncode == 0, magnet.stderr
            assert json.loads(magnet.stdout)["info_hash"] == behind.info_hash
        finally:
            await asyncio.to_thread(run.stop)
    assert "Traceback" not in run.output


async def test_every_bad_link_is_one_clear_line_and_adds_nothing(
        tmp_path: Path, swarm: Swarm) -> None:
    first = swarm.add("bad-links.bin", 128 * 1024, seed=2604)
    site = TorrentSite({"first": first.torrent_bytes}, magnet=first.magnet, too_large=CAP)
    cases = {
        "/login.torrent": "it served a web page, not a .torrent file",
        "/big.torrent": "the file is larger than 64.0 KiB",
        "/stream.torrent": "the file is larger than 64.0 KiB",
        "/loop": "more than 5 redirects",
        "/files/missing.torrent": "the server answered 404 Not Found",
        "/to-ipv6": "cannot get the .torrent from ::1: it is at a private or local address",
    }
    async with site:
        run = AriabotRun(tmp_path / "data",
                         _env(tmp_path, ARIABOT_FETCH_ALLOW_NETWORKS="127.0.0.1/32")).start()
        try:
            await asyncio.to_thread(run.wait_ready, 60)
            for path, said in cases.items():
                refused = await _add(run, site.url(path))
                assert refused.returncode != 0, path
                [line] = refused.stderr.splitlines()
                assert said in line, (path, line)
                assert "Traceback" not in line
            other = await _add(run, "ftp://127.0.0.1/x.torrent")  # not read as a path
            assert (other.returncode, other.stderr) == (
                2, "ariabot: only http:// and https:// links to a .torrent file are fetched\n")
            assert await _ids(run) == set()
            assert not list((tmp_path / "downloads").rglob("*.bin"))
        finally:
            await asyncio.to_thread(run.stop)


async def test_without_an_allowed_network_the_servers_own_addresses_are_never_reached(
        tmp_path: Path, swarm: Swarm) -> None:
    first = swarm.add("guarded.bin", 128 * 1024, seed=2605)
    site = TorrentSite({"first": first.torrent_bytes}, magnet=first.magnet, too_large=CAP)
    async with site:
        run = AriabotRun(tmp_path / "data", _env(tmp_path)).start()
        try:
            await asyncio.to_thread(run.wait_ready, 60)
            port = site.port
            for url in (site.url("/files/first.torrent"), f"http://[::1]:{port}/a.torrent",
                        f"http://0.0.0.0:{port}/a.torrent",
                        f"http://localhost:{port}/files/first.torrent"):
                refused = await _add(run, url)
                assert refused.returncode != 0, url
                assert "it is at a private or local address" in refused.stderr, url
            assert site.requests == []  # refused before any connection
            assert await _ids(run) == set()
        finally:
            await asyncio.to_thread(run.stop)


async def test_a_link_pasted_in_the_chat_and_one_given_to_torrent_are_added(
        tmp_path: Path, swarm: Swarm) -> None:
    first = swarm.add("pasted-link.bin", 128 * 1024, seed=2606)
    second = swarm.add("command-link.bin", 128 * 1024, seed=2607)
    site = TorrentSite({"first": first.torrent_bytes, "second": second.torrent_bytes},
                       magnet=first.magnet, too_large=CAP)
    async with site, FakeTelegramServer() as server:
        env = _env(tmp_path, ARIABOT_FETCH_ALLOW_NETWORKS="127.0.0.1/32",
                   ARIABOT_TELEGRAM_TOKEN=DEFAULT_TOKEN, ARIABOT_TELEGRAM_API_URL=server.url,
                   ARIABOT_ALLOWED_USERS=str(USER))
        run = AriabotRun(tmp_path / "data", env).start()
        try:
            await asyncio.to_thread(run.wait_ready, 60)
            for text, name in ((f"tonight: {site.url('/files/first.torrent')}.", first.name),
                               (f"/torrent {site.url('/files/second.torrent')}", second.name),
                               (f"see {site.url('/files/elsewhere')}", None)):
                mark = server.mark()
                server.push_text(USER, USER, text)
                # Its answer, not an earlier download's completion notice in the same chat.
                reply = await server.wait_for("sendMessage", lambda r: r.status == 200
                                              and r.params.get("chat_id") == USER
                                              and "is downloaded" not in str(r.params["text"]),
                                              since=mark, timeout=LONG)
                if name is None:  # not a .torrent link: not fetched, the hint
                    assert "Send me a magnet link, a .torrent file or a link" in str(
                        reply.params["text"])
                    continue
                assert name in str(reply.params["text"])
                assert _download_id(reply.params["text"]) in await _ids(run)
            assert all("elsewhere" not in path for path in site.requests)
        finally:
            await asyncio.to_thread(run.stop)
    assert "Traceback" not in run.output


def _complete(downloads: Path, torrent: SwarmTorrent) -> bool:
    found = list(downloads.rglob(torrent.name))
    return len(found) == 1 and found[0].stat().st_size == torrent.total_bytes
