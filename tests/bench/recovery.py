"""Benchmark 4: ``kill -9`` aria2c in the middle of a download.

A real ``ariabot run`` (local mode) with the **production** supervision settings (backoff,
health interval, min uptime: the defaults of ``conf/ariabot.toml``) downloads one torrent
from its magnet while the seeder's upload is capped. At about 35 % the benchmark reads
aria2's ``completedLength`` and at once sends SIGKILL to aria2c. Then it watches aria2's RPC
directly (port and secret from ``runtime.json``) every 20 ms:

* *RPC back*: the first answer of the restarted aria2c;
* *moving again*: the first ``completedLength`` above the value the restarted aria2c
  came back with (which is what its ``.aria2`` control file had kept);
* *re-downloaded* = completed just before the kill - completed after the restart;
  *what the control file lost* = completed just before the kill - the bytes of the whole
  pieces marked in the ``.aria2`` control file, read right after the kill. ariabot must not
  lose more than that (it would if it re-added the magnet from scratch, for instance).

Two cases, each twice in the full mode (smoke: one young): aria2c *settled* (up longer than
``min_uptime``: restarted at once) and *young* (killed before ``min_uptime``: restarted
after the first backoff delay; the seeder is 4x faster then, so that 35 % comes before
``min_uptime``).
aria2 acts on a 1 s tick, so "moving again" comes in steps of about a second.
The download is then followed to completion, and the store must hold it once.
"""

from __future__ import annotations

import os
import secrets
import signal
import struct
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from supervisor.config import FIELDS
from tests.bench.common import (
    MIB,
    BenchContext,
    BenchResult,
    Row,
    cost_ratio,
    median,
    start_ariabot,
    wait_for,
)
from tests.swarm import Leecher, SwarmTorrent, free_port

__all__ = ["NAME", "TITLE", "parse_control_file", "run"]

NAME = "recovery"
TITLE = "4. recovery after kill -9"
TARGET_SECONDS = 3.0
KILL_AT = 0.35
POLL = 0.02

PRODUCTION_SUPERVISION = {f.env: str(f.default) for f in FIELDS if f.section == "supervisor"}
"""The shipped defaults, overriding the fast ones tests.runner.AriabotRun uses."""


def parse_control_file(path: Path) -> dict[str, int]:
    """Read an aria2 ``.aria2`` control file (version 1, big-endian; aria2's manual).

    Returns:
        piece_length, total_length, ``complete_bytes`` (the pieces its bitfield marks done,
        the last one at its real size) and ``inflight_bytes`` (16 KiB blocks of the pieces
        it saved as in flight): what a restarted aria2c can resume from.
    """
    data = path.read_bytes()
    version = struct.unpack_from(">H", data, 0)[0]
    if version != 1:
        raise ValueError(f"{path}: control file version {version} is not supported")
    offset = 2 + 4
    (hash_length,) = struct.unpack_from(">I", data, offset)
    offset += 4 + hash_length
    piece_length, total_length, _uploaded, bitfield_length = struct.unpack_from(
        ">IQQI", data, offset)
    offset += 4 + 8 + 8 + 4
    bitfield = data[offset:offset + bitfield_length]
    offset += bitfield_length
    pieces = (total_length + piece_length - 1) // piece_length
    done = sum(bin(byte).count("1") for byte in bitfield)
    last_done = bool(bitfield[(pieces - 1) // 8] & (0x80 >> ((pieces - 1) % 8)))
    complete = done * piece_length
    if last_done:
        complete -= pieces * piece_length - total_length
    (inflight,) = struct.unpack_from(">I", data, offset)
    offset += 4
    inflight_bytes = 0
    for _ in range(inflight):
        _index, _length, block_bitfield_length = struct.unpack_from(">III", data, offset)
        offset += 12
        blocks = data[offset:offset + block_bitfield_length]
        offset += block_bitfield_length
        inflight_bytes += sum(bin(byte).count("1") for byte in blocks) * 16 * 1024
    return {"piece_length": piece_length, "total_length": total_length,
            "complete_bytes": complete, "inflight_bytes": inflight_bytes}


class _Rpc:
    """The benchmark's own look at aria2 (short timeouts: aria2c may be dead)."""

    def __init__(self, port: int, secret: str) -> None:
        self.url = f"http://127.0.0.1:{port}/jsonrpc"
        self.secret = secret
        self.session = requests.Session()

    def call(self, method: str, *params: Any) -> Any:
        answer = self.session.post(self.url, json={
            "jsonrpc": "2.0", "id": "b", "method": method,
            "params": [f"token:{self.secret}", *params]}, timeout=0.5).json()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def answers(self) -> bool:
        try:
            self.call("aria2.getVersion")
        except (requests.RequestException, ValueError, RuntimeError):
            self.session.close()
            self.session = requests.Session()
            return False
        return True

    def completed(self, info_hash: str) -> int | None:
        """completedLength of the torrent's real download (not its metadata), or None."""
        keys = ["infoHash", "completedLength", "numPieces", "status"]
        try:
            lists = [self.call("aria2.tellActive", keys),
                     self.call("aria2.tellWaiting", 0, 1000, keys)]
        except (requests.RequestException, ValueError, RuntimeError):
            return None
        for status in (s for found in lists for s in found):
            if status.get("infoHash") == info_hash and int(status.get("numPieces", 0)) > 0:
                return int(status["completedLength"])
        return None


def _kill_once(ctx: BenchContext, torrent: SwarmTorrent, case: str,
               rate: int) -> dict[str, Any]:
    folder = ctx.path("recovery", case)
    env = {**PRODUCTION_SUPERVISION, "ARIABOT_SEED_TIME": "0"}
    min_uptime = float(env["ARIABOT_MIN_UPTIME"])
    ariabot, info, control = start_ariabot(folder / "data", env)
    try:
        aria2c = psutil.Process(info["aria2c_pid"])
        if case == "settled":
            wait_for(lambda: time.time() - aria2c.create_time() > min_uptime + 0.5,
                     timeout=min_uptime + 5, what="aria2c to be up for min_uptime",
                     interval=0.1)
        rpc = _Rpc(info["rpc_port"], info["rpc_secret"])
        with ctx.swarm.throttled(rate):
            added = control.request("add", magnet=torrent.magnet, chat=0)
            if not added.get("ok"):
                raise RuntimeError(f"add refused: {added}")
            download_id = added["torrent"]["id"]
            threshold = int(torrent.total_bytes * KILL_AT)
            wait_for(lambda: (rpc.completed(torrent.info_hash) or 0) >= threshold,
                     timeout=120, what=f"{KILL_AT:.0%} downloaded", interval=POLL)
            uptime = time.time() - aria2c.create_time()
            before = rpc.completed(torrent.info_hash)
            os.kill(aria2c.pid, signal.SIGKILL)
            killed = time.monotonic()
            assert before is not None
            control_file = folder / "data" / "downloads" / "torrents" / "0" / (
                torrent.name + ".aria2")
            kept = parse_control_file(control_file)
            rpc_back, restored, trace = _watch_restart(rpc, torrent.info_hash, killed)
            listed, moving = trace[0][0], trace[-1][0]
        # Unthrottled from here: the rest only checks that it ends well, once.
        done = wait_for(lambda: control.request("status", id=download_id)["torrent"]["state"]
                        in ("complete", "seeding", "error"), timeout=120,
                        what="the download to finish", interval=0.1)
        final = control.request("list")["torrents"]
        new_info = ariabot.runtime() or {}
    finally:
        ariabot.stop()
    resumable = kept["complete_bytes"] + kept["inflight_bytes"]
    return {
        "case": case,
        "aria2c_uptime_at_kill_s": uptime,
        "min_uptime_s": min_uptime,
        "completed_before_kill": before,
        "completed_after_restart": restored,
        "control_file": kept,
        "redownloaded_bytes": before - restored,
        "control_file_lost_bytes": before - resumable,
        "kill_to_rpc_s": rpc_back,
        "kill_to_listed_s": listed,
        "kill_to_moving_s": moving,
        "trace_after_kill": trace,
        "finished": bool(done),
        "final_state": final[0]["state"] if final else None,
        "rows_in_store": len(final),
        "aria2c_pid_changed": new_info.get("aria2c_pid") not in (None, aria2c.pid),
    }


def _watch_restart(rpc: _Rpc, info_hash: str,
                   killed: float) -> tuple[float, int, list[tuple[float, int]]]:
    """Poll aria2 after the kill until the download moves again.

    Returns:
        seconds from the kill to the first RPC answer; the completed bytes the restarted
        aria2c came back with; ``(seconds after the kill, completed)`` of every reading
        from the first one listing the download to the first one above it.
    """
    wait_for(rpc.answers, timeout=60, what="aria2c's RPC after the kill", interval=POLL)
    rpc_back = time.monotonic() - killed
    trace: list[tuple[float, int]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        value = rpc.completed(info_hash)
        if value is not None:
            trace.append((time.monotonic() - killed, value))
            if value > trace[0][1]:
                return rpc_back, trace[0][1], trace
        time.sleep(POLL)
    raise TimeoutError("the download did not move again within 60 s of aria2c's restart")


def _raw_start(ctx: BenchContext, torrent: SwarmTorrent, rate: int) -> float:
    """Reference: a plain aria2c given the .torrent, from spawn to its first bytes.

    That is aria2's own floor for any restart (tracker announce, peer handshake), with
    no metadata phase (a restarted ariabot download has its metadata saved too).
    """
    folder = ctx.path("recovery", "raw")
    port, secret = free_port(), secrets.token_hex(16)
    source = torrent.write_torrent(folder)
    with ctx.swarm.throttled(rate):
        started = time.monotonic()
        leecher = Leecher(source, folder / "downloads", log_path=folder / "leecher.log",
                          extra_args=["--enable-rpc=true", "--rpc-listen-all=false",
                                      f"--rpc-listen-port={port}", f"--rpc-secret={secret}"])
        with leecher:
            rpc = _Rpc(port, secret)
            wait_for(lambda: (rpc.completed(torrent.info_hash) or 0) > 0, timeout=60,
                     what="plain aria2c's first bytes", interval=POLL)
            return time.monotonic() - started


def run(ctx: BenchContext) -> BenchResult:
    """Run the benchmark (see the module docstring)."""
    result = BenchResult()
    size = ctx.pick(128 * MIB, 16 * MIB)
    rate = ctx.pick(8 * MIB, 8 * MIB)
    torrent = ctx.swarm.add("recovery.bin", size, seed=41)
    cases = ctx.pick(["settled", "young"] * 2, ["young"])
    # The reference first, while the tracker knows only the seeder for this torrent.
    raw_start = _raw_start(ctx, torrent, rate)
    kills = [_kill_once(ctx, torrent, case, rate if case == "settled" else 4 * rate)
             for case in cases]
    result.figures.update(bytes=size, seeder_cap_bytes_s=rate, kills=kills,
                          raw_aria2c_spawn_to_first_bytes_s=raw_start,
                          supervision=dict(PRODUCTION_SUPERVISION))
    for kill in kills:
        label = f"{kill['case']} aria2c"
        if kill["case"] == "young" and kill["aria2c_uptime_at_kill_s"] >= kill["min_uptime_s"]:
            result.notes.append(f"{label}: it was up {kill['aria2c_uptime_at_kill_s']:.1f} s, "
                                "not younger than min_uptime, so it restarted at once")
        if kill["rows_in_store"] != 1 or kill["final_state"] not in ("complete", "seeding"):
            result.notes.append(f"{label}: after the kill the store holds "
                                f"{kill['rows_in_store']} row(s), state {kill['final_state']}")
    for case in dict.fromkeys(cases):
        mine = [k for k in kills if k["case"] == case]
        label = f"{case} aria2c (n={len(mine)})"
        moving = [k["kill_to_moving_s"] for k in mine]
        redownloaded = max(k["redownloaded_bytes"] for k in mine)
        lost = max(k["control_file_lost_bytes"] for k in mine)
        within = all(k["redownloaded_bytes"] <= k["control_file_lost_bytes"] for k in mine)
        result.rows += [
            Row(NAME, f"{label}: kill → RPC answers, max", max(k["kill_to_rpc_s"] for k in mine),
                unit="s"),
            Row(NAME, f"{label}: kill → moving, median (ref: raw start)", median(moving),
                raw_start, "s", cost_ratio(raw_start, median(moving))),
            Row(NAME, f"{label}: kill → moving, max", max(moving), raw_start, "s",
                cost_ratio(raw_start, max(moving)), f"≤{TARGET_SECONDS:g} s",
                max(moving) <= TARGET_SECONDS),
            Row(NAME, f"{label}: re-downloaded, max (ref: control file lost)",
                redownloaded / MIB, lost / MIB, "MiB", target="≤ ref", met=within),
        ]
    return result
