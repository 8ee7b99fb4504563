"""The link server over real HTTP on 127.0.0.1 (a free port), with a fake manager: the
page, Range, names, refusals, and that nothing but the opened files is ever served."""

from __future__ import annotations

import asyncio
import html
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from manager import LinkExpired, LinkRefused, SharedDownload, SharedFile, StoreError
from web import LinkServer
from web.headers import content_disposition, media_kind
from web.pages import download_page

TOKEN = "5.1893499200." + "S" * 43
EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class FakeOpener:
    """Opens TOKEN as ``shared``; other tokens as told in ``refuse``."""

    shared: SharedDownload
    refuse: dict[str, Exception] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    """When set, file requests wait for it (requests held in flight)."""
    waiting: int = 0

    async def open_link(self, token: str) -> SharedDownload:
        self.asked.append(token)
        if token in self.refuse:
            raise self.refuse[token]
        if token != TOKEN:
            raise LinkRefused("forged")
        return self.shared

    async def open_link_file(self, token: str, number: int) -> SharedFile | None:
        if self.gate is not None:
            self.waiting += 1
            await self.gate.wait()
        return (await self.open_link(token)).file(number)


@pytest.fixture
def files(tmp_path: Path) -> list[SharedFile]:
    folder = tmp_path / "torrents" / "1" / "pack <b>"
    folder.mkdir(parents=True)
    clip = folder / "clip.mp4"
    clip.write_bytes(bytes(range(256)) * 40)
    song = folder / "Ünïcode \u2013 song.mp3"
    song.write_bytes(b"ID3" + b"s" * 97)
    notes = folder / "notes.txt"
    notes.write_bytes(b"hello")
    (folder / "clip.mp4.gz").write_bytes(b"another download's file")
    return [SharedFile(1, "pack <b>/clip.mp4", clip.stat().st_size, clip),
            SharedFile(2, "pack <b>/Ünïcode \u2013 song.mp3", 100, song),
            SharedFile(4, "pack <b>/notes.txt", 5, notes)]


@pytest.fixture
async def served(files: list[SharedFile]) -> AsyncIterator[tuple[str, FakeOpener]]:
    opener = FakeOpener(SharedDownload(5, "pack <b>", tuple(files), EXPIRES))
    server = LinkServer(opener, "127.0.0.1", 0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", opener
    finally:
        await server.stop()


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession(auto_decompress=False) as session, session.get(
        url, headers=headers, allow_redirects=False,
    ) as answer:
        return answer.status, dict(answer.headers), await answer.read()


async def test_the_page_lists_the_files_escaped_with_players_for_media(
    served: tuple[str, FakeOpener],
) -> None:
    base, _ = served
    status, headers, body = await get(f"{base}/d/{TOKEN}")
    page = body.decode()
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "<b>" not in page and "pack &lt;b&gt;" in page
    assert f'<video controls preload="metadata" src="{TOKEN}/1/clip.mp4">' in page
    assert (f'<audio controls preload="metadata" src="{TOKEN}/2/'
            f'{html.escape("%C3%9Cn%C3%AFcode%20%E2%80%93%20song.mp3")}">') in page
    assert page.count("<video") == 1 and page.count("<audio") == 1
    assert f'href="{TOKEN}/4/notes.txt"' in page
    assert "3 files" in page and "2030-01-01 00:00 UTC" in page


async def test_a_file_is_served_whole_or_by_range_with_its_type_and_name(
    served: tuple[str, FakeOpener], files: list[SharedFile],
) -> None:
    base, _ = served
    whole = files[0].path.read_bytes()
    status, headers, body = await get(f"{base}/d/{TOKEN}/1/clip.mp4")
    assert (status, body) == (200, whole)
    assert headers["Content-Type"] == "video/mp4" and headers["Accept-Ranges"] == "bytes"
    status, headers, body = await get(f"{base}/d/{TOKEN}/1", Range="bytes=100-299")
    assert (status, body) == (206, whole[100:300])
    assert headers["Content-Range"] == f"bytes 100-299/{len(whole)}"
    status, headers, _ = await get(f"{base}/d/{TOKEN}/2/any-name-at-all")
    assert status == 200
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"Unicode _ song.mp3\"; "
        "filename*=UTF-8''%C3%9Cn%C3%AFcode%20%E2%80%93%20song.mp3")


async def test_a_compressed_sibling_is_never_served_instead(
    served: tuple[str, FakeOpener], files: list[SharedFile],
) -> None:
    base, _ = served
    status, headers, body = await get(f"{base}/d/{TOKEN}/1", **{"Accept-Encoding": "gzip, br"})
    assert (status, body) == (200, files[0].path.read_bytes())
    assert "Content-Encoding" not in headers


async def test_refused_and_expired_links_get_403_and_a_small_page(
    served: tuple[str, FakeOpener],
) -> None:
    base, opener = served
    opener.refuse["5.1.old"] = LinkExpired("expired")
    opener.refuse["5.1.db"] = StoreError("database locked")
    for token, status, words in [("forged", 403, "does not work"),
                                 ("5.1.old", 403, "has expired"),
                                 ("5.1.db", 503, "Try again later")]:
        for path in (f"/d/{token}", f"/d/{token}/1/clip.mp4"):
            got, headers, body = await get(base + path)
            assert got == status and words in body.decode(), path
            assert headers["Content-Type"] == "text/html; charset=utf-8"
            assert "database" not in body.decode()


@pytest.mark.parametrize("path", [
    f"/d/{TOKEN}/3", f"/d/{TOKEN}/0", f"/d/{TOKEN}/99999999999999", f"/d/{TOKEN}/x",
    f"/d/{TOKEN}/../../../etc/passwd", f"/d/{TOKEN}/1/../../etc/passwd",
    f"/d/{TOKEN}/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "/d/", "/", "/d/../etc/passwd",
    f"/d/{TOKEN}/clip.mp4.gz", f"/d/{TOKEN}//etc/passwd",
])
async def test_nothing_else_can_be_reached(served: tuple[str, FakeOpener], path: str) -> None:
    base, _ = served
    async with aiohttp.ClientSession() as session, session.get(
        base + path, allow_redirects=False,
    ) as answer:
        body = await answer.read()
    assert answer.status in (403, 404), path
    assert b"root:" not in body and b"another download" not in body


@pytest.mark.parametrize(("name", "kind"), [
    ("a/b.MP4", "video"), ("x.webm", "video"), ("x.m4v", "video"), ("x.mp3", "audio"),
    ("x.ogg", "audio"), ("x.opus", "audio"), ("x.flac", "audio"), ("x.wav", "audio"),
    ("x.m4a", "audio"), ("x.mkv", None), ("x.avi", None), ("mp4", None), ("x.txt", None),
])
def test_media_kind_by_name(name: str, kind: str | None) -> None:
    assert media_kind(name) == kind


@pytest.mark.parametrize(("path", "header"), [
    ("pack/plain.bin", "attachment; filename=\"plain.bin\"; filename*=UTF-8''plain.bin"),
    ("a \"quoted\" \\ name%.txt", "attachment; filename=\"a _quoted_ _ name_.txt\"; "
     "filename*=UTF-8''a%20%22quoted%22%20%5C%20name%25.txt"),
    ("日本語.mkv",
     "attachment; filename=\"___.mkv\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.mkv"),
    ("x/\r\nSet-Cookie: a=b", "attachment; filename=\"__Set-Cookie: a=b\"; "
     "filename*=UTF-8''%0D%0ASet-Cookie%3A%20a%3Db"),
])
def test_content_disposition(path: str, header: str) -> None:
    assert content_disposition(path) == header


def test_the_page_is_pure_and_escapes_every_name() -> None:
    evil = SharedFile(1, '"><script>alert(1)</script>.mp4', 1, Path("/nowhere"))
    page = download_page(TOKEN, SharedDownload(5, "<img src=x onerror=alert(1)>",
                                               (evil,), EXPIRES))
    assert "<script>" not in page and "<img" not in page
    assert f"{TOKEN}/1/script%3E.mp4" in page  # the address: the basename, percent-encoded


async def test_beyond_its_bound_the_server_answers_503_with_retry_after(
    files: list[SharedFile],
) -> None:
    """At most ``max_requests`` at once: a storm is told to come back, not queued without
    end; once the held requests end, new ones are served."""
    opener = FakeOpener(SharedDownload(5, "pack <b>", tuple(files), EXPIRES),
                        gate=asyncio.Event())
    server = LinkServer(opener, "127.0.0.1", 0, max_requests=2)
    await server.start()
    base = f"http://127.0.0.1:{server.port}/d/{TOKEN}/1/clip.mp4"
    try:
        held = [asyncio.ensure_future(get(base, Range="bytes=0-99")) for _ in range(2)]
        deadline = asyncio.get_running_loop().time() + 10
        while opener.waiting < 2:
            assert asyncio.get_running_loop().time() < deadline, "the requests never came"
            await asyncio.sleep(0.01)
        status, headers, body = await get(base, Range="bytes=0-99")
        assert (status, headers.get("Retry-After")) == (503, "1")
        assert "Too many requests" in body.decode()
        opener.gate.set()
        assert [(await h)[0] for h in held] == [206, 206]
        assert (await get(base, Range="bytes=0-99"))[0] == 206
    finally:
        await server.stop()


async def test_a_file_that_streams_holds_its_place_in_the_bound(tmp_path: Path) -> None:
    """The bound counts a file until its last byte went out, not only until the handler
    returned: while a slow client reads a big file, another request is told 503."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(64 * 1024 * 1024))  # far more than the sockets' buffers
    shared = SharedDownload(5, "big", (SharedFile(1, "big.bin", big.stat().st_size, big),),
                            EXPIRES)
    server = LinkServer(FakeOpener(shared), "127.0.0.1", 0, max_requests=1)
    await server.start()
    url = f"http://127.0.0.1:{server.port}/d/{TOKEN}/1/big.bin"
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as slow:
            assert slow.status == 200
            await slow.content.readexactly(1024)  # it streams, and the client waits
            assert (await get(url))[0] == 503
            assert len(await slow.read()) == big.stat().st_size - 1024
        assert (await get(url, Range="bytes=0-9"))[0] == 206
    finally:
        await server.stop()
