"""rclone, the program ariabot mirrors downloads with: find it, check it, run its transfers.

One ``rclone copy`` process per transfer (not a long-lived ``rclone rcd``): the process's
life is the transfer's, so there is no daemon to supervise, no port and no password to
guard, and a crash of rclone ends one attempt with its exit code and its last error line,
which the manager's retries handle. rclone's own features do the work: ``--files-from-raw -``
(exactly the download's files, read from stdin), ``--use-json-log --stats 1s`` (progress),
``rclone check --one-way`` (sizes, and hashes where both sides have one), ``rclone link``.

:class:`RcloneUploader` implements the manager's :class:`~manager.Uploader`; the supervisor
builds it and injects it, as it does aria2c's endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

from manager import UploadError, UploadJob, UploadStats
from supervisor.config import Settings
from supervisor.rclonelog import is_permanent, parse_line, plain_reason

__all__ = [
    "RcloneUnusable",
    "RcloneUploader",
    "locate_rclone",
    "mirror_uploader",
    "probe_remote",
    "remote_name",
    "remote_names",
]

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with 'sudo apt-get install rclone' (or set ARIABOT_RCLONE to its path)"
_LINE_LIMIT = 1024 * 1024
"""Longest stderr line read (a stats line lists the files in transfer)."""
_NAMED = re.compile(r"([0-9A-Za-z_.][0-9A-Za-z_. -]*):")


class RcloneUnusable(RuntimeError):
    """rclone is missing or does not run, or the remote is not configured; says how to fix."""


def locate_rclone(name: str) -> tuple[Path, str]:
    """Resolve ``name`` (a path or a command on PATH) and read its version (blocking).

    Returns:
        The executable and its version ("v1.60.1-DEV").

    Raises:
        RcloneUnusable: not found or not runnable.
    """
    found = shutil.which(name)
    if found is None:
        raise RcloneUnusable(f"rclone not found ({name!r}): {INSTALL_HINT}")
    try:
        result = subprocess.run([found, "version"], capture_output=True, text=True,
                                timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RcloneUnusable(f"{found} does not run ({error}): {INSTALL_HINT}") from None
    match = re.search(r"rclone (v\S+)", result.stdout)
    if result.returncode != 0 or match is None:
        raise RcloneUnusable(f"{found} is not a working rclone: {INSTALL_HINT}")
    return Path(found), match.group(1)


def remote_name(remote: str) -> str | None:
    """The configured remote a destination names (``gdrive`` of ``gdrive:ariabot``), or
    None for a local folder or an on-the-fly backend (``:local:``)."""
    match = _NAMED.match(remote)
    return match.group(1) if match else None


def _config_args(config_file: Path | None) -> list[str]:
    return ["--config", str(config_file)] if config_file is not None else []


def remote_names(binary: Path, config_file: Path | None) -> set[str]:
    """The remotes the rclone config file defines (blocking; no network, no secrets).

    Raises:
        RcloneUnusable: rclone cannot read the config file.
    """
    try:
        result = subprocess.run([str(binary), *_config_args(config_file), "listremotes"],
                                capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RcloneUnusable(f"rclone listremotes failed ({error})") from None
    if result.returncode != 0:
        reason = plain_reason(result.stderr.strip().splitlines()[-1] if result.stderr else "")
        raise RcloneUnusable(f"rclone cannot read its config file: {reason}")
    return {line.strip().rstrip(":") for line in result.stdout.splitlines() if line.strip()}


def mirror_uploader(settings: Settings) -> RcloneUploader | None:
    """The uploader ``ariabot run`` mirrors with, checked before anything starts (blocking).

    Returns:
        None when mirroring is off (no ``ARIABOT_RCLONE_REMOTE``).

    Raises:
        RcloneUnusable: rclone is missing or does not run, or the config file does not
            define the remote the destination names (one line saying how to fix it).
    """
    if not settings.mirroring:
        return None
    binary, version = locate_rclone(settings.rclone)
    name = remote_name(settings.remote)
    if name is not None:
        where = settings.rclone_config or "rclone's default config file"
        if settings.rclone_config is not None and not settings.rclone_config.is_file():
            raise RcloneUnusable(f"ARIABOT_RCLONE_CONFIG: {where} does not exist")
        if name not in remote_names(binary, settings.rclone_config):
            raise RcloneUnusable(
                f"ARIABOT_RCLONE_REMOTE: no remote named {name!r} in {where}; define it "
                "with 'rclone config' (or fix the name)")
    log.info("mirroring to %s with rclone %s (%s)", settings.remote, version, settings.mode)
    return RcloneUploader(binary, config_file=settings.rclone_config, bwlimit=settings.bwlimit,
                          environment=settings.rclone_environment())


def probe_remote(binary: Path, config_file: Path | None, remote: str,
                 timeout: float = 20.0, environment: Mapping[str, str] | None = None,
                 ) -> str | None:
    """Whether the destination answers (blocking): None when it does, else why not in
    plain words. A destination folder that does not exist yet answers: uploads create it.
    ``environment`` adds the destination's parameters (see :mod:`supervisor.rcloneremote`)."""
    command = [str(binary), *_config_args(config_file), "lsf", "--max-depth", "1",
               "--dirs-only", "--contimeout", "5s", "--timeout", "10s", "--retries", "1",
               "--low-level-retries", "1", remote]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                check=False, env=_with(environment))
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:.0f}s"
    except OSError as error:
        return f"rclone does not run ({error.strerror or error})"
    if result.returncode in (0, 3):  # 3: directory not found
        return None
    lines = [parse_line(line).error for line in result.stderr.splitlines()]
    errors = [line for line in lines if line]
    return plain_reason(errors[-1] if errors else f"rclone exited {result.returncode}")


def _with(environment: Mapping[str, str] | None) -> dict[str, str] | None:
    """ariabot's environment plus the destination's parameters (None: inherit it)."""
    return {**os.environ, **environment} if environment else None


class RcloneUploader:
    """The manager's :class:`~manager.Uploader`, done by one rclone process per step.

    Parameters:
        binary: the checked rclone executable.
        config_file: rclone's config file, or None for rclone's own default.
        bwlimit: rclone's ``--bwlimit`` (e.g. ``"10M"``), or "" for none.
        stop_timeout: seconds a stopped transfer has to exit before it is killed.
        environment: the destination's parameters as rclone's variables (a connection
            string's, see :mod:`supervisor.rcloneremote`): in rclone's environment, which
            only this user can read, never on its command line.
    """

    def __init__(self, binary: Path, *, config_file: Path | None = None, bwlimit: str = "",
                 stop_timeout: float = 10.0,
                 environment: Mapping[str, str] | None = None) -> None:
        self.binary = binary
        self.config_file = config_file
        self.bwlimit = bwlimit
        self.stop_timeout = stop_timeout
        self._environment = dict(environment or {})

    def _command(self, *args: str) -> list[str]:
        return [str(self.binary), *_config_args(self.config_file), *args]

    async def copy(self, job: UploadJob, on_progress: Callable[[UploadStats], None],
                   on_started: Callable[[int], None]) -> None:
        """``rclone copy`` of exactly the job's files (see :class:`~manager.Uploader`)."""
        command = self._command(
            "copy", str(job.source_dir), job.destination, "--files-from-raw", "-",
            "--no-traverse",
            "--use-json-log", "--stats", "1s", "--stats-log-level", "NOTICE",
            # One attempt per process: ariabot's retries (with backoff, told in the chat)
            # are the outer loop; rclone still retries single requests a few times.
            "--retries", "1", "--low-level-retries", "3",
            "--contimeout", "15s", "--timeout", "60s",
            *(["--bwlimit", self.bwlimit] if self.bwlimit else []),
        )
        errors = await self._run(job, "copy", command, on_progress=on_progress,
                                 on_started=on_started)
        if errors is not None:
            code, message = errors
            raise UploadError(plain_reason(message, hide=[str(job.source_dir)]),
                              retryable=not is_permanent(code, message))

    async def verify(self, job: UploadJob) -> None:
        """``rclone check --one-way`` of the job's files: each is there with its size, and
        its hash where both sides share one (see :class:`~manager.Uploader`)."""
        command = self._command("check", str(job.source_dir), job.destination, "--one-way",
                                "--files-from-raw", "-", "--use-json-log")
        errors = await self._run(job, "check", command)
        if errors is not None:
            code, message = errors
            raise UploadError(plain_reason(message, hide=[str(job.source_dir)]),
                              retryable=not is_permanent(code, message))

    async def link(self, job: UploadJob) -> str | None:
        """``rclone link`` of the download's top entry at its place; None when the remote
        has none."""
        process = await asyncio.create_subprocess_exec(
            *self._command("link", job.top_destination),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True, env=_with(self._environment))
        try:
            async with asyncio.timeout(60):
                output, _ = await process.communicate()
        except TimeoutError:
            await self._stop(process)
            return None
        except asyncio.CancelledError:
            await self._stop(process)
            raise
        text = output.decode(errors="replace").strip()
        return text if process.returncode == 0 and text.startswith("http") else None

    def stop_leftover(self, pid: int, source_dir: Path) -> None:
        """Stop an rclone a killed ariabot left behind: only when that pid is still an
        ``rclone copy`` or ``check`` from ``source_dir`` (the pid may have been reused, by
        anything, even by the user's own rclone)."""
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            command = process.cmdline()
            if (process.name() != "rclone" or str(source_dir) not in command
                    or not {"copy", "check"} & set(command)):
                return
            log.info("stopping an rclone (pid %s) left by an earlier ariabot", pid)
            process.terminate()
            try:
                process.wait(self.stop_timeout)
            except psutil.TimeoutExpired:
                process.kill()

    async def _run(self, job: UploadJob, step: str, command: Sequence[str], *,
                   on_progress: Callable[[UploadStats], None] | None = None,
                   on_started: Callable[[int], None] | None = None,
                   ) -> tuple[int, str] | None:
        """Run one rclone step with the job's files on stdin; None when it succeeded,
        else its exit code and the error that best says why."""
        if any("\n" in name or "\r" in name for name in job.files):
            return 2, "a file name holds a line break, which rclone cannot be given"
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, limit=_LINE_LIMIT, start_new_session=True,
                env=_with(self._environment))
        except OSError as error:
            return 1, f"rclone does not run: {error.strerror or error}"
        if on_started is not None:
            on_started(process.pid)
        about_file: str | None = None
        last: str | None = None
        try:
            assert process.stdin is not None and process.stderr is not None
            with contextlib.suppress(ConnectionError):
                process.stdin.write("".join(f"{name}\n" for name in job.files).encode())
                await process.stdin.drain()
                process.stdin.close()
            async for raw in process.stderr:
                line = parse_line(raw.decode(errors="replace"))
                if line.stats is not None and on_progress is not None:
                    on_progress(line.stats)
                elif line.error and not line.error.startswith("No common hash"):
                    if line.object:
                        about_file = about_file or f"{line.object}: {line.error}"
                    last = line.error
            code = await process.wait()
        except asyncio.CancelledError:
            await self._stop(process)
            raise
        if code == 0:
            return None
        message = about_file or last or f"rclone exited with code {code}"
        log.info("rclone %s of #%s exited %d: %s", step, job.download_id, code,
                 plain_reason(message))
        return code, message

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM, a timed wait, then SIGKILL: a stopped transfer never outlives it."""
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self.stop_timeout):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
