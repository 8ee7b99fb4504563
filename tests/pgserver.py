"""A throwaway PostgreSQL server for the tests: made with ``initdb`` in a temp dir, started
by ``pg_ctl`` on a free port of 127.0.0.1 only, stopped and deleted at the end.

Why not pytest-postgresql (the standard plugin): it runs ``initdb`` and ``pg_ctl`` as the
current user and has no way to switch users, and the tests run as root here and in CI,
which PostgreSQL refuses ("cannot be run as root"). Wrapping its executable in ``runuser``
would also need its temp dirs (under root's 0700 pytest base) handed to that user; this
module is the small part of it we need.

As root, the server runs as ``postgres`` (Debian's package makes that user) or else
``nobody``, through :class:`subprocess.Popen`'s ``user``/``group``; the data dir and the
Unix socket dir are a 0700 temp dir that user owns. TCP connections need the password of
the one role (``scram-sha-256``), so a test can also see a wrong password refused; the
socket (``peer``, in that 0700 dir) serves nobody else. Durability is off (``fsync``):
the cluster is thrown away.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

import psycopg

__all__ = ["BINARIES", "PostgresServer"]


def _binaries() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: the newest version of Debian's ``postgresql``
    package (15 on bookworm)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                   key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


BINARIES = _binaries()

ROLE = "ariabot"
_START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster for a test session; :meth:`new_database` per test.

    Use as a context manager: the server is stopped (``pg_ctl stop -m fast``) and its files
    deleted on the way out, also when a test failed or starting it did.
    """

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl"):
            if not (BINARIES / tool).exists():
                raise RuntimeError(
                    f"{BINARIES / tool} is missing: install PostgreSQL "
                    "(sudo apt-get install postgresql, or ./setup.sh test)")
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self._base = Path(tempfile.mkdtemp(prefix="ariabot-pg-"))
        self._data = self._base / "data"
        self._log = self._base / "server.log"
        self._names = count(1)
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                self._user = pwd.getpwnam("nobody")
            os.chown(self._base, self._user.pw_uid, self._user.pw_gid)
        self._base.chmod(0o700)

    # --- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        try:
            self._initdb()
            self.start()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.stop()
        finally:
            self._remove()

    def _as_owner(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        """Run a PostgreSQL tool as the cluster's owner (never as root)."""
        switch = {}
        if self._user is not None:
            switch = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
                       "HOME": str(self._base)}
        return subprocess.run([str(a) for a in args], cwd=self._base, env=environment,
                              capture_output=True, text=True, check=check,
                              timeout=_START_TIMEOUT_S, **switch)

    def _initdb(self) -> None:
        password_file = self._base / "password"
        password_file.write_text(self.password + "\n")
        if self._user is not None:
            os.chown(password_file, self._user.pw_uid, self._user.pw_gid)
        password_file.chmod(0o600)
        try:
            self._as_owner(BINARIES / "initdb", "-D", self._data, "-U", ROLE,
                           f"--pwfile={password_file}", "--auth-host=scram-sha-256",
                           "--auth-local=peer", "-E", "UTF8", "--locale=C", "--no-sync")
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"initdb failed: {error.stderr.strip()}") from None
        finally:
            password_file.unlink()

    def _configure(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self._base}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        (self._data / "postgresql.auto.conf").write_text(lines)

    def start(self, *, same_port: bool = False) -> None:
        """Start the server (again) on a free loopback port, or on the port it had before
        (its clients' URLs stay right: an outage ends), waiting until it accepts."""
        for _attempt in range(1 if same_port else 3):  # a free port may be taken meanwhile
            self.port = self.port if same_port else _free_port()
            self._configure()
            done = self._as_owner(BINARIES / "pg_ctl", "-D", self._data, "-l", self._log,
                                  "-w", "-t", str(_START_TIMEOUT_S), "start", check=False)
            if done.returncode == 0:
                return
        log = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}\n{log}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m mode``); nothing when it is not running."""
        if not (self._data / "postmaster.pid").exists():
            return
        done = self._as_owner(BINARIES / "pg_ctl", "-D", self._data, "-w", "-m", mode, "stop",
                              check=False)
        if done.returncode != 0 and mode != "immediate":
            self._as_owner(BINARIES / "pg_ctl", "-D", self._data, "-m", "immediate", "stop",
                           check=False)

    def restart(self) -> None:
        """``pg_ctl restart -m fast`` on the same port: every client loses its connection."""
        self._as_owner(BINARIES / "pg_ctl", "-D", self._data, "-l", self._log, "-w",
                       "-m", "fast", "restart")

    @contextmanager
    def outage(self) -> Iterator[None]:
        """The server stopped (``pg_ctl stop -m fast``: every client loses its connection,
        new ones are refused) inside the block, started again on the same port after it."""
        self.stop()
        try:
            yield
        finally:
            self.start(same_port=True)

    def _remove(self) -> None:
        shutil.rmtree(self._base, ignore_errors=True)

    # --- databases --------------------------------------------------------------------------

    def url(self, database: str, *, password: str | None = None) -> str:
        """The ``postgresql://`` URL of ``database`` (``ARIABOT_DATABASE_URL``'s form)."""
        secret = self.password if password is None else password
        return f"postgresql://{ROLE}:{secret}@127.0.0.1:{self.port}/{database}"

    @contextmanager
    def _admin(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(host="127.0.0.1", port=self.port, user=ROLE,
                             password=self.password, dbname="postgres",
                             autocommit=True) as connection:
            yield connection

    def new_database(self) -> str:
        """Create an empty database; returns its name."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        with self._admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, closing the connections a test left open."""
        with self._admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
