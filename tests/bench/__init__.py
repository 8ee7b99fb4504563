"""Benchmarks of ariabot against the original design and against raw aria2c (issue 7).

Not timed tests: they measure and report, side by side in the same run, and never fail on a
missed target (a benchmark that *crashes* does make the command exit non-zero). Run::

    ./setup.sh bench                 # the full run (about 10 minutes on 2 cores)
    ./setup.sh bench --smoke         # shrunk sizes; what CI runs (tests/unit/test_bench_smoke.py)
    .venv/bin/python -m tests.bench --only monitor --json /tmp/monitor.json

It prints one table (benchmark, metric, ariabot, reference, ratio, target, met?) and writes
every figure to ``bench-results.json`` (git-ignored). One module per benchmark:

======================  ==========================================================
:mod:`.monitor`         1. monitor cost vs the original sketch (:mod:`.baseline`)
:mod:`.throughput`      2. download throughput vs plain aria2c
:mod:`.latency`         3. aria2 completion → store → Telegram message
:mod:`.recovery`        4. ``kill -9`` aria2c mid-download
:mod:`.startup`         5. ``ariabot run`` → aria2c RPC ready
:mod:`.traffic`         6. Telegram requests with 20 downloads in one chat
:mod:`.memory`          7. RSS with many tracked / completed downloads
:mod:`.scale`           8. ``ariabot run`` with 10,000 stored downloads: start-up, RSS, list
:mod:`.links`           9. HTTP links: a file to 1 and 4 clients vs nginx; RSS (:mod:`.linkserve`)
======================  ==========================================================

Everything runs on 127.0.0.1; every process a benchmark starts is stopped by it.
"""
