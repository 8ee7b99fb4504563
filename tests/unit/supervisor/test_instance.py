"""One instance per data dir, and only our own stale aria2c is ever stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.instance import (
    AlreadyRunning,
    InstanceLock,
    RuntimeInfo,
    read_runtime,
    stop_stale_aria2c,
    write_runtime,
)
from supervisor.layout import StateLayout


def test_second_lock_on_the_same_dir_is_refused(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    layout.create()
    with InstanceLock(layout.lock), pytest.raises(AlreadyRunning, match="already running"):
        InstanceLock(layout.lock).acquire()
    with InstanceLock(layout.lock):  # released: can be taken again
        pass


def test_runtime_round_trip_hides_secret_in_repr(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    info = RuntimeInfo(1, 2, 3, "s3cret", "/x/aria2.conf", "sid", "running")
    write_runtime(layout, info)
    assert read_runtime(layout) == info
    assert "s3cret" not in repr(info)
    assert (layout.runtime.stat().st_mode & 0o777) == 0o600


def test_unrelated_process_with_the_recorded_pid_is_left_alone(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        write_runtime(layout, RuntimeInfo(1, bystander.pid, 3, "s", str(layout.aria2_conf)))
        assert stop_stale_aria2c(layout) is None
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_no_runtime_file_means_nothing_to_stop(tmp_path: Path) -> None:
    assert stop_stale_aria2c(StateLayout(tmp_path)) is None
