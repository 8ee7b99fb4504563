"""Real mirror destinations for tests, all on 127.0.0.1: ``rclone serve webdav`` with a
password, and a local-path remote, defined in an rclone config file the test writes.

:class:`WebDavServer` can be killed (SIGKILL, as a crash) and started again on the same
port, so a test can break an upload in the middle. Nothing here is mocked: the files a
test checks are the ones rclone wrote into the served folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
import requests

from tests.runner import free_port, wait_until

__all__ = ["WebDavServer", "require_rclone", "sha1_tree", "write_rclone_config"]


def require_rclone() -> str:
    """The rclone binary; a missing one fails the test (setup.sh installs it)."""
    found = shutil.which("rclone")
    if found is None:
        pytest.fail("rclone is not on PATH: install it (sudo apt-get install rclone)",
                    pytrace=False)
    return found


def sha1_tree(top: Path) -> dict[str, str]:
    """SHA-1 of every file below ``top`` (or of ``top`` itself), by path relative to its
    parent: the same keys for a download and its uploaded copy."""
    files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
    digests = {}
    for path in files:
        digest = hashlib.sha1()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digests[path.relative_to(top.parent).as_posix()] = digest.hexdigest()
    return digests


class WebDavServer:
    """``rclone serve webdav`` of ``root`` on 127.0.0.1, behind a user and a random password.

    Parameters:
        root: the folder served (the uploaded files land here).
        log_path: where the server's output goes.
    """

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root = root
        self.log_path = log_path
        self.port = free_port()
        self.user = "ariabot"
        self.password = secrets.token_hex(16)  # never a leading "-" (rclone reads a flag)
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start serving and return once it answers an authenticated request."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [require_rclone(), "serve", "webdav", str(self.root),
                 "--addr", f"127.0.0.1:{self.port}", "--user", self.user,
                 "--pass", self.password],
                stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(self._answers, 20, "rclone serve webdav to answer",
                   describe=lambda: self.log_path.read_text(errors="replace")[-2000:])
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"rclone serve webdav exited {self.process.returncode}")
        with contextlib.suppress(requests.RequestException):
            answer = requests.request("PROPFIND", self.url, auth=(self.user, self.password),
                                      headers={"Depth": "0"}, timeout=2)
            return answer.status_code in (200, 207)
        return False

    def kill(self) -> None:
        """Die at once, as a crashed server would (connections in flight break)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        self.kill()
        self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def write_rclone_config(path: Path, webdav: WebDavServer | None = None) -> Path:
    """An rclone config file with ``dav`` (the WebDAV server, password obscured as rclone
    stores it) and ``nas`` (a local-path remote: ``nas:/some/folder``)."""
    sections = ["[nas]\ntype = local\n"]
    if webdav is not None:
        obscured = subprocess.run([require_rclone(), "obscure", webdav.password],
                                  capture_output=True, text=True, check=True).stdout.strip()
        sections.append(f"[dav]\ntype = webdav\nurl = {webdav.url}\nvendor = other\n"
                        f"user = {webdav.user}\npass = {obscured}\n")
    path.write_text("\n".join(sections))
    path.chmod(0o600)
    return path
