"""Secrets never reach a log line, whoever logs them, in text or JSON; aria2.log is capped."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.logs import MASK, JsonFormatter, RedactingFormatter, cap_file, setup_logging


def test_registered_secrets_are_masked_in_any_logger() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter = RedactingFormatter("%(name)s %(message)s", ["123:TOKEN"])
    formatter.add_secret("rpcsecret")
    formatter.add_secret("")
    handler.setFormatter(formatter)
    logger = logging.getLogger("httpx.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("POST https://api/bot123:TOKEN/getMe with token:%s", "rpcsecret")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "TOKEN" not in text and "rpcsecret" not in text
    assert text.count(MASK) == 2


# --- JSON lines --------------------------------------------------------------------------

TOKEN = "123456:" + "S" * 35


@pytest.fixture
def root_logging() -> Iterator[None]:
    """setup_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    httpx_level = logging.getLogger("httpx").level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(httpx_level)


def _record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("ariabot.test", logging.WARNING, __file__, 1, message, args,
                             exc_info)  # type: ignore[arg-type]


def test_json_line_has_time_level_logger_message() -> None:
    line = JsonFormatter().format(_record("download #%d %s", 3, "queued -> downloading"))
    assert "\n" not in line
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message"}
    assert entry["level"] == "WARNING" and entry["logger"] == "ariabot.test"
    assert entry["message"] == "download #3 queued -> downloading"
    assert entry["time"].endswith("+00:00") and "T" in entry["time"]


def test_json_masks_secrets_like_the_text_format() -> None:
    text = RedactingFormatter("%(message)s", [TOKEN])
    structured = JsonFormatter([TOKEN])
    for formatter in (text, structured):
        formatter.add_secret("rpc-secret_1")
    record = _record("GET https://api/bot%s/getMe token:%s", TOKEN, "rpc-secret_1")
    assert text.format(record) == f"GET https://api/bot{MASK}/getMe token:{MASK}"
    assert json.loads(structured.format(record))["message"] == text.format(record)


def test_json_masks_a_secret_in_a_traceback_and_keeps_one_line() -> None:
    try:
        raise RuntimeError(f"failed with {TOKEN}\nsecond line")
    except RuntimeError:
        record = _record("boom", exc_info=sys.exc_info())
    line = JsonFormatter([TOKEN]).format(record)
    assert "\n" not in line and TOKEN not in line
    entry = json.loads(line)
    assert "RuntimeError: failed with ********" in entry["exception"]


def test_json_masks_a_secret_that_json_would_escape() -> None:
    secret = 'se"cr\\et'
    line = JsonFormatter([secret]).format(_record("value %s", secret))
    assert json.loads(line)["message"] == f"value {MASK}"


def test_setup_logging_json_writes_one_object_per_line(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    formatter = setup_logging("INFO", [TOKEN], "json")
    formatter.add_secret("later-secret")
    logging.getLogger("ariabot.downloads").info("download #1 added: %r", "a<b&c")
    logging.getLogger("httpx").info("POST https://api.telegram.org/bot%s/getUpdates", TOKEN)
    logging.getLogger("x").warning("rpc token:later-secret, bot %s", TOKEN)
    lines = capsys.readouterr().err.strip().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["logger"] for e in entries] == ["ariabot.downloads", "x"]  # httpx INFO is off
    assert entries[1]["message"] == f"rpc token:{MASK}, bot {MASK}"
    assert TOKEN not in "".join(lines) and "later-secret" not in "".join(lines)


def test_setup_logging_text_is_the_default(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("WARNING", [TOKEN])
    logging.getLogger("ariabot.x").info("not shown")
    logging.getLogger("ariabot.x").warning("token %s", TOKEN)
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.endswith(f"WARNING ariabot.x: token {MASK}")


def test_unknown_log_format_is_refused(root_logging: None) -> None:
    with pytest.raises(ValueError, match="text, json"):
        setup_logging("INFO", (), "xml")


# --- aria2.log cap ------------------------------------------------------------------------


def test_cap_file_leaves_a_small_or_missing_file_alone(tmp_path: Path) -> None:
    log_file = tmp_path / "aria2.log"
    assert not cap_file(log_file, 10, in_use=False)
    log_file.write_bytes(b"x" * 10)
    assert not cap_file(log_file, 10, in_use=True)
    assert log_file.read_bytes() == b"x" * 10 and not (tmp_path / "aria2.log.1").exists()


def test_cap_file_renames_a_large_file_and_keeps_one_old_copy(tmp_path: Path) -> None:
    log_file = tmp_path / "aria2.log"
    (tmp_path / "aria2.log.1").write_bytes(b"older")
    log_file.write_bytes(b"y" * 11)
    assert cap_file(log_file, 10, in_use=False)
    assert not log_file.exists()
    assert (tmp_path / "aria2.log.1").read_bytes() == b"y" * 11


def test_cap_file_in_use_copies_then_truncates_so_appends_start_over(tmp_path: Path) -> None:
    log_file = tmp_path / "aria2.log"
    log_file.write_bytes(b"z" * 11)
    with log_file.open("ab") as writer:  # what aria2c holds: O_APPEND
        assert cap_file(log_file, 10, in_use=True)
        writer.write(b"next line\n")
    assert (tmp_path / "aria2.log.1").read_bytes() == b"z" * 11
    assert log_file.read_bytes() == b"next line\n"
