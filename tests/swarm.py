"""A real BitTorrent swarm on 127.0.0.1 for integration tests (design.md §6).

Pieces, smallest first:

- :func:`make_content` / :func:`file_digests`: seeded random payloads and their SHA-256s, so a
  download can be compared byte for byte with its source.
- :class:`HttpTracker`: an in-process HTTP tracker (compact peer lists, short interval) that
  records every announce, so tests can assert who talked to it.
- :class:`Seeder`: one long-lived ``aria2c`` that verifies and seeds any number of torrents,
  with a global upload limit tests can turn down to slow a download.
- :class:`Swarm`: tracker + seeder + a root folder; :meth:`Swarm.add` makes content, builds the
  .torrent with torf, seeds it and returns a :class:`SwarmTorrent`.
- :class:`Leecher`: a plain ``aria2c`` (no RPC) that downloads one torrent and exits, to prove
  the swarm works without any ariabot code.

Nothing here leaves loopback: every socket is bound to or aimed at 127.0.0.1, and every
``aria2c`` carries :func:`loopback_bt_args` (no DHT, LPD or PEX; IPv6 off).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import random
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any, Self, TypeVar

import requests
import torf

# torf's own bencoder (vendored flatbencode); torf is pinned <5 in pyproject.toml.
from torf import _flatbencode as bencode

__all__ = [
    "LOOPBACK",
    "Announce",
    "Aria2RpcError",
    "HttpTracker",
    "Leecher",
    "Seeder",
    "Swarm",
    "SwarmTorrent",
    "file_digests",
    "free_port",
    "loopback_bt_args",
    "magnet_uri",
    "make_content",
    "sha256_file",
    "wait_until",
]

LOOPBACK = "127.0.0.1"
"""The only address the swarm ever uses."""

_CHUNK = 1 << 20
_T = TypeVar("_T")


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago (for aria2c's fixed ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


LISTEN_PORTS = range(20000, 32000)
"""Where aria2c's BitTorrent (and DHT) listen ports are picked: below Linux's ephemeral range
(32768-60999). aria2c binds its listen port only when its first torrent starts, seconds after
the port was picked; a port of the ephemeral range could meanwhile be taken by any process's
outgoing connection, and aria2c then fails that torrent with its error 1 ("Errors occurred
while binding port", seen twice in CI)."""


def free_listen_port() -> int:
    """A port of :data:`LISTEN_PORTS` free for TCP and UDP on 127.0.0.1 a moment ago."""
    for _ in range(500):
        port = random.randrange(LISTEN_PORTS.start, LISTEN_PORTS.stop)
        if all(_bindable(port, kind) for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM)):
            return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS}")


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def loopback_bt_args(listen_port: int) -> list[str]:
    """aria2c options that keep BitTorrent on loopback: every aria2c in the tests gets them.

    Parameters:
        listen_port: the fixed BitTorrent listen port (peers reach it through the tracker).

    Returns:
        The command-line options, without the ``aria2c`` executable.
    """
    return [
        f"--listen-port={listen_port}",
        f"--interface={LOOPBACK}",  # BT listen socket and outgoing connections on loopback
        "--disable-ipv6=true",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
    ]


def wait_until(
    predicate: Callable[[], _T], *, timeout: float, what: str, interval: float = 0.05
) -> _T:
    """Poll ``predicate`` until it returns something truthy; tests never sleep a fixed time.

    Parameters:
        predicate: called repeatedly; its first truthy result is returned.
        timeout: seconds before giving up.
        what: what is awaited, for the error message.
        interval: seconds between polls.

    Returns:
        The truthy value.

    Raises:
        TimeoutError: the deadline passed first.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def make_content(root: Path, name: str, sizes: list[int] | int, seed: int = 0) -> Path:
    """Write seeded random content: one file, or a folder of ``partNN.bin`` files.

    The same ``(name, sizes, seed)`` always gives the same bytes (so the same info-hash);
    change ``seed`` to get a different torrent of the same shape.

    Parameters:
        root: the folder to create the content in (created if missing).
        name: the file name (single file) or folder name (several files).
        sizes: an int makes the single file ``root/name``; a list makes ``root/name/`` with
            ``part01.bin``, ``part02.bin``, ... and the last file inside ``sub/`` so that
            nested paths are always covered.
        seed: random seed.

    Returns:
        The path of the file or folder.

    Raises:
        ValueError: a size is not positive, or the list is empty (torrents cannot hold those).
    """
    size_list = [sizes] if isinstance(sizes, int) else list(sizes)
    if not size_list or any(size <= 0 for size in size_list):
        raise ValueError(f"sizes must be positive and non-empty, got {sizes!r}")
    rng = random.Random(f"{seed}:{name}")  # str seeds are hashed deterministically
    root.mkdir(parents=True, exist_ok=True)
    top = root / name
    if isinstance(sizes, int):
        _write_random(top, sizes, rng)
        return top
    for index, size in enumerate(size_list, start=1):
        relative = f"part{index:02d}.bin"
        if index == len(size_list):
            relative = f"sub/{relative}"
        _write_random(top / relative, size, rng)
    return top


def _write_random(path: Path, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        remaining = size
        while remaining:
            step = min(remaining, _CHUNK)
            out.write(rng.randbytes(step))
            remaining -= step


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of one file (read in chunks: content can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digests(path: Path) -> dict[str, str]:
    """Hash a file, or every file under a folder, to compare a download with its source.

    Keys are POSIX paths relative to ``path.parent``, so they start with the torrent's name,
    the way aria2 lays a torrent out under its ``dir``: ``{"movie.mkv": ...}`` or
    ``{"pack/part01.bin": ..., "pack/sub/part02.bin": ...}``. Thus
    ``file_digests(download_dir / t.name) == t.digests`` checks a whole download.

    Parameters:
        path: a file or a folder.

    Returns:
        Relative path -> hex SHA-256, sorted by path.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    if path.is_file():
        return {path.name: sha256_file(path)}
    if not path.is_dir():
        raise FileNotFoundError(path)
    found = {
        file.relative_to(path.parent).as_posix(): sha256_file(file)
        for file in path.rglob("*")
        if file.is_file()
    }
    return dict(sorted(found.items()))


def magnet_uri(info_hash: str, name: str, tracker_url: str) -> str:
    """Build ``magnet:?xt=urn:btih:<hex>&dn=<name>&tr=<url>`` with percent-encoded values."""
    quoted_name = urllib.parse.quote(name, safe="")
    quoted_tracker = urllib.parse.quote(tracker_url, safe="")
    return f"magnet:?xt=urn:btih:{info_hash}&dn={quoted_name}&tr={quoted_tracker}"


# --------------------------------------------------------------------------- tracker


@dataclass(frozen=True)
class Announce:
    """One announce the tracker received, kept for assertions."""

    info_hash: str
    """40 lower-case hex digits."""
    peer_id: bytes
    port: int
    event: str
    """``started``, ``completed``, ``stopped`` or ``""`` (a regular re-announce)."""
    uploaded: int
    downloaded: int
    left: int
    at: float
    """``time.monotonic()`` when it arrived."""
    peers_returned: int
    """How many peers the answer listed (0 for a dead torrent)."""


@dataclass
class _Peer:
    port: int
    left: int
    seen: float


class HttpTracker:
    """A tiny HTTP tracker on 127.0.0.1 (free port) in a background thread.

    ``GET /announce`` answers a bencoded dict with a compact peer list: every peer that
    announced the same info-hash (not the asker itself, not peers that sent
    ``event=stopped``, not peers silent for ``peer_ttl`` seconds). The interval is short so
    peers that join later are found quickly.
    """

    def __init__(
        self, *, interval: int = 2, min_interval: int = 2, peer_ttl: float = 30.0
    ) -> None:
        """Prepare the tracker; :meth:`start` (or ``with``) opens the socket.

        Parameters:
            interval: seconds clients should wait between announces.
            min_interval: the minimum they may use. aria2 re-announces every *min* interval
                (not every interval), so this sets the real announce rate of the seeder's
                every torrent: keep it >= 2 s or the tracker gets chatty.
            peer_ttl: peers not heard from for this long are dropped (killed clients).
        """
        self.interval = interval
        self.min_interval = min_interval
        self.peer_ttl = peer_ttl
        self._lock = threading.Lock()
        self._announces: list[Announce] = []
        self._swarms: dict[bytes, dict[bytes, _Peer]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("tracker already started")
        tracker = self

        class Handler(_AnnounceHandler):
            owner = tracker

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="swarm-tracker", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # queries
    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        if self._server is None:
            raise RuntimeError("tracker not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The announce URL, ``http://127.0.0.1:<port>/announce``."""
        return f"http://{LOOPBACK}:{self.port}/announce"

    @property
    def announces(self) -> list[Announce]:
        """A copy of every announce received so far, oldest first."""
        with self._lock:
            return list(self._announces)

    def announces_for(self, info_hash: str) -> list[Announce]:
        """The announces for one torrent (40 hex digits), oldest first."""
        info_hash = info_hash.lower()
        return [a for a in self.announces if a.info_hash == info_hash]

    def peer_ports(self, info_hash: str) -> list[int]:
        """Listen ports of the peers the tracker currently knows for a torrent."""
        key = bytes.fromhex(info_hash)
        with self._lock:
            return sorted(peer.port for peer in self._swarms.get(key, {}).values())

    def wait_for_peer(self, info_hash: str, port: int, timeout: float = 30.0) -> None:
        """Block until the peer listening on ``port`` has announced ``info_hash``.

        Raises:
            TimeoutError: it did not within ``timeout`` seconds.
        """
        wait_until(
            lambda: port in self.peer_ports(info_hash),
            timeout=timeout,
            what=f"peer :{port} to announce {info_hash}",
        )

    # called by the handler thread
    def _announce(self, query: dict[str, bytes]) -> dict[bytes, Any]:
        info_hash = query.get("info_hash", b"")
        peer_id = query.get("peer_id", b"")
        if len(info_hash) != 20 or not peer_id:
            return {b"failure reason": b"info_hash (20 bytes) and peer_id are required"}
        try:
            port = int(query.get("port", b""))
            left = int(query.get("left", b"0"))
            uploaded = int(query.get("uploaded", b"0"))
            downloaded = int(query.get("downloaded", b"0"))
        except ValueError:
            return {b"failure reason": b"port, left, uploaded, downloaded must be integers"}
        event = query.get("event", b"").decode("ascii", "replace")
        now = time.monotonic()
        with self._lock:
            peers = self._swarms.setdefault(info_hash, {})
            for key in [k for k, p in peers.items() if now - p.seen > self.peer_ttl]:
                del peers[key]
            if event == "stopped":
                peers.pop(peer_id, None)
            else:
                peers[peer_id] = _Peer(port, left, now)
            others = [p for key, p in peers.items() if key != peer_id]
            complete = sum(1 for p in peers.values() if p.left == 0)
            self._announces.append(
                Announce(
                    info_hash.hex(), peer_id, port, event, uploaded, downloaded, left, now,
                    peers_returned=len(others),
                )
            )
        compact = b"".join(socket.inet_aton(LOOPBACK) + p.port.to_bytes(2, "big") for p in others)
        return {
            b"interval": self.interval,
            b"min interval": self.min_interval,
            b"complete": complete,
            b"incomplete": len(peers) - complete,
            b"peers": compact,
        }


class _AnnounceHandler(BaseHTTPRequestHandler):
    owner: HttpTracker

    def do_GET(self) -> None:
        path, _, raw_query = self.path.partition("?")
        if path != "/announce":
            self.send_error(404)
            return
        # info_hash and peer_id are raw bytes: decode percent-escapes as latin-1 to keep them.
        query = {
            key: value.encode("latin-1")
            for key, value in urllib.parse.parse_qsl(raw_query, encoding="latin-1")
        }
        body = bencode.encode(self.owner._announce(query))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the recorded announces are the log."""


# --------------------------------------------------------------------------- aria2c


class Aria2RpcError(RuntimeError):
    """aria2 answered a JSON-RPC call with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"aria2 RPC error {code}: {message}")
        self.code = code


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM (aria2 then says goodbye to trackers), then SIGKILL after ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _aria2c_binary(aria2c: str) -> str:
    found = shutil.which(aria2c)
    if found is None:
        raise FileNotFoundError(
            f"aria2c not found ({aria2c!r}): the integration tests need a real aria2c "
            "(sudo apt-get install aria2)"
        )
    return found


class Seeder:
    """One long-lived aria2c that verifies and seeds every torrent of the swarm.

    RPC listens on 127.0.0.1 (free port, random secret); BitTorrent on a fixed free port.
    ``--check-integrity`` with ``--bt-seed-unverified=false`` makes aria2 hash the content
    before seeding, so a torrent that does not match its files fails loudly in :meth:`seed`
    instead of silently stalling a test. ``--seed-ratio=0`` seeds forever.
    """

    def __init__(self, root: Path, *, aria2c: str = "aria2c") -> None:
        """Prepare the seeder; :meth:`start` (or ``with``) runs aria2c.

        Parameters:
            root: its default ``--dir``; also holds ``seeder.log`` and its conf.
            aria2c: the executable, a path or a name on PATH.
        """
        self.root = root
        self.aria2c = aria2c
        self.listen_port = 0
        self.rpc_port = 0
        self.log_path = root / "seeder.log"
        self._secret = secrets.token_hex(16)
        self._process: subprocess.Popen[bytes] | None = None
        self._session: requests.Session | None = None
        self._gids: dict[str, str] = {}
        self._lock = threading.Lock()
        self._rpc_id = 0

    def start(self, timeout: float = 30.0) -> Self:
        """Run aria2c and wait until its RPC answers.

        Raises:
            FileNotFoundError: no aria2c.
            RuntimeError: aria2c exited or did not answer within ``timeout`` (log attached).
        """
        if self._process is not None:
            raise RuntimeError("seeder already started")
        binary = _aria2c_binary(self.aria2c)
        self.root.mkdir(parents=True, exist_ok=True)
        self.listen_port = free_listen_port()
        self.rpc_port = free_port()
        conf = self.root / "seeder.conf"  # keeps the secret out of argv, ~/.aria2 out of play
        conf.write_text(f"rpc-secret={self._secret}\n")
        conf.chmod(0o600)
        args = [
            binary,
            f"--conf-path={conf}",
            *loopback_bt_args(self.listen_port),
            "--enable-rpc=true",
            "--rpc-listen-all=false",
            f"--rpc-listen-port={self.rpc_port}",
            f"--dir={self.root}",
            "--seed-ratio=0",
            "--check-integrity=true",
            "--bt-seed-unverified=false",
            "--bt-hash-check-seed=true",
            "--max-concurrent-downloads=1000",
            "--bt-detach-seed-only=true",
            "--bt-max-peers=0",
            "--max-overall-upload-limit=0",
            "--file-allocation=none",
            "--bt-tracker-connect-timeout=5",
            "--bt-tracker-timeout=5",
            f"--stop-with-process={os.getpid()}",  # never outlives a killed pytest
            f"--log={self.log_path}",
            "--log-level=notice",  # info logs ~15 lines per announce per torrent
            "--console-log-level=warn",
            "--summary-interval=0",
        ]
        with (self.root / "seeder.out").open("ab") as out:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._session = requests.Session()
        try:
            wait_until(self._rpc_ready, timeout=timeout, what="the seeder's RPC")
        except BaseException:
            self.stop()
            raise
        return self

    def _rpc_ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(
                f"seeder aria2c exited with {self._process.returncode}:\n"
                f"{_log_tail(self.log_path)}"
            )
        try:
            self.call("aria2.getVersion")
        except requests.ConnectionError:
            return False
        return True

    def stop(self) -> None:
        """Stop aria2c (SIGTERM, then SIGKILL) and close the RPC session; safe to call twice."""
        process, session = self._process, self._session
        self._process = self._session = None
        try:
            if process is not None:
                _stop_process(process)
        finally:
            if session is not None:
                session.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def call(self, method: str, *params: Any) -> Any:
        """Call one aria2 JSON-RPC method with the secret; return its ``result``.

        Raises:
            Aria2RpcError: aria2 answered with an error.
            requests.RequestException: no answer.
        """
        if self._session is None:
            raise RuntimeError("seeder not started")
        with self._lock:
            self._rpc_id += 1
            rpc_id = self._rpc_id
        payload = {
            "jsonrpc": "2.0",
            "id": str(rpc_id),
            "method": method,
            "params": [f"token:{self._secret}", *params],
        }
        response = self._session.post(
            f"http://{LOOPBACK}:{self.rpc_port}/jsonrpc", json=payload, timeout=15
        )
        body = response.json()
        if "error" in body:
            raise Aria2RpcError(int(body["error"]["code"]), str(body["error"]["message"]))
        return body["result"]

    def seed(
        self, torrent_bytes: bytes, content_parent_dir: Path, *, timeout: float = 60.0
    ) -> str:
        """Add a torrent whose content lies in ``content_parent_dir`` and wait until it seeds.

        Adding the same info-hash twice returns the first GID (aria2 would refuse it with
        error 12 "already registered").

        Parameters:
            torrent_bytes: the .torrent file.
            content_parent_dir: the folder holding the torrent's file or top folder.
            timeout: seconds allowed for the hash check.

        Returns:
            The GID.

        Raises:
            RuntimeError: aria2 stopped the download (e.g. content does not match).
            TimeoutError: not seeding within ``timeout``.
        """
        info_hash = torf.Torrent.read_stream(torrent_bytes).infohash
        with self._lock:
            known = self._gids.get(info_hash)
        if known is not None:
            return known
        gid = str(
            self.call(
                "aria2.addTorrent",
                base64.b64encode(torrent_bytes).decode("ascii"),
                [],
                {
                    "dir": str(content_parent_dir),
                    "check-integrity": "true",
                    "bt-seed-unverified": "false",
                    "seed-ratio": "0",
                },
            )
        )
        checked_incomplete: list[float] = []  # when the hash check was seen done but short
        try:
            wait_until(
                lambda: self._is_seeding(gid, checked_incomplete),
                timeout=timeout,
                what=f"seeding {info_hash}",
            )
        except BaseException:
            with contextlib.suppress(Aria2RpcError, requests.RequestException):
                self.call("aria2.forceRemove", gid)  # or it would leech from the test's peers
            raise
        with self._lock:
            self._gids[info_hash] = gid
        return gid

    def _is_seeding(self, gid: str, checked_incomplete: list[float]) -> bool:
        status = self.call("aria2.tellStatus", gid)
        if status["status"] in {"error", "removed", "complete"}:
            raise RuntimeError(
                f"seeder stopped {gid}: status={status['status']} "
                f"errorCode={status.get('errorCode')} {status.get('errorMessage', '')}\n"
                f"{_log_tail(self.log_path)}"
            )
        completed, total = int(status["completedLength"]), int(status["totalLength"])
        if status["status"] == "active" and status.get("seeder") == "true" and completed == total:
            return True
        # While hashing, aria2 shows verifiedLength (or verifyIntegrityPending). Once both are
        # gone and it is still not a seeder, the files do not match the torrent; give aria2 a
        # moment in case the check had not started yet.
        if "verifiedLength" not in status and "verifyIntegrityPending" not in status:
            checked_incomplete.append(time.monotonic())
            if checked_incomplete[-1] - checked_incomplete[0] > 2.0:
                raise RuntimeError(
                    f"seeder verified only {completed} of {total} bytes of {gid}: "
                    "the content does not match the torrent"
                )
        else:
            checked_incomplete.clear()
        return False

    def gid(self, info_hash: str) -> str:
        """The GID seeding ``info_hash`` (KeyError if it is not seeded)."""
        with self._lock:
            return self._gids[info_hash.lower()]

    def uploaded(self, info_hash: str) -> int:
        """Bytes uploaded so far for one torrent (its ``uploadLength``)."""
        status = self.call("aria2.tellStatus", self.gid(info_hash), ["uploadLength"])
        return int(status["uploadLength"])

    def set_upload_limit(self, bytes_per_second: int) -> None:
        """Cap the total upload speed (0 = unlimited) to slow downloads down.

        Prefer :meth:`Swarm.throttled`, which always puts the limit back.
        """
        self.call(
            "aria2.changeGlobalOption", {"max-overall-upload-limit": str(int(bytes_per_second))}
        )

    def upload_limit(self) -> int:
        """The current global upload limit in bytes per second (0 = unlimited)."""
        return int(self.call("aria2.getGlobalOption")["max-overall-upload-limit"])


class Leecher:
    """A plain aria2c without RPC that downloads one torrent into ``directory`` and exits.

    ``--seed-time=0`` makes it exit (code 0) as soon as the download is complete;
    ``--bt-stop-timeout`` makes it give up on a dead swarm instead of hanging the test.
    """

    def __init__(
        self,
        source: str | Path,
        directory: Path,
        *,
        log_path: Path,
        extra_args: Sequence[str] = (),
        aria2c: str = "aria2c",
        stop_timeout: int = 60,
    ) -> None:
        """Prepare the download; :meth:`start` (or ``with``) runs aria2c.

        Parameters:
            source: a magnet URI or the path of a .torrent file.
            directory: its ``--dir``.
            log_path: its log file (keep it out of ``directory`` when comparing digests).
            extra_args: more aria2c options.
            aria2c: the executable.
            stop_timeout: ``--bt-stop-timeout`` seconds.
        """
        self.source = str(source)
        self.directory = directory
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.aria2c = aria2c
        self.stop_timeout = stop_timeout
        self.listen_port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self) -> Self:
        """Run aria2c."""
        if self._process is not None:
            raise RuntimeError("leecher already started")
        binary = _aria2c_binary(self.aria2c)
        self.listen_port = free_listen_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "--no-conf=true",  # never pick up ~/.aria2/aria2.conf
            *loopback_bt_args(self.listen_port),
            f"--dir={self.directory}",
            "--seed-time=0",
            f"--bt-stop-timeout={self.stop_timeout}",
            "--file-allocation=none",
            "--bt-tracker-connect-timeout=5",
            "--bt-tracker-timeout=5",
            f"--stop-with-process={os.getpid()}",
            f"--log={self.log_path}",
            "--log-level=info",
            "--console-log-level=warn",
            "--summary-interval=0",
            *self.extra_args,
            self.source,
        ]
        with self.log_path.with_suffix(".out").open("ab") as out:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def returncode(self) -> int | None:
        """aria2c's exit code, or None while it runs."""
        return None if self._process is None else self._process.poll()

    def wait(self, timeout: float) -> int:
        """Wait for aria2c to exit and return its exit code (0 = downloaded).

        Raises:
            TimeoutError: still running after ``timeout`` seconds (the log tail is attached).
        """
        if self._process is None:
            raise RuntimeError("leecher not started")
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"leecher still running after {timeout:g} s:\n{_log_tail(self.log_path)}"
            ) from None

    def stop(self) -> None:
        """Stop aria2c if it still runs; safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            _stop_process(process)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- swarm


@dataclass(frozen=True)
class SwarmTorrent:
    """A torrent the swarm seeds, with everything a test needs to add and check it.

    Paths in ``files`` and keys of ``digests`` are relative to the download dir (they start
    with ``name``), so ``file_digests(download_dir / t.name) == t.digests``.
    """

    info_hash: str
    """v1 info-hash, 40 lower-case hex digits."""
    name: str
    torrent_bytes: bytes = field(repr=False)
    """The .torrent file; its announce URL is the swarm's tracker."""
    magnet: str
    """``magnet:?xt=urn:btih:<hex>&dn=<name>&tr=<tracker>``."""
    content_path: Path
    """The seeded file or folder."""
    digests: dict[str, str] = field(repr=False)
    total_bytes: int
    files: tuple[str, ...]
    """In the torrent's own order (aria2's ``getFiles`` order; index 1 is the first)."""
    piece_size: int

    def __hash__(self) -> int:
        return hash(self.info_hash)

    def write_torrent(self, directory: Path) -> Path:
        """Write the .torrent as ``directory/<info_hash>.torrent`` and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.info_hash}.torrent"
        path.write_bytes(self.torrent_bytes)
        return path


class Swarm:
    """A tracker, one seeder and a root folder: the whole local swarm behind one object."""

    def __init__(self, root: Path, *, aria2c: str = "aria2c") -> None:
        """Prepare the swarm; :meth:`start` (or ``with``) runs tracker and seeder.

        Parameters:
            root: holds the seeder's files and, by default, the content of :meth:`add`.
            aria2c: the executable for the seeder.
        """
        self.root = root
        self.tracker = HttpTracker()
        self.seeder = Seeder(root / "seeder", aria2c=aria2c)
        self._count = 0
        self._lock = threading.Lock()

    def start(self) -> Self:
        """Start the tracker, then the seeder; on failure nothing is left running."""
        self.tracker.start()
        try:
            self.seeder.start()
        except BaseException:
            self.tracker.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the seeder (it says goodbye to the tracker), then the tracker."""
        try:
            self.seeder.stop()
        finally:
            self.tracker.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def make(
        self,
        name: str,
        sizes: list[int] | int,
        *,
        seed: int = 0,
        parent: Path | None = None,
        piece_size: int | None = None,
    ) -> SwarmTorrent:
        """Make content and its .torrent (announcing to this swarm's tracker), unseeded.

        For a torrent another seeder serves (:class:`tests.transmission.TransmissionSeeder`);
        :meth:`add` also gives it to the swarm's aria2c seeder.

        Parameters:
            name: the torrent's name (file or folder name).
            sizes: see :func:`make_content`.
            seed: random seed of the content (same arguments -> same info-hash).
            parent: where to write the content; default: a fresh folder under ``root``.
            piece_size: bytes per piece; default: torf's choice (64 MiB -> 512 x 128 KiB).
        """
        if parent is None:
            with self._lock:
                self._count += 1
                parent = self.root / "content" / f"{self._count:04d}"
        content = make_content(parent, name, sizes, seed=seed)
        torrent = torf.Torrent(
            path=content,
            name=name,
            trackers=[self.tracker.url],
            piece_size=piece_size,
            created_by="ariabot tests",
            creation_date=None,
        )
        torrent.generate()
        info_hash = torrent.infohash.lower()
        return SwarmTorrent(
            info_hash=info_hash,
            name=name,
            torrent_bytes=bytes(torrent.dump()),
            magnet=magnet_uri(info_hash, name, self.tracker.url),
            content_path=content,
            digests=file_digests(content),
            total_bytes=int(torrent.size),
            files=tuple(str(PurePosixPath(*file.parts)) for file in torrent.files),
            piece_size=int(torrent.piece_size),
        )

    def add(
        self,
        name: str,
        sizes: list[int] | int,
        *,
        seed: int = 0,
        parent: Path | None = None,
        piece_size: int | None = None,
    ) -> SwarmTorrent:
        """Make content, build its .torrent, seed it, and return once peers can find it.

        Returns only after the seeder verified the content *and* announced it to the
        tracker, so a client added right after gets the seeder in its first peer list.
        Parameters: as :meth:`make`.

        Returns:
            The seeded torrent.
        """
        torrent = self.make(name, sizes, seed=seed, parent=parent, piece_size=piece_size)
        self.seeder.seed(torrent.torrent_bytes, torrent.content_path.parent)
        self.tracker.wait_for_peer(torrent.info_hash, self.seeder.listen_port)
        return torrent

    def add_many(self, specs: Sequence[tuple[str, list[int] | int, int]]) -> list[SwarmTorrent]:
        """:meth:`add` for several torrents at once, each ``(name, sizes, seed)``.

        The seeder announces a torrent at its next engine tick (about 1 s after it is
        seeded), so adds one after the other wait about a second each; these are all seeded
        first and their announces awaited together. Returns, like :meth:`add`, once the
        tracker has the seeder for every one of them.
        """
        torrents = [self.make(name, sizes, seed=seed) for name, sizes, seed in specs]
        for torrent in torrents:
            self.seeder.seed(torrent.torrent_bytes, torrent.content_path.parent)
        for torrent in torrents:
            self.tracker.wait_for_peer(torrent.info_hash, self.seeder.listen_port)
        return torrents

    def dead_magnet(self, name: str = "dead") -> str:
        """A magnet for a random info-hash nobody seeds: the tracker never has peers for it."""
        return magnet_uri(secrets.token_hex(20), name, self.tracker.url)

    @contextlib.contextmanager
    def throttled(self, bytes_per_second: int) -> Iterator[None]:
        """Cap the seeder's upload speed inside the block; always back to unlimited after.

        Use it to keep a download running long enough to pause, kill or restart mid-way.
        """
        self.seeder.set_upload_limit(bytes_per_second)
        try:
            yield
        finally:
            self.seeder.set_upload_limit(0)
