"""The composition root of ``ariabot run``: lock, aria2c, (manager, bot), and teardown.

Everything ariabot runs is built here and nowhere else; the other packages take what they
need as constructor arguments. Teardown runs in the reverse order of start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from manager.aria2rpc import Aria2Endpoint
from supervisor.config import Settings
from supervisor.instance import InstanceLock, stop_stale_aria2c
from supervisor.layout import StateLayout
from supervisor.logs import RedactingFormatter
from supervisor.process import Aria2Fatal, Aria2Process, SupervisionPolicy
from supervisor.render import new_secret, pick_free_port, render_config
from supervisor.states import ProcessState

__all__ = ["EXIT_FATAL", "serve"]

log = logging.getLogger(__name__)

EXIT_FATAL = 1
"""Exit code when aria2c could not be kept alive (FATAL): an init system should step in."""


async def serve(settings: Settings, aria2c: Path, formatter: RedactingFormatter) -> int:
    """Run ariabot until SIGINT/SIGTERM (exit 0) or until aria2c is FATAL (exit 1).

    Parameters:
        settings: validated settings.
        aria2c: the checked aria2c executable.
        formatter: the log formatter, told about the RPC secret so it never prints it.

    Raises:
        AlreadyRunning: another ariabot holds this data dir.
    """
    layout = StateLayout(settings.data_dir)
    layout.create()
    settings.download_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with InstanceLock(layout.lock):
        stop_stale_aria2c(layout)
        layout.runtime.unlink(missing_ok=True)
        endpoint = Aria2Endpoint(port=settings.rpc_port or pick_free_port(), secret=new_secret())
        formatter.add_secret(endpoint.secret)
        render_config(settings, layout, port=endpoint.port, secret=endpoint.secret)
        aria2 = Aria2Process(aria2c, layout, endpoint, SupervisionPolicy.from_settings(settings))
        stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop_requested.set)
        try:
            try:
                await aria2.start()
            except Aria2Fatal as error:
                log.critical("aria2c cannot be kept running: %s", error)
                return EXIT_FATAL
            if settings.local_mode:
                log.info("local mode: no Telegram token, so the bot is off; set "
                         "ARIABOT_TELEGRAM_TOKEN to drive ariabot from Telegram")
            log.info("ariabot is running (data dir %s, downloads in %s)",
                     settings.data_dir, settings.download_dir)
            return await _run_until_stopped(aria2, stop_requested)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            layout.runtime.unlink(missing_ok=True)


async def _run_until_stopped(aria2: Aria2Process, stop_requested: asyncio.Event) -> int:
    stop_wait = asyncio.create_task(stop_requested.wait())
    aria2_wait = asyncio.create_task(aria2.wait())
    await asyncio.wait({stop_wait, aria2_wait}, return_when=asyncio.FIRST_COMPLETED)
    for task in (stop_wait, aria2_wait):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if aria2.state is ProcessState.FATAL:
        log.critical("aria2c is FATAL; ariabot exits so that its init system can take over")
        return EXIT_FATAL
    log.info("stopping: saving aria2's session and shutting aria2c down")
    await aria2.stop()
    log.info("stopped")
    return 0
