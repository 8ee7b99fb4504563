"""aria2.log stays bounded while aria2c runs: the health loop copies and truncates it."""

from __future__ import annotations

from pathlib import Path

from manager.aria2.rpc import Aria2Rpc
from supervisor.process import SupervisionPolicy
from tests.integration.conftest import loopback_settings, prepare_aria2
from tests.runner import until


async def test_a_running_aria2c_keeps_logging_after_its_log_was_capped(tmp_path: Path) -> None:
    process, endpoint, layout = prepare_aria2(
        loopback_settings(tmp_path), SupervisionPolicy(health_interval=0.1), log_max_bytes=200)
    rotated = layout.data_dir / "aria2.log.1"
    rpc = Aria2Rpc(endpoint, timeout=5)
    await process.start()
    try:
        # aria2c logs its start (more than 200 bytes at notice level): the next probe caps it.
        await until(rotated.exists, 10, "aria2.log to be rotated")
        assert rotated.stat().st_size > 200
        await until(lambda: layout.aria2_log.stat().st_size < rotated.stat().st_size, 10,
                    "aria2.log to start over")
        # aria2c goes on writing into the truncated file, from its start (O_APPEND).
        before = layout.aria2_log.stat().st_size
        await rpc.call("aria2.addUri", ["http://127.0.0.1:9/nothing"], {"dir": str(tmp_path)})
        await until(lambda: layout.aria2_log.stat().st_size != before, 10, "a new log line")
        assert not layout.aria2_log.read_bytes().startswith(b"\0")
    finally:
        await rpc.close()
        await process.stop()
