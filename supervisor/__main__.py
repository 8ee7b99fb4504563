"""``ariabot`` command line: ``ariabot run`` and the local control commands."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from supervisor import __version__
from supervisor.aria2c import Aria2cUnusable, locate_aria2c
from supervisor.config import ConfigError, load_settings
from supervisor.instance import AlreadyRunning
from supervisor.logs import setup_logging
from supervisor.root import serve

__all__ = ["EXIT_USAGE", "build_parser", "main"]

EXIT_USAGE = 2
"""Bad configuration, missing aria2c, or a second instance: a human has to act."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests can check ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="ariabot",
        description="A self-hosted Telegram torrent bot that runs its own aria2c.",
        epilog="Settings come from conf/ariabot.toml's keys, a --config file, and ARIABOT_* "
        "environment variables (which win). Without a Telegram token ariabot runs in "
        "local mode.",
    )
    parser.add_argument("--version", action="version", version=f"ariabot {__version__}")
    parser.add_argument(
        "--config", type=Path, metavar="PATH",
        help="settings file (TOML, laid out like conf/ariabot.toml); default: $ARIABOT_CONFIG",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run", help="start aria2c (and the bot when a token is set) and keep them running"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ariabot`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(f"ariabot: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    formatter = setup_logging(settings.level, [settings.token.reveal()])
    try:
        aria2c, _version = locate_aria2c(settings.aria2c)
        return asyncio.run(serve(settings, aria2c, formatter))
    except (Aria2cUnusable, AlreadyRunning) as error:
        print(f"ariabot: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"ariabot: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
