"""Benchmark 5: ``ariabot run`` → aria2c's RPC ready, median of 5 (smoke: 1).

Each start is a fresh ``python -m supervisor run`` (local mode, a new data dir) timed from
its spawn to ``runtime.json`` saying ``running`` (written once ``aria2.getSessionInfo``
answered), polled every 5 ms. psutil's start time of the aria2c it spawned splits that into
ariabot's own part (Python, imports, settings, lock, rendering) and aria2c's part (spawn →
RPC answering as ariabot sees it). Reference: a plain ``aria2c --enable-rpc`` spawned by the
benchmark, timed to its first ``aria2.getVersion`` answer the same way.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from tests.bench.common import BenchContext, BenchResult, Row, cost_ratio, median, wait_for
from tests.runner import AriabotRun
from tests.swarm import free_port, loopback_bt_args

__all__ = ["NAME", "TITLE", "run"]

NAME = "startup"
TITLE = "5. start-up"
TARGET = 1.0
POLL = 0.005


def _runtime(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _ariabot_once(folder: Path) -> dict[str, float]:
    ariabot = AriabotRun(folder / "data")
    started = time.monotonic()
    ariabot.start()
    try:
        assert ariabot.process is not None
        pid = ariabot.process.pid

        def running() -> dict[str, Any] | None:
            if ariabot.process is not None and ariabot.process.poll() is not None:
                raise RuntimeError(f"ariabot exited: {ariabot.output[-2000:]}")
            info = _runtime(folder / "data" / "runtime.json")
            if info and info.get("state") == "running" and info.get("ariabot_pid") == pid:
                return info
            return None

        info = wait_for(running, timeout=60, what="runtime.json to say running",
                        interval=POLL)
        ready = time.monotonic() - started
        # Both start times come from the same clock (boot time + ticks): their difference is
        # good to 10 ms, unlike a comparison with time.time() (boot time is whole seconds).
        spawned = (psutil.Process(info["aria2c_pid"]).create_time()
                   - psutil.Process(pid).create_time())
    finally:
        ariabot.stop()
    return {"ready_s": ready, "ariabot_part_s": spawned, "aria2c_part_s": ready - spawned}


def _aria2c_once(folder: Path) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    port, secret = free_port(), secrets.token_hex(16)
    session = requests.Session()

    def answers() -> bool:
        try:
            return "result" in session.post(
                f"http://127.0.0.1:{port}/jsonrpc", timeout=1,
                json={"jsonrpc": "2.0", "id": "s", "method": "aria2.getVersion",
                      "params": [f"token:{secret}"]}).json()
        except (requests.RequestException, ValueError):
            return False

    started = time.monotonic()
    process = subprocess.Popen(
        ["aria2c", "--no-conf=true", "--enable-rpc=true", "--rpc-listen-all=false",
         f"--rpc-listen-port={port}", f"--rpc-secret={secret}", f"--dir={folder}",
         *loopback_bt_args(free_port())],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(answers, timeout=30, what="plain aria2c's RPC", interval=POLL)
        return time.monotonic() - started
    finally:
        process.terminate()
        process.wait(10)
        session.close()


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring)."""
    result = BenchResult()
    count = ctx.pick(5, 1)
    starts = [_ariabot_once(ctx.path("startup", f"ariabot-{i}")) for i in range(count)]
    plain = [_aria2c_once(ctx.path("startup", f"aria2c-{i}")) for i in range(count)]
    ready = median([s["ready_s"] for s in starts])
    result.figures.update(ariabot=starts, plain_aria2c_s=plain, runs=count)
    result.rows += [
        Row(NAME, f"run → RPC ready (median of {count})", ready, median(plain), "s",
            cost_ratio(median(plain), ready), f"≤{TARGET:g} s", ready <= TARGET),
        Row(NAME, "  of which ariabot before spawning aria2c",
            median([s["ariabot_part_s"] for s in starts]), unit="s"),
        Row(NAME, "  of which aria2c spawn → ready", median([s["aria2c_part_s"] for s in starts]),
            median(plain), "s"),
    ]
    result.notes.append("startup reference: a plain aria2c --enable-rpc, spawn → first answer")
    return result
