"""Reading rclone's stderr: the lines below are what rclone 1.60 writes (copied from runs)."""

from __future__ import annotations

import pytest

from manager import UploadStats
from supervisor.rclonelog import RcloneLine, is_permanent, parse_line, plain_reason

STATS = ('{"level":"warning","msg":"\\nTransferred: 1.527 MiB / 2.861 MiB, 53%","source":'
         '"accounting/stats.go:482","stats":{"bytes":1601539,"checks":0,"elapsedTime":1.54,'
         '"errors":0,"eta":1,"fatalError":false,"speed":1076596.67,"totalBytes":3000003,'
         '"transferring":[{"bytes":1601536,"name":"d/a.bin","size":3000000}]},'
         '"time":"2026-12-03T13:41:51.892691+00:00"}')
COPY_FAILED = ('{"level":"error","msg":"Failed to copy: Update mkParentDir failed: Mkcol '
               '\\"http://127.0.0.1:18765/up/d/\\": dial tcp 127.0.0.1:18765: connect: '
               'connection refused","object":"d/a.bin","objectType":"*local.Object",'
               '"source":"operations/operations.go:538","time":"2026-12-03T13:45:26+00:00"}')
NO_SECTION = ('2026/12/03 13:42:27 Failed to create file system for "nosuch:x": didn\'t find '
              'section in config file')


def test_a_stats_line_gives_bytes_total_speed_and_eta() -> None:
    assert parse_line(STATS) == RcloneLine(stats=UploadStats(
        bytes=1601539, total_bytes=3000003, speed=1076596, eta_seconds=1))


def test_a_stats_line_without_an_eta_yet() -> None:
    line = STATS.replace('"eta":1', '"eta":null')
    assert parse_line(line).stats == UploadStats(1601539, 3000003, 1076596, None)


def test_an_error_line_names_its_file() -> None:
    line = parse_line(COPY_FAILED)
    assert line.object == "d/a.bin" and line.error is not None
    assert line.error.startswith("Failed to copy: Update mkParentDir failed")


def test_a_plain_fatal_line_before_the_json_logger_is_an_error() -> None:
    assert parse_line(NO_SECTION).error == (
        'Failed to create file system for "nosuch:x": didn\'t find section in config file')


@pytest.mark.parametrize("line", ["", "   ", "{not json", "[1, 2]", '{"level":"info",'
                                  '"msg":"Copied (new)","object":"d/b.txt"}',
                                  "Transferred: 1 / 2, 50%"])
def test_anything_else_reads_as_nothing(line: str) -> None:
    assert parse_line(line) == RcloneLine()


def test_plain_words_first_then_rclones_own_without_local_paths_or_credentials() -> None:
    reason = plain_reason("Attempt 1/1 failed with 1 errors and: open /srv/dl/torrents/5/x.bin:"
                          " connection refused via https://user:pw@dav.example/up",
                          hide=["/srv/dl/torrents/5"])
    assert reason == ("the remote refused the connection (is it up?) — rclone said: open "
                      "x.bin: connection refused via https://dav.example/up")


def test_an_unknown_reason_is_rclones_words_cut_short() -> None:
    reason = plain_reason("x" * 1000)
    assert reason.startswith("rclone said: xxx") and len(reason) < 320
    assert plain_reason("") == "rclone gave no reason"


@pytest.mark.parametrize(("code", "message", "permanent"), [
    (2, "syntax error", True),
    (7, "fatal error", True),
    (1, "didn't find section in config file", True),
    (1, "HTTP 401 Unauthorized", True),
    (5, "connection refused", False),
    (1, "connection reset by peer", False),
    (3, "directory not found", False),
])
def test_what_another_attempt_cannot_fix(code: int, message: str, permanent: bool) -> None:
    assert is_permanent(code, message) is permanent
