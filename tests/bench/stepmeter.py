"""``python -m tests.bench.stepmeter ARGS…``: ``python -m supervisor ARGS…`` with the steps of
its event loop timed, for the benchmarks' "loop held" rows.

Every callback the loop runs (a task's step from one ``await`` to the next, a timer, an I/O
callback) goes through ``asyncio.events.Handle._run``; wrapped, each one that takes
:data:`SLOW` or more is written to the file named by :data:`STEPS_ENV`: when it started
(``time.monotonic()``, the same clock in every process of the machine), how long it took,
and what it was. The longest step within a window is how long one request held the loop,
as exactly as the process can tell: a thread that asks ``health`` over the control socket
meanwhile measures that and the machine's scheduling too (on two busy cores, several ms).
A step that waits for the GIL another thread holds counts in full: the loop is held all the
same.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SLOW", "STEPS_ENV", "Step", "slowest"]

STEPS_ENV = "BENCH_LOOP_STEPS"
"""The environment variable that names the file the steps are written to."""

SLOW = 0.001
"""Steps shorter than this (seconds) are not written."""


@dataclass(frozen=True)
class Step:
    """One step of the loop that took :data:`SLOW` or more."""

    started: float
    seconds: float
    what: str


def _install(path: Path) -> None:
    """Time every step of every event loop of this process into ``path``."""
    out = path.open("a", buffering=1)  # a line at a time: read while the process runs
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        started = time.monotonic()
        try:
            run(handle)
        finally:
            took = time.monotonic() - started
            if took >= SLOW:
                out.write(f"{started:.6f} {took:.6f} {_describe(handle)}\n")

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


def _describe(handle: asyncio.events.Handle) -> str:
    """What a step was: its task's name and where the task waits now (the innermost
    coroutine and line), or the callback's repr."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if not isinstance(task, asyncio.Task):
        return repr(handle)[:300].replace("\n", " ")
    where, coro = [], task.get_coro()
    while coro is not None and hasattr(coro, "cr_frame"):
        frame = coro.cr_frame
        if frame is not None:
            where.append(f"{frame.f_code.co_qualname}:{frame.f_lineno}")
        coro = coro.cr_await
    return f"task {task.get_name()}: {' > '.join(where[-3:]) or 'done'}"


def slowest(path: Path, since: float, until: float) -> Step | None:
    """The longest step that started between ``since`` and ``until`` (monotonic seconds)."""
    found: Step | None = None
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        try:
            started, seconds, what = line.split(" ", 2)
            step = Step(float(started), float(seconds), what)
        except ValueError:
            continue  # the line the process is writing now
        if since <= step.started <= until and (found is None or step.seconds > found.seconds):
            found = step
    return found


if __name__ == "__main__":
    _install(Path(os.environ[STEPS_ENV]))
    sys.argv = ["supervisor", *sys.argv[1:]]
    runpy.run_module("supervisor", run_name="__main__", alter_sys=True)
