"""aria2.log stays bounded while aria2c runs: the health loop copies and truncates it."""

from __future__ import annotations

import shutil
from pathlib import Path

from manager.aria2rpc import Aria2Endpoint, Aria2Rpc
from supervisor.config import load_settings
from supervisor.layout import StateLayout
from supervisor.process import Aria2Process, SupervisionPolicy
from supervisor.render import new_secret, pick_free_port, render_config
from tests.runner import free_port, until


async def test_a_running_aria2c_keeps_logging_after_its_log_was_capped(tmp_path: Path) -> None:
    settings = load_settings(None, {
        "ARIABOT_DATA_DIR": str(tmp_path), "ARIABOT_ENABLE_DHT": "false",
        "ARIABOT_LISTEN_PORT": str(free_port()),
    })
    layout = StateLayout(tmp_path)
    layout.create()
    endpoint = Aria2Endpoint(pick_free_port(), new_secret())
    render_config(settings, layout, port=endpoint.port, secret=endpoint.secret)
    aria2c = shutil.which("aria2c")
    assert aria2c, "aria2c must be installed (./setup.sh test installs it)"
    process = Aria2Process(Path(aria2c), layout, endpoint,
                           SupervisionPolicy(health_interval=0.1), log_max_bytes=200)
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
