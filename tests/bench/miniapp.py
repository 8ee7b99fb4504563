"""Benchmark 13: the Mini App: a page of 1,000 downloads, and 20 open pages while 50 run.

The server is ariabot's own: aria2c and the manager (``tests.integration.conftest``'s
``start_engine``, as ``ariabot run`` wires them) and :class:`web.LinkServer` with the
:class:`web.miniapp.MiniApp` under ``/app/`` on 127.0.0.1 (a free port), in a child process
of its own (``python -m tests.bench.miniapp <folder>``, driven over its stdin and stdout),
so that its CPU, RSS and event loop are its alone: the browser and the pages' clients run
elsewhere. Requests carry ``Authorization: tma <initData>`` signed with the bot's token, as
Telegram signs it; the chat's rules are a stand-in that lets everyone see and change
everything (what is measured is the server and the page, not the bot's rules). The per-user
bounds are the product's (:class:`~web.miniapp.UserLimits`): every open page is another
user's.

*A page of 1,000 downloads* (smoke: 30) in one chat, tracked as after that many adds
(:func:`~tests.bench.common.seed_engine`: dead magnets, all fetching metadata for ever, 50
active in aria2, the rest waiting). Headless Chromium
(:class:`tests.browser.HeadlessChromium`, a phone's screen) opens
``/app/#tgWebAppData=<initData>`` as Telegram does; the time is read in the page
(``performance.now()``, from navigation start): the first animation frame in which the 1,000
``article.download`` cards are in the document, then the end of that frame (a message posted
from it runs once it is painted). Median of :data:`LOADS` loads after one warm-up (smoke:
one load); the JSON also holds ariabot's loop lag while the pages loaded. The bytes are the
bodies of what the page asks ariabot for, fetched again with the same header and read as
sent (no decompression): ``index.html``, ``app.js``, ``app.css``, ``api/me`` and the
``snapshot`` frame of ``api/events`` (the list: the page does not ask ``api/downloads``).
Telegram's own ``telegram-web-app.js`` comes from telegram.org (refused in the benchmark:
nothing leaves 127.0.0.1) and is not counted.

*20 open pages while 50 downloads run* (smoke: 2 pages, 4 downloads): 50 torrents of 4 MiB
from the local swarm (:attr:`BenchContext.swarm`; its seeder uploads each at 16 KiB/s, so
that all of them move at every poll and none ends before the benchmark), in one group chat,
polled every second (the shortest ``ARIABOT_PROGRESS_INTERVAL`` allows: the most events).
Then, in rounds (:data:`ROUNDS`, smoke: 1) whose order alternates, 0 pages (the baseline)
and 20 pages: each page is an aiohttp client reading ``api/events`` (Chromium is not needed
for a stream) from another user. For each: a window of :data:`WINDOW` seconds (smoke: 1) for
the ``download`` frames the pages got, next to the manager's events of the chat meanwhile,
and ariabot's CPU (psutil: the server process, its threads included, aria2c not) and RSS;
then a window as long for its event loop's lag (:class:`tests.bench.looplag.LoopLag`, a
wake-up every 2 ms: apart, because the meter's own wake-ups cost CPU). Medians over the
rounds.

Targets: the full list painted under 2 s; the page's bytes under 1 MB; with 20 pages open,
loop lag p99 under 50 ms and CPU at most 1.5x the 0-page baseline's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import psutil
from init_data_py import sign

from manager import TorrentEvent
from manager.files import chat_folder
from tests.bench.common import (
    MIB,
    BenchContext,
    BenchResult,
    Row,
    bench_settings,
    closed_tracker,
    cost_ratio,
    dead_downloads,
    median,
    seed_engine,
    speed_ratio,
    wait_for,
)
from tests.bench.looplag import LoopLag
from tests.browser import HeadlessChromium
from tests.fakes.telegram_api import DEFAULT_TOKEN
from tests.integration.conftest import Engine, start_engine, stop_engine
from tests.swarm import Aria2RpcError, SwarmTorrent
from web import LinkServer
from web.miniapp import InitDataCheck, MiniApp

__all__ = ["NAME", "TITLE", "run"]

NAME = "miniapp"
TITLE = "13. Mini App: a page of 1,000, 20 open pages"
REPO = Path(__file__).resolve().parents[2]
USER = 1001
"""The user whose private chat holds the page's downloads."""
GROUP = -100131
"""The group chat of the running downloads, which every open page shows."""
FIRST_PAGE_USER = 2001
PROGRESS_INTERVAL = 1
"""Seconds between two polls of the server's manager (the setting's minimum)."""
LOADS = 5
ROUNDS = 3
WINDOW = 10.0
PAINT_TARGET_S = 2.0
BYTES_TARGET = 1_000_000
LAG_TARGET_MS = 50.0
CPU_TARGET = 1.5
"""With 20 pages open, at most this many times the 0-page CPU."""
_CARDS = "document.querySelectorAll('article.download').length"
_PROBE = """(() => {
  if (location.protocol !== "http:") return;
  const marks = window.__bench = {};
  const frame = () => {
    if (%s < %d) { requestAnimationFrame(frame); return; }
    marks.dom = performance.now();
    const channel = new MessageChannel();
    channel.port1.onmessage = () => { marks.painted = performance.now(); };
    channel.port2.postMessage(null);
  };
  requestAnimationFrame(frame);
})();"""
"""Runs in every new document before its scripts: times the first frame with all the cards
(``dom``) and the end of that frame (``painted``), in ms from navigation start."""


def init_data(user: int, *, start_param: str | None = None) -> str:
    """initData as Telegram hands it to the page (``tests/integration/test_miniapp.py``)."""
    fields = {"user": json.dumps({"id": user, "first_name": f"user{user}"}), "query_id": "q"}
    if start_param is not None:
        fields["start_param"] = start_param
    return sign(fields, DEFAULT_TOKEN)


# --- the server's side (the child process) ---------------------------------------------------


class _Everyone:
    """The chat's rules as a stand-in: everyone sees and may change everything."""

    async def open_chat(self, user_id: int, chat_id: int) -> str:
        return "Bench downloads"

    async def may_act(self, user_id: int, chat_id: int, adder_id: int) -> bool:
        return True


class _Counted:
    """The manager as the Mini App sees it, counting the subscriptions open (one per open
    event stream); everything else is the manager's own."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self.open = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)

    def subscribe(self, subscriber: Callable[[Any], None]) -> Callable[[], None]:
        unsubscribe = self._manager.subscribe(subscriber)
        self.open += 1

        def done() -> None:
            self.open -= 1
            unsubscribe()

        return done


async def _serve(folder: Path) -> None:
    """The Mini App's server on 127.0.0.1; one JSON command a line on stdin, one JSON answer
    a line on stdout; stops when stdin closes."""
    settings = bench_settings(folder / "data", ARIABOT_MAX_CONCURRENT="50",
                              ARIABOT_PROGRESS_INTERVAL=str(PROGRESS_INTERVAL),
                              ARIABOT_SEED_TIME="0", ARIABOT_BT_STOP_TIMEOUT="0")
    engine = await start_engine(settings)
    try:
        manager = engine.manager
        counted = _Counted(manager)
        miniapp = await MiniApp.create(counted, InitDataCheck(DEFAULT_TOKEN, 86400),
                                       _Everyone())
        server = LinkServer(manager, "127.0.0.1", 0, miniapp=miniapp)
        await server.start()
        try:
            await _commands(engine, counted, server)
        finally:
            await server.stop()
    finally:
        await stop_engine(engine)


async def _commands(engine: Engine, counted: _Counted, server: LinkServer) -> None:
    """Say where the server listens, then answer commands until stdin closes."""
    manager = engine.manager
    events = [0]

    def tally(event: object) -> None:
        if isinstance(event, TorrentEvent):
            events[0] += 1

    manager.subscribe(tally)
    lag: LoopLag | None = None
    window = (time.monotonic(), 0)

    async def handle(command: dict[str, Any]) -> dict[str, Any]:
        nonlocal lag, window
        do = command["do"]
        if do == "dead":
            chat = int(command["chat"])
            await seed_engine(engine, dead_downloads(closed_tracker(), 0, int(command["count"])),
                              chat_id=chat,
                              directory=chat_folder(manager.config.download_dir, chat))
            return {"listed": len(await manager.list(chat))}
        if do == "add":
            ids = [(await manager.add(base64.b64decode(torrent), int(command["chat"]),
                                      USER)).torrent.id for torrent in command["torrents"]]
            return {"ids": ids}
        if do == "states":
            states: dict[str, int] = {}
            moving = 0
            for torrent in await manager.list(int(command["chat"])):
                states[torrent.state.value] = states.get(torrent.state.value, 0) + 1
                moving += torrent.state.value == "downloading" and torrent.completed_bytes > 0
            return {"states": states, "moving": moving, "streams": counted.open}
        if do == "mark":  # a window starts: events counted, the loop's lag if asked
            if lag is not None:
                await lag.stop()
                lag = None
            if command.get("lag"):
                lag = LoopLag()
                lag.start()
            window = (time.monotonic(), events[0])
            return {}
        if do == "read":  # the window ends
            figures: dict[str, Any] = {"seconds": time.monotonic() - window[0],
                                       "events": events[0] - window[1]}
            if lag is not None:
                lagged = await lag.stop()
                lag = None
                figures.update(lag_max_ms=lagged.max_ms, lag_p99_ms=lagged.p99_ms,
                               lag_samples=lagged.samples)
            return figures
        raise ValueError(f"unknown command {do!r}")

    print(json.dumps({"port": server.port, "pid": os.getpid()}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            try:
                answer = await handle(json.loads(line))
            except Exception as error:  # told to the parent, which raises it
                answer = {"error": f"{type(error).__name__}: {error}"}
            print(json.dumps(answer), flush=True)
    finally:
        if lag is not None:
            await lag.stop()


# --- the benchmark's side ----------------------------------------------------------------------


class _Server:
    """:func:`_serve` in a child process."""

    def __init__(self, process: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self._process = process
        self.base = f"http://127.0.0.1:{ready['port']}/app/"
        self.pid = int(ready["pid"])
        self.process = psutil.Process(self.pid)

    async def ask(self, do: str, **fields: Any) -> dict[str, Any]:
        """One command; its answer (RuntimeError when the server refused it)."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write((json.dumps({"do": do, **fields}) + "\n").encode())
        await self._process.stdin.drain()
        line = await asyncio.wait_for(self._process.stdout.readline(), 600)
        if not line:
            raise RuntimeError(f"the Mini App server exited ({await self._process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the Mini App server could not {do}: {answer['error']}")
        return answer

    def cpu_seconds(self) -> float:
        """CPU time of the server's process so far (its threads; not aria2c)."""
        times = self.process.cpu_times()
        return times.user + times.system


@contextlib.asynccontextmanager
async def _server(folder: Path) -> AsyncIterator[_Server]:
    """Start the Mini App's server; stop it (and its aria2c) after."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.miniapp", str(folder), cwd=REPO,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        if not line:
            raise RuntimeError(f"the Mini App server exited ({await process.wait()})")
        yield _Server(process, json.loads(line))
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


def _auth(data: str) -> dict[str, str]:
    return {"Authorization": f"tma {data}"}


# --- a page of 1,000 downloads ---------------------------------------------------------------


async def _page_bytes(base: str, data: str, count: int) -> dict[str, Any]:
    """The bodies of everything the page asks ariabot for, as they come over the wire."""
    bodies: dict[str, bytes] = {}
    seconds: dict[str, float] = {}
    encodings: set[str] = set()
    # As a browser asks (compressed if the server would), read as sent.
    headers = {"Accept-Encoding": "gzip, deflate, br"}
    async with aiohttp.ClientSession(auto_decompress=False, headers=headers) as http:
        for name, signed in (("", False), ("app.js", False), ("app.css", False),
                             ("api/me", True)):
            started = time.perf_counter()
            async with http.get(base + name, headers=_auth(data) if signed else None) as answer:
                body = await answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"/app/{name}: {answer.status} {body[:200]!r}")
                encodings.add(answer.headers.get("Content-Encoding", "identity"))
            seconds[name or "index.html"] = time.perf_counter() - started
            bodies[name or "index.html"] = body
        started = time.perf_counter()
        async with http.get(base + "api/events", headers=_auth(data)) as answer:
            if answer.status != 200:
                raise RuntimeError(f"/app/api/events: {answer.status}")
            encodings.add(answer.headers.get("Content-Encoding", "identity"))
            buffer = b""
            async for chunk in answer.content.iter_any():
                buffer += chunk
                if b"\n\n" in buffer:
                    break
        seconds["api/events snapshot"] = time.perf_counter() - started
    snapshot = buffer[:buffer.index(b"\n\n") + 2]
    bodies["api/events snapshot"] = snapshot
    if encodings == {"identity"}:
        name, _, rest = snapshot.decode().partition("\n")
        streamed = len(json.loads(rest.removeprefix("data: "))["downloads"])
        if (name, streamed) != ("event: snapshot", count):
            raise RuntimeError(f"the page would get a {name!r} of {streamed} downloads, "
                               f"not {count}")
    return {"bytes": {name: len(body) for name, body in bodies.items()},
            "gzip_bytes": {name: len(gzip.compress(body)) for name, body in bodies.items()},
            "seconds": seconds, "encodings": sorted(encodings)}


def _paint(base: str, data: str, count: int, loads: int) -> dict[str, Any]:
    """Load the page ``loads`` times (after a warm-up in full mode); the times of each."""
    url = f"{base}#tgWebAppData={quote(data, safe='')}&tgWebAppVersion=8.0"
    runs: list[dict[str, Any]] = []
    browser = HeadlessChromium(timeout=120)
    try:
        _loads(browser, url, count, loads, runs)
    finally:
        _remove_profile(browser._profile)  # bench-only access: see _remove_profile
    return {"runs": runs}


def _remove_profile(profile: Path) -> None:
    """Remove Chromium's profile for good. :class:`HeadlessChromium` removes it once the
    browser exited, but a helper process (the network service) may still be writing its
    ``Network Persistent State`` there, leaving a folder behind: wait until no process of
    that browser is left, then remove what they wrote."""
    def alone() -> bool:
        for process in psutil.process_iter(["cmdline"]):
            if any(str(profile) in part for part in process.info["cmdline"] or ()):
                return False
        return True

    wait_for(alone, timeout=30, what="Chromium's helper processes to exit", interval=0.1)
    shutil.rmtree(profile, ignore_errors=True)


def _loads(browser: HeadlessChromium, url: str, count: int, loads: int,
           runs: list[dict[str, Any]]) -> None:
    with browser:
        browser.phone()
        browser.call("Page.enable")  # or the probe below is not run
        browser.call("Page.addScriptToEvaluateOnNewDocument", source=_PROBE % (_CARDS, count))
        for _ in range(loads):
            browser.open("about:blank")
            started = time.monotonic()
            browser.call("Page.navigate", url=url)
            painted = browser.wait_for("window.__bench && window.__bench.painted",
                                       f"{count} downloads painted", timeout=120)
            wall = time.monotonic() - started
            marks = browser.evaluate(
                "({dom: window.__bench.dom, cards: " + _CARDS + ", fcp: (performance"
                ".getEntriesByName('first-contentful-paint')[0] || {}).startTime || null})")
            if marks["cards"] != count:
                raise RuntimeError(f"the page shows {marks['cards']} downloads, not {count}")
            runs.append({"painted_ms": float(painted), "dom_ms": float(marks["dom"]),
                         "first_contentful_paint_ms": marks["fcp"], "wall_s": wall})
        browser.open("about:blank")  # its event stream closes


async def _page(ctx: BenchContext, result: BenchResult) -> None:
    count = ctx.pick(1000, 30)
    loads = ctx.pick(1 + LOADS, 1)
    async with _server(ctx.path("miniapp", "page")) as server:
        listed = (await server.ask("dead", chat=USER, count=count))["listed"]
        if listed != count:
            raise RuntimeError(f"the chat lists {listed} downloads, not {count}")
        states = (await server.ask("states", chat=USER))["states"]
        data = init_data(USER)
        sent = await _page_bytes(server.base, data, count)
        cpu = server.cpu_seconds()
        await server.ask("mark", lag=True)
        painted = await asyncio.to_thread(_paint, server.base, data, count, loads)
        lagged = await server.ask("read")
        server_cpu = (server.cpu_seconds() - cpu) / loads
    runs = painted["runs"][1:] if loads > 1 else painted["runs"]
    paint_s = median([r["painted_ms"] for r in runs]) / 1000
    total = sum(sent["bytes"].values())
    listing = sent["bytes"]["api/events snapshot"]
    result.figures["page"] = {"downloads": count, "states": states, "loads": painted["runs"],
                              "warm_up": loads > 1, "server_cpu_s_per_load": server_cpu,
                              "server_lag_max_ms": lagged["lag_max_ms"],
                              "server_lag_p99_ms": lagged["lag_p99_ms"],
                              **sent, "total_bytes": total,
                              "total_gzip_bytes": sum(sent["gzip_bytes"].values())}
    breakdown = ", ".join(f"{name} {size:,}" for name, size in sent["bytes"].items())
    result.rows += [
        Row(NAME, f"page of {count:,}: first paint of the full list (median of {len(runs)})",
            paint_s, unit="s", target=f"<{PAINT_TARGET_S:g} s", met=paint_s < PAINT_TARGET_S,
            note=f"headless Chromium, phone screen; the cards in the DOM at "
                 f"{median([r['dom_ms'] for r in runs]):.0f} ms (median); ariabot's "
                 f"loop lag meanwhile: max {lagged['lag_max_ms']:.0f} ms"),
        Row(NAME, f"page of {count:,}: bytes from ariabot", total / 1e6, unit="MB",
            target=f"<{BYTES_TARGET / 1e6:g} MB", met=total < BYTES_TARGET,
            note=f"bytes: {breakdown}; encoding {'/'.join(sent['encodings'])}"),
        Row(NAME, f"page of {count:,}: bytes per download listed", listing / count, unit="B",
            note="the events snapshot: the list, asked once"),
    ]
    result.notes.append("miniapp: telegram-web-app.js (from telegram.org, not ariabot) is not "
                        "counted in the page's bytes; the names are bench-NNNNN (11 "
                        "characters): longer names add to the list's bytes")


# --- 20 open pages while 50 downloads run ----------------------------------------------------


@dataclass
class _Page:
    """One open page's event stream, read by an aiohttp client."""

    frames: int = 0
    """``download`` frames read so far."""
    bytes: int = 0
    snapshot: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


async def _follow(http: aiohttp.ClientSession, url: str, data: str, page: _Page) -> None:
    async with http.get(url, headers=_auth(data)) as answer:
        if answer.status != 200:
            raise RuntimeError(f"api/events: {answer.status} {await answer.text()}")
        buffer = b""
        async for chunk in answer.content.iter_any():
            page.bytes += len(chunk)
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                if frame.startswith(b"event: download\n"):
                    page.frames += 1
                elif frame.startswith(b"event: snapshot\n"):
                    page.snapshot.set()


@contextlib.asynccontextmanager
async def _pages(server: _Server, count: int) -> AsyncIterator[list[_Page]]:
    """``count`` pages of the group, each another user's, following its events; closed after,
    and once the server has ended their streams."""
    pages = [_Page() for _ in range(count)]
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        try:
            for number, page in enumerate(pages):
                data = init_data(FIRST_PAGE_USER + number, start_param=f"c{GROUP}")
                page.task = asyncio.create_task(
                    _follow(http, server.base + "api/events", data, page))
            snapshots = asyncio.ensure_future(asyncio.gather(*(p.snapshot.wait()
                                                               for p in pages)))
            # Every snapshot, or a page that ended (its error).
            await asyncio.wait([snapshots, *(p.task for p in pages if p.task)], timeout=120,
                               return_when=asyncio.FIRST_COMPLETED)
            snapshots.cancel()
            for page in pages:
                if page.task is not None and page.task.done():
                    page.task.result()
                    raise RuntimeError("a page's event stream ended")
            if not all(p.snapshot.is_set() for p in pages):
                raise TimeoutError(f"{count} pages did not all get their snapshot")
            await _until(server, lambda s: s["streams"] == count, f"{count} streams open")
            yield pages
        finally:
            for page in pages:
                if page.task is not None:
                    page.task.cancel()
            await asyncio.gather(*(p.task for p in pages if p.task), return_exceptions=True)
    # The server finds a page gone at its next write (the next poll's events).
    await _until(server, lambda s: s["streams"] == 0, "the closed pages' streams ended")


async def _until(server: _Server, check: Callable[[dict[str, Any]], bool], what: str,
                 timeout: float = 60.0) -> dict[str, Any]:
    """Ask the server for the group's states until ``check`` holds; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        states = await server.ask("states", chat=GROUP)
        if check(states):
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}: {states}")
        await asyncio.sleep(0.1)


async def _window(server: _Server, pages: list[_Page], seconds: float) -> dict[str, Any]:
    """The CPU, RSS, events and frames of ``seconds`` (the loop's lag is not sampled)."""
    running = (await server.ask("states", chat=GROUP))["moving"]
    frames = sum(p.frames for p in pages)
    received = sum(p.bytes for p in pages)
    await server.ask("mark")
    cpu, started = server.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)  # the measured window
    used, elapsed = server.cpu_seconds() - cpu, time.monotonic() - started
    told = await server.ask("read")
    return {"cpu_percent": used / elapsed * 100, "rss": server.process.memory_info().rss,
            "events_per_s": told["events"] / told["seconds"],
            "frames_per_s": (sum(p.frames for p in pages) - frames) / elapsed,
            "bytes_per_s": (sum(p.bytes for p in pages) - received) / elapsed,
            "downloading_at_start": running, "seconds": elapsed}


async def _lag_window(server: _Server, seconds: float) -> dict[str, Any]:
    """The loop's lag over ``seconds``."""
    await server.ask("mark", lag=True)
    await asyncio.sleep(seconds)  # the measured window
    told = await server.ask("read")
    return {key: told[key] for key in ("lag_max_ms", "lag_p99_ms", "lag_samples")}


@contextlib.contextmanager
def _paced(ctx: BenchContext, torrents: list[SwarmTorrent], rate: int) -> Iterator[None]:
    """The swarm's seeder uploads each of ``torrents`` at ``rate`` bytes/s at most (aria2's
    per-download ``max-upload-limit``: its overall cap, :meth:`Swarm.throttled`, serves them
    one after the other, so that only one or two would move at a time); unlimited after."""
    seeder = ctx.swarm.seeder
    gids = [seeder.gid(t.info_hash) for t in torrents]
    try:
        for gid in gids:
            seeder.call("aria2.changeOption", gid, {"max-upload-limit": str(rate)})
        yield
    finally:
        for gid in gids:
            with contextlib.suppress(Aria2RpcError, OSError):
                seeder.call("aria2.changeOption", gid, {"max-upload-limit": "0"})


async def _open_pages(ctx: BenchContext, result: BenchResult) -> None:
    downloads, open_pages = ctx.pick(50, 4), ctx.pick(20, 2)
    size, rate = ctx.pick(4 * MIB, MIB), ctx.pick(16 * 1024, 32 * 1024)
    rounds, window = ctx.pick(ROUNDS, 1), ctx.pick(WINDOW, 1.0)
    made = time.monotonic()
    torrents = ctx.swarm.add_many([(f"miniapp-{n:02d}.bin", size, 1300 + n)
                                   for n in range(downloads)])
    seeded = time.monotonic() - made
    windows: dict[int, list[dict[str, Any]]] = {0: [], open_pages: []}
    with _paced(ctx, torrents, rate):
        async with _server(ctx.path("miniapp", "pages")) as server:
            await server.ask("add", chat=GROUP, torrents=[
                base64.b64encode(t.torrent_bytes).decode() for t in torrents])
            await _until(server, lambda s: s["moving"] == downloads,
                         f"{downloads} downloads moving", timeout=120)
            for number in range(rounds):
                order = (0, open_pages) if number % 2 == 0 else (open_pages, 0)
                for pages in order:
                    async with _pages(server, pages) as opened:
                        measured = await _window(server, opened, window)
                        measured.update(await _lag_window(server, window))
                    windows[pages].append(measured)
            final = await server.ask("states", chat=GROUP)
    running = min(w["downloading_at_start"] for ws in windows.values() for w in ws)
    result.figures["open_pages"] = {
        "downloads": downloads, "pages": open_pages, "size_bytes": size,
        "seeder_cap_bytes_s_each": rate, "progress_interval_s": PROGRESS_INTERVAL,
        "rounds": rounds, "window_s": window, "seed_seconds": seeded,
        "windows": {str(k): v for k, v in windows.items()}, "final_states": final["states"]}

    def middle(pages: int, key: str) -> float:
        return median([w[key] for w in windows[pages]])

    cpu, base_cpu = middle(open_pages, "cpu_percent"), middle(0, "cpu_percent")
    p99, max_lag = middle(open_pages, "lag_p99_ms"), middle(open_pages, "lag_max_ms")
    events, frames = middle(open_pages, "events_per_s"), middle(open_pages, "frames_per_s")
    label = f"{open_pages} pages, {downloads} downloading"
    result.rows += [
        Row(NAME, f"{label}: events delivered / s, all pages", frames, events * open_pages,
            "/s", speed_ratio(frames, events * open_pages),
            note=f"reference: every manager event of the chat to every page; "
                 f"{frames / open_pages:.1f}/s per page, "
                 f"{middle(open_pages, 'bytes_per_s') / open_pages / 1024:.1f} KiB/s per page"),
        Row(NAME, f"{label}: ariabot CPU (ref: 0 pages)", cpu, base_cpu, "%",
            cost_ratio(base_cpu, cpu), f"≤{CPU_TARGET:g}x the 0-page CPU",
            cpu <= CPU_TARGET * base_cpu,
            note=f"of one core, median of {rounds}; {cpu / base_cpu if base_cpu else 0:.2f}x "
                 "the 0-page CPU"),
        Row(NAME, f"{label}: ariabot RSS (ref: 0 pages)", middle(open_pages, "rss") / MIB,
            middle(0, "rss") / MIB, "MiB"),
        Row(NAME, f"{label}: loop lag p99 (ref: 0 pages)", p99, middle(0, "lag_p99_ms"), "ms",
            target=f"<{LAG_TARGET_MS:g} ms", met=p99 < LAG_TARGET_MS),
        Row(NAME, f"{label}: loop lag max (ref: 0 pages)", max_lag, middle(0, "lag_max_ms"),
            "ms"),
    ]
    if running < downloads:
        result.notes.append(f"miniapp: only {running} of {downloads} downloads were still "
                            "moving at the start of a window")


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring)."""
    result = BenchResult()
    asyncio.run(_page(ctx, result))
    asyncio.run(_open_pages(ctx, result))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(Path(sys.argv[1])))
