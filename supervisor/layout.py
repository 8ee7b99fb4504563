"""Where ariabot keeps each piece of its state inside the data directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StateLayout", "write_private"]


@dataclass(frozen=True)
class StateLayout:
    """The files of one ariabot instance; one data dir is one instance (see the lock)."""

    data_dir: Path

    @property
    def lock(self) -> Path:
        return self.data_dir / "ariabot.lock"

    @property
    def aria2_conf(self) -> Path:
        return self.data_dir / "aria2.conf"

    @property
    def session(self) -> Path:
        return self.data_dir / "aria2.session"

    @property
    def aria2_log(self) -> Path:
        return self.data_dir / "aria2.log"

    @property
    def aria2_console(self) -> Path:
        """aria2c's stdout/stderr of its latest start: why it refused to start, if it did."""
        return self.data_dir / "aria2c.console.log"

    @property
    def runtime(self) -> Path:
        return self.data_dir / "runtime.json"

    @property
    def database(self) -> Path:
        return self.data_dir / "ariabot.db"

    @property
    def control_socket(self) -> Path:
        return self.data_dir / "control.sock"

    @property
    def node_home(self) -> Path:
        """This data dir's id as a node (see :mod:`supervisor.nodehome`)."""
        return self.data_dir / "node.id"

    @property
    def link_key(self) -> Path:
        """The key links are signed with (0600; a new one revokes every link)."""
        return self.data_dir / "link.key"

    def create(self) -> None:
        """Make the data dir (0700: it holds secrets) and an empty session file if missing."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)
        if not self.session.exists():
            write_private(self.session, "")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (mode 0600).

    The file is created 0600 from the first byte (never written then chmod-ed) and renamed
    into place, so neither a reader nor a crash sees a half-written file.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
