"""``ariabot add --wait``: what it prints while it waits, and ``--timeout`` (injected clock)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from supervisor.__main__ import _wait, main
from supervisor.exits import EXIT_ERROR, EXIT_TIMEOUT


def torrent(state: str = "metadata", progress: float = 0.0, speed: int = 0,
            stuck: str | None = None, error: str | None = None) -> dict[str, Any]:
    return {"id": 7, "name": "album", "state": state, "progress": progress,
            "completed_bytes": int(progress * 1000), "total_bytes": 1000,
            "download_speed": speed, "queue_position": None, "stuck_reason": stuck,
            "error": error}


class Answers:
    """A control client that answers ``status`` from a script (the last answer repeats)."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def request(self, operation: str, **fields: Any) -> dict[str, Any]:
        self.requests.append((operation, fields))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return {"ok": True, "torrent": answer}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_line_per_state_reason_or_tenth_never_per_poll() -> None:
    client = Answers(
        torrent(), torrent(),
        torrent(stuck="waiting for metadata for 3 min (0 peers)"),
        torrent(stuck="waiting for metadata for 3 min (0 peers)"),
        torrent("downloading", 0.01, 500), torrent("downloading", 0.02, 900),
        torrent("downloading", 0.05, 700), torrent("downloading", 0.12, 800),
        torrent("downloading", 0.13, 100), torrent("complete", 1.0),
    )
    clock, out = Clock(), io.StringIO()
    assert _wait(client, 7, out, clock=clock, sleep=clock.sleep) == 0  # type: ignore[arg-type]
    lines = out.getvalue().splitlines()
    assert len(client.requests) == 10
    assert len(lines) == 5, lines
    assert "metadata" in lines[0] and "(" not in lines[0]
    assert lines[1].endswith("(waiting for metadata for 3 min (0 peers))")
    assert "downloading" in lines[2] and "1.0%" in lines[2]
    assert "12.0%" in lines[3] and "complete" in lines[4]


def test_timeout_stops_waiting_with_exit_4_and_leaves_the_download_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = Answers(torrent(stuck="no peers found for 2 min"))
    clock, out = Clock(), io.StringIO()
    code = _wait(client, 7, out, 3, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    assert code == EXIT_TIMEOUT == 4
    assert clock.now == pytest.approx(1003.0)
    assert {operation for operation, _ in client.requests} == {"status"}
    assert len(out.getvalue().splitlines()) == 1  # the stuck line, once
    assert capsys.readouterr().err == (
        "ariabot: stopped waiting after 3 s; #7 is still metadata (no peers found for 2 min); "
        "it goes on in the background ('ariabot status 7' shows it)\n")


def test_no_timeout_waits_as_long_as_it_takes() -> None:
    client = Answers(*[torrent()] * 500, torrent("complete", 1.0))
    clock = Clock()
    assert _wait(client, 7, io.StringIO(), clock=clock, sleep=clock.sleep) == 0  # type: ignore[arg-type]
    assert clock.now - 1000 == pytest.approx(250)


def test_failure_still_exits_1_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    client = Answers(torrent("error", error="disk full"))
    clock = Clock()
    assert _wait(client, 7, io.StringIO(), 60, clock=clock,  # type: ignore[arg-type]
                 sleep=clock.sleep) == EXIT_ERROR
    assert capsys.readouterr().err == "ariabot: #7 error: disk full\n"


def test_terminal_rewrites_the_line_and_keeps_each_milestone_on_screen() -> None:
    client = Answers(torrent("downloading", 0.01, 100), torrent("downloading", 0.02, 200),
                     torrent("downloading", 0.02, 200, stuck="no data for 5 min (3 peers)"),
                     torrent("complete", 1.0))
    clock, out = Clock(), Terminal()
    assert _wait(client, 7, out, clock=clock, sleep=clock.sleep) == 0  # type: ignore[arg-type]
    text = out.getvalue()
    assert text.count("\r\x1b[2K") == 2  # the first line, then a speed-only change
    assert text.endswith("\n")
    kept = text.split("\n")
    assert len(kept) == 4 and kept[-1] == ""
    assert "(no data for 5 min (3 peers))" in kept[1] and "complete" in kept[2]


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_bad_timeout_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["add", "magnet:?xt=urn:btih:" + "a" * 40, "--wait", "--timeout", value])
    assert stop.value.code == 2
    assert "--timeout" in capsys.readouterr().err
