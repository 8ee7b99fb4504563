"""Signed links end to end: a short MP4 made with ffmpeg, seeded by the local swarm and
downloaded by ariabot through a real aria2c; the bot (real Application, fake Bot API) gives
its link; headless Chromium opens the page and plays the video's metadata; curl checks
Range, resume and every refusal.

The HTTP server listens on 127.0.0.1 on a free port; the link's public URL stands for the
owner's reverse proxy, so the test maps it onto that port as the proxy would.
"""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torf

from manager.delivery.links import link_stamp, sign_token
from supervisor.layout import StateLayout
from tests.browser import HeadlessChromium
from tests.integration.test_bot import LONG, USER, _download_id, _result_id, running_stack
from tests.swarm import Swarm, magnet_uri
from web import LinkServer

PUBLIC = "https://files.example.org/ariabot"
CLIP = "clip – été.mp4"  # noqa: RUF001 - a real unicode name, dash included
NOTES = "notes.txt"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not on PATH: ./setup.sh test installs it", pytrace=False)
    return found


def make_clip(path: Path) -> None:
    """A 2 s MP4 (H.264 test pattern, AAC tone), its index first (``+faststart``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    "-movflags", "+faststart", str(path)], check=True, timeout=60)


def seed_pack(swarm: Swarm, root: Path, name: str) -> tuple[str, Path]:
    """A two-file torrent (the clip and a text file) seeded by the swarm: (magnet, folder)."""
    pack = root / name
    make_clip(pack / CLIP)
    (pack / NOTES).write_text("nothing to play here\n" * 50)
    torrent = torf.Torrent(path=pack, name=name, trackers=[swarm.tracker.url],
                           creation_date=None, created_by="ariabot tests")
    torrent.generate()
    info_hash = torrent.infohash.lower()
    swarm.seeder.seed(bytes(torrent.dump()), root)
    swarm.tracker.wait_for_peer(info_hash, swarm.seeder.listen_port)
    return magnet_uri(info_hash, name, swarm.tracker.url), pack


def curl(*args: str) -> tuple[int, dict[str, str], bytes]:
    """``curl`` with ``args``: (status, headers of the last answer, body)."""
    done = subprocess.run([_tool("curl"), "-sS", "--path-as-is", "-D", "-", *args],
                          capture_output=True, check=True, timeout=30)
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def play(page: str) -> dict[str, object]:
    """Open the page in headless Chromium; its file list and the video's duration."""
    with HeadlessChromium() as browser:
        browser.open(page)
        return browser.evaluate("""(async () => {
            const video = document.querySelector('video');
            if (!video) return {files: [], duration: null, error: 'no video element'};
            if (video.readyState < 1) {
                await new Promise((done, fail) => {
                    video.addEventListener('loadedmetadata', done, {once: true});
                    video.addEventListener('error', () => fail(new Error(
                        'media error ' + (video.error && video.error.code))), {once: true});
                    setTimeout(() => fail(new Error('no metadata in 20 s')), 20000);
                });
            }
            return {
                files: [...document.querySelectorAll('a.file')].map(a => a.textContent),
                audio: document.querySelectorAll('audio').length,
                videos: document.querySelectorAll('video').length,
                duration: video.duration,
                width: video.videoWidth,
            };
        })()""")


async def test_a_downloaded_video_plays_in_chromium_from_a_signed_link_that_dies_on_cancel(
    engine_settings, swarm: Swarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    name = "Clip pack ü"
    magnet, pack = await asyncio.to_thread(seed_pack, swarm, tmp_path / "content", name)
    async with running_stack(engine_settings, ARIABOT_PUBLIC_URL=PUBLIC) as stack:
        server = LinkServer(stack.manager, "127.0.0.1", 0)
        await server.start()
        try:
            start = stack.server.mark()
            reply = await stack.say(USER, f"/torrent {magnet}")
            download_id = _download_id(reply.params["text"])
            news = await stack.answer(USER, start, "is downloaded", timeout=LONG)
            buttons = [b["callback_data"]
                       for b in news.params["reply_markup"]["inline_keyboard"][0]]
            assert f"link:{download_id}" in buttons

            mark = stack.server.mark()
            pressed = await stack.press(USER, _result_id(news), f"link:{download_id}")
            assert pressed.params.get("text") == "Here is the link."
            sent = await stack.answer(USER, mark, "🔗")
            text = str(sent.params["text"])
            assert sent.params["reply_parameters"]["message_id"] == _result_id(news)
            assert "It works until" in text
            assert "(in 7d 00h)" in text or "(in 6d 23h)" in text
            assert str(tmp_path) not in text
            url = html.unescape(re.search(r'href="([^"]+)"', text)[1])  # type: ignore[index]
            assert url.startswith(f"{PUBLIC}/d/{download_id}.")
            page = url.replace(PUBLIC, f"http://127.0.0.1:{server.port}")

            # A real browser: the list, one player, and the clip's real duration.
            seen = await asyncio.to_thread(play, page)
            assert seen["files"] == [f"{name}/{CLIP}", f"{name}/{NOTES}"], seen
            assert (seen["videos"], seen["audio"]) == (1, 0), seen
            assert 1.9 <= float(seen["duration"]) <= 2.2, seen  # type: ignore[arg-type]
            assert seen["width"] == 160, seen

            record = await stack.manager.store.downloads.get(download_id)
            assert record is not None
            await _check_with_curl(page, pack, tmp_path, key=StateLayout(
                stack.settings.data_dir).link_key.read_bytes(), stamp=link_stamp(record))

            answer = await stack.say(USER, f"/link {download_id}")
            assert "It works until" in str(answer.params["text"])
            for command, needle in [("/link", "Usage: /link"), ("/link x", "Usage: /link"),
                                    ("/link 999", "No download #999 in this chat")]:
                said = await stack.say(USER, command)
                assert needle in str(said.params["text"]), (command, said.params["text"])

            # Cancelled (files kept): the link dies at once, the page says so.
            await stack.say(USER, f"/cancel {download_id}")
            status, _, body = await asyncio.to_thread(curl, page)
            assert status == 403 and b"does not work" in body
            assert (pack.parent / name / CLIP).exists()
            refused = await stack.say(USER, f"/link {download_id}")
            assert "only a finished download has a link" in str(refused.params["text"])
        finally:
            await server.stop()


async def _check_with_curl(page: str, pack: Path, tmp_path: Path, *, key: bytes,
                           stamp: bytes) -> None:
    clip = (pack / CLIP).read_bytes()
    clip_url = f"{page}/1/clip.mp4"

    status, headers, body = await asyncio.to_thread(curl, "-r", "100-1099", clip_url)
    assert (status, body) == (206, clip[100:1100])
    assert headers["content-range"] == f"bytes 100-1099/{len(clip)}"
    assert headers["content-type"] == "video/mp4"
    assert headers["content-disposition"].endswith(
        "filename*=UTF-8''clip%20%E2%80%93%20%C3%A9t%C3%A9.mp4")

    partial = tmp_path / "resumed.mp4"  # a download manager resuming after a cut
    partial.write_bytes(clip[:5000])
    status, _, _ = await asyncio.to_thread(curl, "-C", "-", "-o", str(partial), clip_url)
    assert status == 206 and partial.read_bytes() == clip

    token = page.rsplit("/d/", 1)[1]
    download_id, expires, tag, signature = token.split(".")
    base = page.rsplit("/d/", 1)[0]
    assert sign_token(key, int(download_id), int(expires), stamp) == token
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    past = int(time.time()) - 60
    for forged, words in [(f"{download_id}.{expires}.{tag}.{flipped}", b"does not work"),
                          (f"{download_id}.{int(expires) + 1}.{tag}.{signature}",
                           b"does not work"),
                          (f"{int(download_id) + 1}.{expires}.{tag}.{signature}",
                           b"does not work"),
                          (sign_token(key, int(download_id), past, b"another stamp"),
                           b"does not work"),
                          # the right key and stamp, a past expiry: genuine but expired
                          (sign_token(key, int(download_id), past, stamp), b"has expired")]:
        for url in (f"{base}/d/{forged}", f"{base}/d/{forged}/1/clip.mp4"):
            status, headers, body = await asyncio.to_thread(curl, url)
            assert (status, words in body) == (403, True), url
            assert headers["content-type"].startswith("text/html")

    (pack.parent / "outside.txt").write_text("root:x:0:0 not this download's")
    for path in ("/1/../../outside.txt", "/../outside.txt", "/3", "/0", "/%2e%2e/outside.txt",
                 "//etc/passwd", "/1/../../../../../../etc/passwd"):
        status, _, body = await asyncio.to_thread(curl, page + path)
        assert status in (403, 404) and b"root:" not in body, path
    status, _, body = await asyncio.to_thread(curl, f"{base}/etc/passwd")
    assert status == 404 and b"root:" not in body
