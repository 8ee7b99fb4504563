"""The control socket file: private from the moment it exists, without touching the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from supervisor.control import ControlServer


async def test_socket_is_0600_even_under_an_open_umask(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    server = ControlServer(object(), path)  # type: ignore[arg-type]
    old = os.umask(0)
    try:
        await server.start()
        try:
            assert os.umask(0) == 0  # start() left the process-wide umask alone
            assert stat.S_ISSOCK(path.stat().st_mode)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        finally:
            await server.stop()
    finally:
        os.umask(old)
    assert not path.exists()
