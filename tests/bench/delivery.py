"""Benchmark 9: ariabot's memory while it sends a 1 GB file into a chat.

A child process is the sending side, exactly as ariabot sends: the real python-telegram-bot
``Bot`` and :class:`bot.delivery.Deliveries`. The fake Bot API servers run in this process
(so their buffers are not counted), streaming what they receive to a SHA-1:

*cloud*: Telegram's 50 MB limit; the file goes in numbered parts of 50 MiB, each streamed
from disk by a :class:`bot.partreader.PartReader`.
*local*: a ``--local`` server with its 2000 MB limit; the file is passed by path and the
server reads it from disk.

The child samples its own RSS every 5 ms (psutil) before and during each send; figures are
the peak growth over the RSS just before the send, and how long the send took. It also
watches its event loop (:class:`tests.bench.looplag.LoopLag`, a wake-up asked every 2 ms):
the Bot is built with ariabot's request (:func:`bot.uploads.bot_request`), so the parts are
read from disk in a worker thread, and the loop's lag while the file goes out (max and p99)
must stay under 10 ms: the bot's other chats and the link server share that loop. The file
is dropped from the page cache before each send, so its parts come from the disk. The old
"Send file" read the whole file into memory (``read_bytes``): its growth would be the file's
size, 1 GiB, shown as the reference.

Smoke: a 12 MiB file in 4 MiB parts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tests.bench.common import MIB, BenchContext, BenchResult, Row
from tests.fakes.telegram_api import FakeTelegramServer

__all__ = ["NAME", "TITLE", "run"]

NAME = "delivery"
TITLE = "9. Telegram delivery memory"
CHAT = 1001
_BLOCK = MIB
LAG_TARGET_MS = 10.0


def _make_file(path: Path, size: int) -> None:
    block = bytes(range(256)) * (_BLOCK // 256)
    with path.open("wb") as out:
        for _ in range(size // _BLOCK):
            out.write(block)
        out.write(block[: size % _BLOCK])


def _evict(path: Path) -> None:
    """Drop the file from the page cache, so it is read from the disk as a download just
    finished long ago would be (a read then can take milliseconds, not microseconds)."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


class _Peak:
    """Samples this process's RSS in a thread; the highest since :meth:`reset`."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def reset(self) -> int:
        self.peak = now = self._process.memory_info().rss
        return now

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)


async def _child(url: str, out: Any, limit: int, local_mode: bool) -> dict[str, Any]:
    """The sending side: one send of ``out`` (an OutFile); its RSS figures."""
    from telegram import Bot  # noqa: PLC0415 - only the child needs them

    from bot.delivery import Deliveries  # noqa: PLC0415
    from bot.uploads import bot_request  # noqa: PLC0415
    from manager import Store  # noqa: PLC0415
    from tests.bench.looplag import LoopLag  # noqa: PLC0415
    from tests.partledger import StoreLedger  # noqa: PLC0415

    bot = Bot("123456:" + "A" * 35, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot",
              local_mode=local_mode, request=bot_request())
    await bot.initialize()
    ledger = Store(f"sqlite:///{out.path.parent / 'sent.db'}")  # the confirmed parts
    await ledger.open()
    deliveries = Deliveries(bot, StoreLedger(ledger), limit=limit, local_mode=local_mode,
                            edit_interval=2.0)
    peak = _Peak()
    lag = LoopLag()
    try:
        await asyncio.sleep(0.2)
        _evict(out.path)
        before = peak.reset()
        started = time.monotonic()
        lag.start()
        deliveries.start(CHAT, 1, out.name, [out], None)
        while deliveries.busy(CHAT, 1):  # noqa: ASYNC110 - a job has no end event; 10 ms will do
            await asyncio.sleep(0.01)
        seconds = time.monotonic() - started
        lagged = await lag.stop()
        return {"before": before, "peak": peak.peak, "seconds": seconds,
                "lag_max_ms": lagged.max_ms, "lag_p99_ms": lagged.p99_ms}
    finally:
        peak.close()
        await deliveries.close()
        await bot.shutdown()
        await ledger.close()


async def _send(server: FakeTelegramServer, path: Path, size: int, limit: int,
                local_mode: bool) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.delivery", "--url", server.url, "--file", str(path),
        "--limit", str(limit), *(["--local"] if local_mode else []),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the sending child failed ({child.returncode})")
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    documents = [r for r in server.requests_for("sendDocument") if r.status == 200]
    sizes = [server.file(r.response["result"]["document"]["file_id"]).file_size
             for r in documents]
    if sum(sizes) != size:
        raise RuntimeError(f"the server got {sum(sizes)} bytes in {len(sizes)} documents, "
                           f"not {size}")
    figures["documents"] = len(documents)
    return figures


async def _measure(path: Path, size: int, limit: int) -> dict[str, dict[str, Any]]:
    results = {}
    async with FakeTelegramServer(upload_limit=limit, keep_bytes=0, limits=None) as cloud:
        results["cloud"] = await _send(cloud, path, size, limit, local_mode=False)
    async with FakeTelegramServer(local_mode=True, keep_bytes=0, limits=None) as local:
        results["local"] = await _send(local, path, size, 2000 * MIB, local_mode=True)
    return results


def run(ctx: BenchContext) -> BenchResult:
    """Send one file in both modes; RSS growth of the sending process."""
    size = ctx.pick(1024 * MIB, 12 * MIB)
    limit = ctx.pick(50 * MIB, 4 * MIB)
    folder = ctx.path("delivery")
    path = folder / "big.bin"
    _make_file(path, size)
    try:
        results = asyncio.run(_measure(path, size, limit))
    finally:
        path.unlink(missing_ok=True)
    result = BenchResult(figures={"file_bytes": size, "part_bytes": limit, **results})
    for mode, target, bound in (("cloud", f"< {limit // MIB} MiB (one part)", limit),
                                ("local", "< 20 MiB", 20 * MIB)):
        figures = results[mode]
        growth = (figures["peak"] - figures["before"]) / MIB
        result.rows.append(Row(
            NAME, f"RSS growth sending {size // MIB} MiB, {mode}"
            + (f" ({figures['documents']} parts)" if mode == "cloud" else " (by path)"),
            growth, reference=size / MIB, unit="MiB", ratio=(size / MIB) / max(growth, 0.1),
            target=target, met=growth * MIB < bound,
            note="reference: the old Send file read the whole file into memory"))
        result.rows.append(Row(NAME, f"send time, {mode}", figures["seconds"], unit="s",
                               note="to the fake server on loopback"))
        for which in ("max", "p99"):
            lag = figures[f"lag_{which}_ms"]
            result.rows.append(Row(
                NAME, f"event loop lag sending {size // MIB} MiB, {mode}: {which}", lag,
                unit="ms", target=f"< {LAG_TARGET_MS:g} ms", met=lag < LAG_TARGET_MS,
                note="parts read in a worker thread (bot/uploads.py); a 2-core machine "
                     "shared with the fake server shows in the max"))
    return result


def _main() -> None:
    parser = argparse.ArgumentParser(description="the sending side of the delivery bench")
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--local", action="store_true")
    args = parser.parse_args()
    from bot.delivery import OutFile  # noqa: PLC0415 - only the child needs it
    stat = args.file.stat()
    out = OutFile(1, args.file.name, args.file, stat.st_size, stat.st_mtime_ns)
    figures = asyncio.run(_child(args.url, out, args.limit, args.local))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    _main()
