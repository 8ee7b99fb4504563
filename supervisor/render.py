"""Render ``aria2.conf.template`` into the data dir with this start's port and secret."""

from __future__ import annotations

import os
import secrets
import socket
import string
from importlib import resources
from pathlib import Path

from supervisor.config import Settings
from supervisor.layout import StateLayout, write_private

__all__ = ["SAVE_INTERVAL", "new_secret", "pick_free_port", "render_config", "shipped_file"]

SAVE_INTERVAL = 2
"""Seconds between session and control-file saves: a ``kill -9`` loses about this much."""


def shipped_file(name: str) -> Path:
    """Find a file shipped beside the code (``aria2.conf.template``, ``ariabot.toml``).

    A wheel carries them in ``supervisor/_shipped``; a source checkout (editable install)
    has them at the repository root and in ``conf/``.
    """
    packaged = resources.files("supervisor").joinpath("_shipped", name)
    if packaged.is_file():
        return Path(str(packaged))
    root = Path(__file__).resolve().parent.parent
    for candidate in (root / name, root / "conf" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"shipped file {name} is missing from this installation")


def new_secret() -> str:
    """A fresh RPC secret: 256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def pick_free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free TCP port on ``host`` (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def render_config(
    settings: Settings, layout: StateLayout, *, port: int, secret: str, owner_pid: int | None = None
) -> Path:
    """Write ``<data dir>/aria2.conf`` (mode 0600) and return its path.

    Parameters:
        settings: the validated settings.
        layout: where the state files live.
        port: the loopback RPC port aria2c must listen on.
        secret: the RPC secret (goes into the 0600 file only, never argv or logs).
        owner_pid: the pid aria2c watches with ``stop-with-process`` (this process).

    Raises:
        ValueError: a value would break the config file's line structure.
    """
    values = {
        "rpc_port": port,
        "rpc_secret": secret,
        # base64 grows a .torrent by 4/3; leave room for the JSON around it.
        "rpc_max_request_size": f"{settings.torrent_max_bytes * 4 // 3 // 1024 + 1024}K",
        "ariabot_pid": owner_pid if owner_pid is not None else os.getpid(),
        "session_file": layout.session,
        "save_interval": SAVE_INTERVAL,
        "download_dir": settings.download_dir,
        "file_allocation": settings.file_allocation,
        "max_concurrent": settings.max_concurrent,
        "seed_ratio": f"{settings.seed_ratio:.2f}",
        "seed_time": settings.seed_time,
        "bt_stop_timeout": settings.bt_stop_timeout,
        "listen_port": settings.listen_port,
        "enable_dht": "true" if settings.enable_dht else "false",
        "data_dir": layout.data_dir,
        "log_file": layout.aria2_log,
    }
    for name, value in values.items():
        if any(bad in str(value) for bad in ("\n", "\r", "\0")):
            raise ValueError(f"{name}: a line break or NUL cannot go into aria2.conf")
    template = string.Template(shipped_file("aria2.conf.template").read_text(encoding="utf-8"))
    write_private(layout.aria2_conf, template.substitute(values))
    return layout.aria2_conf
