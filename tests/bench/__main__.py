"""``python -m tests.bench [--smoke] [--only NAME] [--json PATH]``: run, print, save.

``./setup.sh bench`` calls this. The exit code is 0 when every benchmark ran (whether or not
it met its target: these are measurements, not tests) and 1 when one of them crashed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.bench import (
    delivery,
    engines,
    feeds,
    latency,
    links,
    memory,
    miniapp,
    monitor,
    nodes,
    recovery,
    scale,
    startup,
    throughput,
    traffic,
)
from tests.bench.common import BenchContext, BenchResult, Row

__all__ = ["BENCHMARKS", "main"]

BENCHMARKS: tuple[ModuleType, ...] = (
    monitor, throughput, latency, recovery, startup, traffic, memory, scale, delivery, links,
    engines, feeds, miniapp, nodes,
)
"""Every benchmark module, in the order they run; each has NAME, TITLE and run(ctx)."""

REPO = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    names = [module.NAME for module in BENCHMARKS]
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="ariabot's benchmarks: ariabot vs the original design and raw aria2c.",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="small sizes and few repetitions (CI); figures are not meaningful")
    parser.add_argument("--only", action="append", choices=names, metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(names)}")
    parser.add_argument("--json", type=Path, default=REPO / "bench-results.json",
                        metavar="PATH", help="where to write every figure "
                        "(default: bench-results.json in the repository root)")
    parser.add_argument("--workdir", type=Path, metavar="DIR",
                        help="scratch folder (default: a new temporary folder, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser


def _number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "∞"
    magnitude = abs(value)
    if magnitude >= 100 or magnitude == int(magnitude):
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def _ratio(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞x"
    return f"{value:.3g}x" if value < 1000 else f"{value:.0f}x"


def table(rows: Sequence[Row]) -> str:
    """The results as an aligned text table."""
    header = ("benchmark", "metric", "ariabot", "reference", "ratio", "target", "met?")
    lines = [header]
    for row in rows:
        met = "—" if row.met is None else ("yes" if row.met else "NO")
        lines.append((row.benchmark, row.metric, _number(row.ariabot, row.unit),
                      _number(row.reference, row.unit), _ratio(row.ratio), row.target, met))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
                   .rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _machine() -> dict[str, Any]:
    aria2c = shutil.which("aria2c")
    version = ""
    if aria2c:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            version = subprocess.run([aria2c, "--version"], capture_output=True, text=True,
                                     timeout=10, check=False).stdout.splitlines()[0]
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "aria2c": version,
    }


def _run_one(module: ModuleType, ctx: BenchContext) -> dict[str, Any]:
    started = time.monotonic()
    print(f"== {module.TITLE} ...", file=sys.stderr, flush=True)
    try:
        result: BenchResult = module.run(ctx)
        error = None
    except Exception:
        result = BenchResult()
        error = traceback.format_exc()
        print(error, file=sys.stderr, flush=True)
    seconds = time.monotonic() - started
    print(f"== {module.TITLE}: {seconds:.1f} s{' (FAILED)' if error else ''}",
          file=sys.stderr, flush=True)
    return {
        "title": module.TITLE,
        "seconds": seconds,
        "error": error,
        "rows": [asdict(row) for row in result.rows],
        "figures": result.figures,
        "notes": result.notes,
        "not_measured": result.not_measured,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; print the table; write the JSON. Returns the exit code."""
    args = _parser().parse_args(argv)
    # SIGTERM (a CI timeout) unwinds like Ctrl-C: every benchmark's finally stops what it
    # started (aria2c, ariabot runs, the swarm) and the scratch folder is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    selected = [m for m in BENCHMARKS if not args.only or m.NAME in args.only]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ariabot-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = BenchContext(workdir, smoke=args.smoke)
    started, wall = datetime.now(UTC), time.monotonic()
    results: dict[str, Any] = {}
    try:
        for module in selected:
            results[module.NAME] = _run_one(module, ctx)
    finally:
        ctx.close()
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = [Row(**row) for result in results.values() for row in result["rows"]]
    print(table(rows))
    for name, result in results.items():
        for line in result["notes"]:
            print(f"note [{name}]: {line}")
        for line in result["not_measured"]:
            print(f"not measured [{name}]: {line}")
        if result["error"]:
            print(f"FAILED [{name}]: {result['error'].strip().splitlines()[-1]}")
    report = {
        "command": " ".join(["python -m tests.bench", *(argv if argv is not None
                                                         else sys.argv[1:])]),
        "mode": "smoke" if args.smoke else "full",
        "started": started.isoformat(),
        "seconds": time.monotonic() - wall,
        "machine": _machine(),
        "benchmarks": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_jsonable(report), indent=2, ensure_ascii=False) + "\n")
    print(f"figures written to {args.json} ({report['seconds']:.0f} s)")
    return 1 if any(result["error"] for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
