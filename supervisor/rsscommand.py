"""``ariabot rss``: a chat's feeds from the command line, through the running ariabot (the
same surface as the chat's ``/rss``): ``add``, ``list``, ``remove``, ``pause``, ``resume``,
``filter``. ``--chat`` names the chat (0, the default: the local chat of ``ariabot add``).

An indexer's feed URL holds an API key or a passkey, and a command line is visible to every
user of the machine: ``ariabot rss add -`` reads the URL from standard input instead.
"""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any, TextIO

from manager import feed_text, utcnow
from supervisor.control import ControlClient, Refused, feed_from_json
from supervisor.exits import EXIT_USAGE

__all__ = ["add_rss_parser", "rss_command"]

_OPTIONS_HELP = ("filter words: include:PATTERN exclude:PATTERN (repeatable; every word of a "
                 "pattern must be in the title, * and ? are wildcards), min:SIZE max:SIZE "
                 "(700MB, 4GiB)")


def add_rss_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``rss`` command and its actions."""
    rss = commands.add_parser(
        "rss", help="a chat's RSS/Atom feeds, whose new matching torrents are added by "
        "themselves")
    rss.add_argument("--chat", type=int, default=0, metavar="CHAT",
                     help="the chat whose feeds these are (0, the default: the local chat)")
    actions = rss.add_subparsers(dest="rss_action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="subscribe to a feed: its items now are taken as seen, new matches are "
        "added as they come")
    add.add_argument("url", help="the feed's http(s) URL, or '-' to read it from standard "
                     "input (a URL holding an API key or passkey)")
    add.add_argument("name", nargs="?", help="what to call it (from its title by default)")
    add.add_argument("options", nargs="*", metavar="OPTION",
                     help=f"{_OPTIONS_HELP}; newest:N adds the newest N matches now")
    listing = actions.add_parser("list", help="the feeds, their filters, adds and next read")
    listing.add_argument("--json", action="store_true", help="print JSON")
    for verb, text in (("remove", "unsubscribe (its downloads stay)"),
                       ("pause", "stop reading it until resumed"),
                       ("resume", "read it again, now")):
        actions.add_parser(verb, help=text).add_argument("name")
    change = actions.add_parser("filter", help="replace a feed's filter (no words: none)")
    change.add_argument("name")
    change.add_argument("options", nargs="*", metavar="OPTION", help=_OPTIONS_HELP)


def rss_command(client: ControlClient, args: argparse.Namespace, stdin: TextIO, out: TextIO,
                err: TextIO) -> int:
    """Run ``ariabot rss ACTION``; returns the exit status.

    Raises:
        Refused: the running ariabot refused it (the message says why).
        NotRunning: no ariabot runs on this data dir.
    """
    action = args.rss_action
    fields: dict[str, Any] = {"action": action, "chat": args.chat}
    if action == "add":
        url = args.url
        if url == "-":
            url = (getpass.getpass("feed URL: ") if stdin.isatty() else stdin.readline())
        if not url.strip():
            print("ariabot: give the feed's URL", file=err)
            return EXIT_USAGE
        name, options = args.name, list(args.options)
        if name is not None and ":" in name:  # no name given: the first word is an option
            name, options = None, [name, *options]
        fields.update(url=url.strip(), name=name, options=options)
    elif action == "filter":
        fields.update(name=args.name, options=args.options)
    elif action != "list":
        fields.update(name=args.name)
    answer = client.request("rss", **fields)
    if not answer.get("ok"):
        raise Refused(answer.get("error", "refused"))
    now = utcnow()
    if action == "list":
        feeds = answer["feeds"]
        if args.json:
            print(json.dumps(feeds, indent=2), file=out)
        for fields_of in [] if args.json else feeds:
            print(feed_text(feed_from_json(fields_of), now), file=out)
        if not feeds and not args.json:
            print("no feeds", file=out)
        return 0
    feed = feed_from_json(answer["feed"])
    if action == "add":
        added = answer["added"]
        print(f"subscribed to {feed.name} ({feed.host}): {answer['items']} items in it now "
              f"taken as seen{f', the newest {added} added' if added else ''}", file=out)
    else:
        done = {"remove": "removed (its downloads stay)", "pause": "paused",
                "resume": "resumed: it is read now", "filter": f"filter: {feed.filter}"}
        print(f"{feed.name}: {done[action]}", file=out)
    return 0
