"""A real browser for tests: headless Chromium driven over the DevTools protocol.

Debian's ``chromium`` (installed by ``./setup.sh test``) runs with its own throw-away
profile, ``--remote-debugging-port=0`` (it picks a free port and writes it to
``DevToolsActivePort`` in the profile), and is driven over one WebSocket
(``websocket-client``): navigate, then evaluate expressions in the page. The calls block:
from asyncio, run them in a thread (the server under test shares the test's loop).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import pytest
import websocket

__all__ = ["HeadlessChromium", "require_chromium"]


def require_chromium() -> str:
    """The chromium binary; a missing one fails the test (``./setup.sh test`` installs it)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not on PATH: install it (sudo apt-get install chromium)",
                    pytrace=False)
    return binary


class HeadlessChromium:
    """One headless Chromium with one page, stopped (and its profile removed) on exit."""

    def __init__(self, timeout: float = 30.0) -> None:
        self._binary = require_chromium()
        self._timeout = timeout
        self._profile = Path(tempfile.mkdtemp(prefix="ariabot-chromium-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: websocket.WebSocket | None = None
        self._next_id = 0
        self._stderr: IO[bytes] | None = None

    def __enter__(self) -> Self:
        self._stderr = (self._profile / "stderr.log").open("wb")
        self._process = subprocess.Popen(
            [self._binary, "--headless", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--mute-audio", f"--user-data-dir={self._profile}",
             # Tests reach 127.0.0.1 only: every other name fails to resolve, at once
             # (a page's https://telegram.org script included), and nothing is fetched in
             # the background.
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--disable-background-networking", "--disable-component-update",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             "--remote-allow-origins=*", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self._stderr)
        try:
            port = self._wait_for_port()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                        timeout=self._timeout) as answer:
                targets = json.load(answer)
            page = next(t for t in targets if t.get("type") == "page")
            self._socket = websocket.create_connection(page["webSocketDebuggerUrl"],
                                                       timeout=self._timeout)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._stderr is not None:
            self._stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def _wait_for_port(self) -> int:
        marker = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                log = (self._profile / "stderr.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chromium exited {self._process.returncode}: {log}")
            text = marker.read_text() if marker.exists() else ""
            if text.strip():
                return int(text.splitlines()[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; returns its result (events on the way are skipped)."""
        assert self._socket is not None
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method,
                                      "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float | None = None) -> Any:
        """The first truthy value of ``expression``, evaluated until ``timeout``."""
        deadline = time.monotonic() + (timeout or self._timeout)
        while time.monotonic() < deadline:
            if value := self.evaluate(expression):
                return value
            time.sleep(0.05)
        raise TimeoutError(f"{what}: not true within {timeout or self._timeout:g}s")

    def phone(self, width: int = 390, height: int = 844) -> None:
        """Show pages as a phone of that size (CSS pixels) does."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=True)

    def screenshot(self, path: Path) -> None:
        """Save what the page shows now as a PNG."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def open(self, url: str) -> None:
        """Load ``url`` and wait until the document is complete."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self.evaluate(f"location.href === {json.dumps(url)} && "
                             "document.readyState === 'complete'"):
                return
            time.sleep(0.05)
        raise TimeoutError(f"the page {url} did not load")
