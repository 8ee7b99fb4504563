"""Benchmark 9: HTTP links: one file to 1 and to 4 concurrent clients, ariabot vs nginx.

ariabot's link server (:mod:`.linkserve`: the real signing, revocation checks and
``sendfile`` path, in its own process) and nginx (Debian's, run as the benchmark's own user
from a generated config in a temp prefix, one worker, ``sendfile on``, 127.0.0.1, a free
port) serve the same file, in turns, in the same run. The clients are ``curl`` processes
writing to ``/dev/null``; throughput is the bytes all clients got over the wall time of the
batch, best of 3 (smoke: 1). ariabot's RSS is sampled every 20 ms while it serves; its
growth is the peak minus its RSS after a warm-up request.

Then a player-like Range storm on a fresh link server: :data:`PLAYERS` clients at once (more
than the server serves at once, so some are told 503 ``Retry-After`` and come back), each
asking for 512 KiB at seeded random offsets of the file, request after request; the server's
event loop lag (max, p99: its own monitor) and RSS growth while it lasts.

Targets: ariabot ≥ 0.9 x nginx's throughput; RSS growth < 20 MB; in the storm, loop lag p99
< 10 ms and RSS growth < 20 MB.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import math
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench.common import BenchContext, BenchResult, Row, rss, speed_ratio, wait_for
from tests.swarm import free_port

__all__ = ["NAME", "TITLE", "run"]

NAME = "http"
TITLE = "9. HTTP links vs nginx"
MIB = 1024 * 1024
RATIO_TARGET = 0.9
RSS_TARGET = 20 * MIB
PLAYERS = 96
"""Clients of the Range storm (more than the server serves at once: web.MAX_REQUESTS)."""
RANGE_BYTES = 512 * 1024
LAG_TARGET_MS = 10.0


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as handle:
        for _ in range(size // MIB):
            handle.write(block)


def _nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if found is None:
        raise RuntimeError("nginx is not installed: ./setup.sh bench installs it")
    return found


class _Nginx:
    """nginx serving ``root`` on 127.0.0.1:``port`` from a prefix of its own."""

    def __init__(self, prefix: Path, root: Path) -> None:
        self.port = free_port()
        self._prefix = prefix
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        temp = " ".join(f"{kind}_temp_path {prefix / kind};"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (prefix / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    {temp}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
    }}
}}
""")
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Nginx:
        self._process = subprocess.Popen(
            [_nginx_binary(), "-p", str(self._prefix), "-c", str(self._prefix / "nginx.conf"),
             "-e", str(self._prefix / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, timeout=15, what="nginx to listen")
        return self

    def _answers(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            log = (self._prefix / "error.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"nginx exited {self._process.returncode}: {log}")
        done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               f"http://127.0.0.1:{self.port}/"], capture_output=True,
                              text=True, check=False)
        return done.stdout.strip() not in ("", "000")

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


class _LinkServer:
    """:mod:`.linkserve` in a child process."""

    def __init__(self, file: Path, workdir: Path) -> None:
        self._args = [sys.executable, "-m", "tests.bench.linkserve", str(file), str(workdir)]
        self._process: subprocess.Popen[str] | None = None
        self.url = ""
        self.pid = 0
        self.lag: dict[str, float] = {}
        """The server's loop lag since :meth:`measure_lag` (set when it stopped)."""

    def __enter__(self) -> _LinkServer:
        self._process = subprocess.Popen(self._args, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True,
                                         cwd=Path(__file__).resolve().parents[2])
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the link server exited {self._process.wait()}")
        started = json.loads(line)
        self.url, self.pid = started["file"], started["pid"]
        return self

    def measure_lag(self) -> None:
        """The loop lag reported at exit starts from now."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write("now\n")
        self._process.stdin.flush()

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                assert self._process.stdout is not None
                last = self._process.stdout.readline()
                self.lag = json.loads(last) if last else {}
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def _batch(url: str, clients: int, size: int) -> float:
    """``clients`` curls fetch ``url`` at once; MiB/s of all of them together."""
    started = time.monotonic()
    curls = [subprocess.Popen(["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{size_download}",
                               url], stdout=subprocess.PIPE, text=True)
             for _ in range(clients)]
    got = [int(c.communicate(timeout=300)[0] or 0) for c in curls]
    elapsed = time.monotonic() - started
    if got != [size] * clients or any(c.returncode for c in curls):
        raise RuntimeError(f"{url}: clients got {got} bytes, not {size} each")
    return clients * size / MIB / elapsed


class _PeakRss:
    """Samples a process's RSS every 20 ms in a thread; :attr:`peak` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak = rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss(self._pid))

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _storm(url: str, size: int, requests: int) -> dict[str, int]:
    """:data:`PLAYERS` clients ask for ``requests`` ranges in all; counts by status."""
    chooser = random.Random(23)
    offsets = [chooser.randrange(0, size - RANGE_BYTES) for _ in range(requests)]
    counts = {"served": 0, "busy": 0, "bytes": 0}

    async def player(session: aiohttp.ClientSession) -> None:
        while offsets:
            start = offsets.pop()
            while True:
                headers = {"Range": f"bytes={start}-{start + RANGE_BYTES - 1}"}
                async with session.get(url, headers=headers) as answer:
                    body = await answer.read()
                    if answer.status == 503:
                        counts["busy"] += 1
                        await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                        continue
                    if answer.status != 206 or len(body) != RANGE_BYTES:
                        raise RuntimeError(f"a range got {answer.status}, {len(body)} bytes")
                    counts["served"] += 1
                    counts["bytes"] += len(body)
                    break

    connector = aiohttp.TCPConnector(limit=PLAYERS)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(player(session) for _ in range(PLAYERS)))
    return counts


def _storm_rows(ctx: BenchContext, file: Path, size: int) -> tuple[list[Row], dict[str, Any]]:
    requests = ctx.pick(4000, 300)
    with _LinkServer(file, ctx.path("http", "storm")) as ariabot:
        _batch(ariabot.url, 1, size)  # warm-up
        baseline = rss(ariabot.pid)
        ariabot.measure_lag()
        with _PeakRss(ariabot.pid) as peak:
            started = time.monotonic()
            counts = asyncio.run(_storm(ariabot.url, size, requests))
            seconds = time.monotonic() - started
    growth = peak.peak - baseline
    lag = ariabot.lag
    figures = {"storm": {**counts, "seconds": seconds, "players": PLAYERS,
                         "rss_growth": growth, **lag}}
    rows = [
        Row(NAME, f"Range storm: {PLAYERS} players, {requests} x 512 KiB: loop lag max",
            lag.get("lag_max_ms"), None, "ms",
            note=f"{counts['served'] / seconds:.0f} ranges/s; {counts['busy']} answers 503 "
                 "Retry-After (bound: web.MAX_REQUESTS at once)"),
        Row(NAME, "Range storm: loop lag p99", lag.get("lag_p99_ms"), None, "ms",
            target=f"<{LAG_TARGET_MS:g} ms",
            met=lag.get("lag_p99_ms", math.inf) < LAG_TARGET_MS),
        Row(NAME, "Range storm: ariabot RSS growth", growth / MIB, None, "MiB",
            target=f"<{RSS_TARGET // MIB} MiB", met=growth < RSS_TARGET),
    ]
    return rows, figures


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring)."""
    result = BenchResult()
    size = ctx.pick(1024 * MIB, 16 * MIB)
    rounds = ctx.pick(3, 1)
    folder = ctx.path("http", "files")
    file = folder / "big file.bin"
    _make_file(file, size)
    prefix = ctx.path("http", "nginx")
    speeds: dict[str, dict[int, list[float]]] = {"ariabot": {1: [], 4: []},
                                                 "nginx": {1: [], 4: []}}
    with _LinkServer(file, ctx.path("http", "state")) as ariabot, _Nginx(prefix, folder) as nginx:
        nginx_url = f"http://127.0.0.1:{nginx.port}/big%20file.bin"
        _batch(ariabot.url, 1, size)  # warm-up: the page cache, the first request's imports
        _batch(nginx_url, 1, size)
        baseline = rss(ariabot.pid)
        with _PeakRss(ariabot.pid) as peak:
            for _ in range(rounds):
                for clients in (1, 4):
                    speeds["ariabot"][clients].append(_batch(ariabot.url, clients, size))
                    speeds["nginx"][clients].append(_batch(nginx_url, clients, size))
    growth = peak.peak - baseline
    figures: dict[str, Any] = {"file_bytes": size, "rounds": rounds, "speeds_mib_s": speeds,
                               "rss_baseline": baseline, "rss_peak": peak.peak}
    result.figures.update(figures)
    for clients in (1, 4):
        best = max(speeds["ariabot"][clients])
        reference = max(speeds["nginx"][clients])
        ratio = speed_ratio(best, reference)
        result.rows.append(Row(
            NAME, f"{size // MIB} MiB to {clients} client{'s' if clients > 1 else ''} "
            f"(best of {rounds})", best, reference, "MiB/s", ratio,
            f"≥{RATIO_TARGET:g} x nginx", ratio is not None and ratio >= RATIO_TARGET))
    result.rows.append(Row(NAME, "ariabot RSS growth while serving", growth / MIB, None, "MiB",
                           target=f"<{RSS_TARGET // MIB} MiB", met=growth < RSS_TARGET))
    result.notes.append("http reference: nginx, 1 worker, sendfile on, same file, same run; "
                        "clients: curl to /dev/null")
    rows, storm = _storm_rows(ctx, file, size)
    result.rows.extend(rows)
    result.figures.update(storm)
    return result
