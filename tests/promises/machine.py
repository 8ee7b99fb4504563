"""The promises machine: rules users and faults play, invariants checked after every step.

Rules (each a thing a user, the machine or Telegram does): add a magnet or a ``.torrent``
from a Telegram chat (pasted, ``/torrent``, a document, a link to the file), the control
socket or the chat's feed (the item published, the feed read every second), in three chats
and the local one, with names that collide within and across chats; pause, resume, choose
files, cancel with and without its files (by a button, the control socket or the Mini App's
API), purge, send, link, mirror (the mode flips at each restart: copy, move); restart by
SIGTERM, ``kill -9`` of ariabot or of aria2c; the store's write lock held by another
connection; Telegram faults per chat (5xx for a while, 429, an
answer lost after the message was posted, 403 blocked, the group upgraded to a supergroup);
a dead magnet; the seeder throttled.

Invariants (see :mod:`tests.promises`): I1, I4, I6 and I7 must hold after every step; I2, I3
and I5 must hold within their bound, measured from when the machine first saw the state
that calls for them, so no step waits for them; :meth:`PromisesMachine.settle` (a rule, and
the teardown) waits, polling with a deadline, until nothing is due.

Known defects (issue 23, part A) that the machine finds on today's main are kept out of its
default runs by :class:`Knobs`, each naming its item, until the fix is merged.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import requests
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.promises.world import (
    GROUP,
    GROUP_MIGRATED,
    LOCAL,
    USER,
    USER2,
    Catalog,
    FaultyTelegram,
    Item,
    LoopThread,
    Stack,
    fingerprint,
)
from tests.runner import wait_until

__all__ = ["KNOWN_DEFECTS", "Knobs", "PromisesMachine", "Tally", "make_machine", "pick"]

NEWS_BOUND = 20.0
"""Seconds within which a completion or failure is announced in a chat without faults."""
FAULT_SLACK = 45.0
"""Seconds after a chat's fault ends within which its news must arrive (the retry delay
doubles from 5 s up to 30 s)."""
AGREE_BOUND = 20.0
"""Seconds within which the stored row must agree with aria2 and the disk."""
STORE_LOCK = 7.0
"""Seconds the store's write lock is held: longer than ariabot's 5 s busy timeout."""
THROTTLE = 3 * 1024
"""The seeder's upload cap (bytes/s) while throttled: a download takes seconds."""
VERBS = ("pause", "resume", "cancel-keep", "cancel-delete", "send", "link", "mirror", "files")
"""What :meth:`PromisesMachine.work_on` does to a download."""
LIVE = frozenset({"queued", "metadata", "downloading", "paused", "seeding"})
"""Row states whose download aria2 still holds."""
RUNNING = frozenset({"queued", "metadata", "downloading"})
WRITING = frozenset({"downloading", "seeding", "complete"})
"""Row states whose download has (or had) files on disk under its name."""
UPLOADING = frozenset({"queued", "uploading", "retrying", "verifying"})


def pick(options: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """One of ``options``, about evenly: ``sampled_from`` leans hard on the first one (its
    simplest), which starved the later verbs of a sequence; this still shrinks to it."""
    return st.integers(0, 2**16 - 1).map(lambda n: options[n % len(options)])


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_KNOWN_TRACEBACK = re.compile(
    r"bot\.errors: error while handling an update: (NetworkError|RetryAfter|TimedOut)$")


@dataclass(frozen=True)
class Knobs:
    """Which rules and faults run. Each ``False`` default keeps a defect the machine found on
    main out of CI until its fix is merged: turn it on then (``--enable`` in soak)."""

    mirror_collisions: bool = True
    """Mirrors of two downloads with the same name, and a foreign file at the destination
    under that name (issue 23 item 1: they overwrote each other)."""
    same_chat_collisions: bool = True
    """A second torrent with a listed download's top name, in the same chat, before the
    first one's files are on disk (issue 23 item 2; main refused or failed every such add
    the machine tried, so it is on)."""
    store_faults: bool = True
    """A store write that fails: the write lock held by another connection past the busy
    timeout (issue 23 item 4: it lost a completion until restart)."""
    migration: bool = True
    """The group upgraded to a supergroup, ChatMigrated (issue 23 item 6)."""
    send_again: bool = True
    """Send pressed again after a send (issue 23 item 10: confirmed parts went again)."""
    network_tracebacks: bool = True
    """A reply to a user that fails with a Bot API network error or a 429 (a 502, a lost
    answer, RetryAfter past the pacer) must log no traceback (found by this machine: it was
    an ERROR with one); off, such tracebacks are let pass (any other one fails)."""
    unclaimed_names: bool = True
    """A file in a chat folder that no stored download claims (the machine's planted
    ``notes.txt``; a purged download's kept files) must not be overwritten by a new torrent
    of the same name (found by this machine: the add's hash check rewrote it)."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def enabled(self, *names: str) -> Knobs:
        """These knobs on, the others as they are."""
        unknown = set(names) - set(self.names())
        if unknown:
            raise ValueError(f"no such knob: {', '.join(sorted(unknown))}")
        return replace(self, **dict.fromkeys(names, True))


KNOWN_DEFECTS = Knobs()
"""What CI runs: every knob whose defect is not fixed yet is off."""


@dataclass
class Known:
    """A download the machine saw in the store."""

    item: Item | None
    """None: the dead magnet."""
    chat: int
    info_hash: str
    since: float
    """When its row was created, on this process's monotonic clock (the fake server's)."""


@dataclass
class Owned:
    """A fingerprinted file: who owns it (None: the machine planted it) and its SHA-256."""

    owner: int | None
    digest: str
    where: str = "disk"


@dataclass
class Due:
    """Something that must happen within a bound: since when, and why."""

    since: float
    what: str


@dataclass
class Tally:
    """Figures across examples (for the soak's summary)."""

    steps: int = 0
    examples: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    trace: bool = False
    """Print each step as it runs."""
    started: float = field(default_factory=time.monotonic)
    first_failure: str | None = None
    """The first error a sequence of this seed raised, with its steps: what to show when
    Hypothesis cannot replay it (the real world took another turn) and reports only that."""


class PromisesMachine(RuleBasedStateMachine):
    """Drives one ariabot (see the module docstring); :func:`make_machine` binds the world."""

    catalog: ClassVar[Catalog]
    root: ClassVar[Path]
    telegram_loop: ClassVar[LoopThread]
    knobs: ClassVar[Knobs]
    tally: ClassVar[Tally]
    numbers: ClassVar[itertools.count[int]]

    def __init__(self) -> None:
        super().__init__()
        self.tally.examples += 1
        self.sequence: list[str] = []
        self.stack = self._world(self.root / f"example-{next(self.numbers):04d}")
        self.known: dict[int, Known] = {}
        self.owned: dict[Path, Owned] = {}
        self.released: set[int] = set()
        self.completed: dict[int, float] = {}
        self.failed: dict[int, float] = {}
        self.mirrored_names: dict[str, int] = {}
        self.sent: set[int] = set()
        self.sent_items: set[tuple[int, str]] = set()
        self.fed: dict[int, list[Item]] = {}
        """Chat → the catalog items published on its feed, oldest first."""
        self.fault_end: dict[int, float] = {}
        self.blocked: set[int] = set()
        self.migrated = False
        self.disagree: dict[str, Due] = {}
        self.clean = False
        self._plant()
        self.stack.start()

    # --- the world's set-up ------------------------------------------------------------------

    def _world(self, root: Path) -> Stack:
        """The stack this machine drives (one ariabot on SQLite)."""
        return Stack(root, self.telegram_loop, self.catalog)

    def _plant(self) -> None:
        """Files ariabot was never given, where its downloads and mirrors go (I1)."""
        planted = [self.stack.destination / "keep.txt"]
        for downloads in self.stack.download_dirs():
            planted += [downloads / "outside.txt",
                        downloads / "torrents" / str(USER) / "keep.txt",
                        downloads / "torrents" / str(GROUP) / "keep.txt"]
            if self.knobs.unclaimed_names:
                # a foreign file with a catalog name: adding "notes" there must leave it alone
                planted.append(downloads / "torrents" / str(USER2) / "notes.txt")
        if self.knobs.mirror_collisions:
            planted.append(self.stack.destination / "movie.mkv")
        for number, path in enumerate(planted):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(1000 + number))
            self.owned[path] = Owned(None, fingerprint(path) or "")

    def teardown(self) -> None:
        failure = sys.exception()  # teardown runs in Hypothesis's `finally`: the step's error
        if failure is not None and self.tally.first_failure is None:
            self.tally.first_failure = "".join(
                [*traceback.format_exception(failure), "steps:\n",
                 *(f"  {step}\n" for step in self.sequence)])
        try:
            self.catalog.swarm.seeder.set_upload_limit(0)
            if self.clean:
                self.settle()
        finally:
            self.stack.close()
            self.stack.discard()

    # --- helpers -----------------------------------------------------------------------------

    def _step(self, name: str, *arguments: object) -> None:
        self.clean = False
        self.sequence.append(f"{name}{tuple(arguments) if arguments else ''}")
        self.tally.steps += 1
        self.tally.counts[name] = self.tally.counts.get(name, 0) + 1
        if self.tally.trace:
            print(f"  {time.monotonic() - self.tally.started:7.1f}s {name}"
                  f"{tuple(arguments) if arguments else ''}", flush=True)

    def _chat(self, chat: int) -> int:
        """Where a chat's users speak now (a migrated group speaks as its supergroup)."""
        return GROUP_MIGRATED if chat == GROUP and self.migrated else chat

    def _user(self, chat: int) -> int:
        return USER2 if chat == USER2 else USER

    def _rows(self) -> dict[int, dict[str, Any]]:
        rows = {row["id"]: row for row in self.stack.rows()}
        for number, row in rows.items():
            known = self.known.get(number)
            assert known is None or known.info_hash == row["info_hash"], (
                f"#{number} was {known.info_hash[:8]}, now {row['info_hash'][:8]}: "
                "a purged download's id was given to a new one")
            # A group's rows follow it to its supergroup: the same downloads, with their
            # files and releases (every look at a chat goes through _chat).
            moved = (known.chat, int(row["chat_id"])) if known is not None else None
            assert moved is None or moved[0] == moved[1] or moved == (GROUP, GROUP_MIGRATED), (
                f"#{number} moved from chat {moved[0]} to chat {moved[1]}")
            if known is None:
                age = datetime.now(UTC).replace(tzinfo=None) - datetime.fromisoformat(
                    str(row["created_at"]))
                self.known[number] = Known(self.catalog.by_hash.get(row["info_hash"]),
                                           int(row["chat_id"]), row["info_hash"],
                                           time.monotonic() - age.total_seconds() - 1.0)
        return rows

    def _pick(self, number: int) -> int | None:
        ids = sorted(self.known)
        return ids[number % len(ids)] if ids else None

    def _usable(self, chat: int) -> bool:
        return chat not in self.blocked

    def _wait_reply(self, chat: int, since: int, what: str) -> None:
        """The bot answered something in ``chat`` (or its supergroup) after ``since``."""
        chats = {chat, self._chat(chat)}
        wait_until(lambda: any(r.method == "sendMessage" and r.params.get("chat_id") in chats
                               for r in self.stack.requests(since)),
                   30, what, describe=lambda: self.stack.output[-3000:])

    def _wait_answer(self, query: str, since: int) -> None:
        wait_until(lambda: any(r.method == "answerCallbackQuery"
                               and str(r.params.get("callback_query_id")) == query
                               for r in self.stack.requests(since)),
                   30, "the button's answer", describe=lambda: self.stack.output[-3000:])

    def _in_use(self, item: Item, chat: int) -> bool:
        """A listed download in ``chat`` has this top name and another info-hash, or (knob
        ``unclaimed_names`` off) a file no stored download claims has it."""
        rows = self._rows()
        name = item.torrent.name
        if not self.knobs.unclaimed_names and not any(
                row["name"] == name and row["chat_id"] == chat for row in rows.values()) \
                and any((downloads / "torrents" / str(chat) / name).exists()
                        for downloads in self.stack.download_dirs()):
            return True
        return self.knobs.same_chat_collisions is False and any(
            k.item is not None and self._chat(k.chat) == self._chat(chat)
            and k.item.torrent.name == name
            and k.item.key != item.key and row["state"] in LIVE
            for number, row in rows.items() for k in [self.known[number]])

    # --- rules: adding -----------------------------------------------------------------------

    @rule(plan=st.tuples(pick((*Catalog.keys_of(), "dead")), pick((USER, GROUP, USER2, LOCAL)),
                         pick(("paste", "document", "command", "link", "local magnet",
                               "local file", "feed"))))
    def add(self, plan: tuple[str, int, str]) -> None:
        """Add a torrent of the catalog (or "dead", a magnet nobody seeds: it fails by
        bt-stop-timeout) to a chat: pasted, by ``/torrent``, as a ``.torrent`` document, as
        a link to its ``.torrent`` on a web site (pasted; ``/torrent <link>`` in the group),
        over the control socket (``ariabot add --chat``; the local chat only this way), or
        published on the chat's feed (subscribed with ``ariabot rss add`` at first use)."""
        key, chat, how = plan
        self._step("add", key, chat, how)
        if how == "feed" and key != "dead":
            self._add_by_feed(self.catalog.by_key[key], chat)
            return
        if chat == LOCAL or key == "dead":
            how = how if how.startswith("local") else "local magnet"
        if how.startswith("local"):
            self._add_local(key, self._chat(chat), how == "local file" and key != "dead")
            return
        item = self.catalog.by_key[key]
        if not self._usable(chat) or self._in_use(item, self._chat(chat)):
            return
        if chat == GROUP and how == "paste":
            how = "command"  # a bot in a group reads commands only
        where, user, since = self._chat(chat), self._user(chat), self.stack.mark()
        if how == "document":
            self.stack.send_document(where, user, item)
        elif how == "link":
            link = self.stack.link(item)
            self.stack.say(where, user, f"/torrent {link}" if chat == GROUP else link)
        else:
            text = item.torrent.magnet if how == "paste" else f"/torrent {item.torrent.magnet}"
            self.stack.say(where, user, text)
        self._wait_reply(chat, since, f"the bot's answer to an add ({how}) in {where}")
        self._rows()

    def _add_by_feed(self, item: Item, chat: int) -> None:
        """Publish ``item`` on the chat's feed: once its next read is done, the chat lists
        it, whether the feed added it or the chat had it already (and never a second time:
        a published item is not published again, and a row is one per chat and torrent)."""
        where = self._chat(chat)
        published = self.fed.setdefault(chat, [])
        rows = self._rows()
        if item in published or self._in_use(item, where) or any(
                row["info_hash"] == item.torrent.info_hash and row["state"] in LIVE
                and int(row["chat_id"]) != where for row in rows.values()) or any(
                # A finished download of the chat owns its name too (the feed's add is
                # refused, and said as the feed's last problem, not in a listing).
                row["name"] == item.torrent.name and row["info_hash"] != item.torrent.info_hash
                and int(row["chat_id"]) == where and row["state"] != "cancelled"
                for row in rows.values()):
            return  # refused for a reason of its own (a name, another chat's download)
        feed = f"chat{chat}"
        if not published:
            self.stack.publish(feed, [])
            answer = self.stack.control("rss", action="add", chat=where, name="catalog",
                                        url=self.stack.feed_url(feed))
            assert answer.get("ok"), answer
        published.append(item)
        self.stack.publish(feed, published)
        wait_until(lambda: any(row["info_hash"] == item.torrent.info_hash
                               and int(row["chat_id"]) == self._chat(chat)
                               for row in self._rows().values()),
                   30 + STORE_LOCK, f"{item.key} added from the feed of chat {where}",
                   describe=lambda: self.stack.output[-3000:])

    def _add_local(self, key: str, chat: int, as_file: bool) -> None:
        if key == "dead":
            answer = self.stack.control("add", magnet=self.catalog.swarm.dead_magnet("dead"),
                                        chat=chat)
        else:
            item = self.catalog.by_key[key]
            if self._in_use(item, chat):
                return
            answer = self.stack.add_local(item, chat, as_file)
        assert "Traceback" not in str(answer), answer
        self._rows()

    # --- rules: acting on a download ---------------------------------------------------------

    @precondition(lambda self: self.known)
    @rule(action=st.tuples(pick(VERBS), st.integers(0, 15), pick(("button", "local", "app")),
                           st.sets(st.integers(1, 3), min_size=1)))
    def work_on(self, action: tuple[str, int, str, set[int]]) -> None:
        """Act on a download the machine saw (``number`` picks one of them): pause, resume,
        cancel (keeping or deleting its files), Send, link, mirror, choose its files; by the
        button under its progress message, on the Mini App's page (its API, signed as
        Telegram signs), or over the control socket. (Named to sort after ``add``:
        Hypothesis's simplest sequence repeats the first rule it may run.)"""
        verb, number, via, choice = action
        download = self._pick(number)
        assert download is not None
        self._step(verb, download, via, *([sorted(choice)] if verb == "files" else []))
        if verb in ("pause", "resume"):
            if not ((via == "button" and self._press(download, f"{verb}:{download}"))
                    or (via == "app" and self._by_app(download, verb))):
                self.stack.control(verb, id=download)
        elif verb.startswith("cancel"):
            self._cancel(download, verb == "cancel-delete", via)
        elif verb == "files":
            known = self.known[download]
            count = len(known.item.torrent.files) if known.item else 1
            chosen = sorted(i for i in choice if i <= count) or [1]
            if not (via == "app" and self._by_app(download, "files", {"selected": chosen})):
                self.stack.control("files", id=download, select=chosen)
        else:
            {"send": self._send, "link": self._link, "mirror": self._mirror}[verb](download)

    def _cancel(self, download: int, delete: bool, via: str) -> None:
        if delete:
            self.released.add(download)  # its own files may go, nothing else
        data = f"cancel:{download}:{'delete' if delete else 'keep'}"
        if not ((via == "button" and self._press(download, data))
                or (via == "app" and self._by_app(download, "cancel", {"delete_files": delete}))):
            self.stack.control("cancel", id=download, delete_files=delete)

    def _by_app(self, download: int, action: str, body: dict[str, Any] | None = None) -> bool:
        """Do it on the Mini App's page of the download's chat, as its user; False when the
        page cannot: the local chat has none, and while the chat's Telegram fails, a group's
        membership cannot be checked (the page refuses, fail closed)."""
        known = self.known[download]
        if known.chat == LOCAL or not self._usable(known.chat):
            return False
        status, answer = self.stack.app(self._chat(known.chat), self._user(known.chat),
                                        f"downloads/{download}/{action}", body or {})
        assert status in (200, 400, 403, 404, 409, 503), (action, download, status, answer)
        assert set(answer) <= {"download", "message", "error"}, answer
        return status not in (403, 503)

    def _send(self, download: int) -> None:
        """Press Send under a download: its files go to its chat (I6: each part once)."""
        known = self.known[download]
        # The same torrent in the same chat again (after a purge) is another download whose
        # files may go again; the machine leaves it out so that I6 can key on the file.
        what = (known.chat, known.item.key if known.item else "dead")
        if (download in self.sent or what in self.sent_items) and not self.knobs.send_again:
            return
        if self._press(download, f"send:{download}"):
            self.sent.add(download)
            self.sent_items.add(what)

    def _link(self, download: int) -> None:
        """A link is given only for a finished download and its page then opens."""
        answer = self.stack.control("link", id=download)
        if answer.get("ok"):
            page = requests.get(answer["url"], timeout=10)
            assert page.status_code == 200, (answer["url"], page.status_code)

    def _mirror(self, download: int) -> None:
        """Upload to the destination; in move mode the local files go (its own only)."""
        known = self.known[download]
        if known.item is None:
            return
        name = known.item.torrent.name
        if (not self.knobs.mirror_collisions
                and self.mirrored_names.get(name, download) != download):
            return
        answer = self.stack.control("mirror", id=download)
        if answer.get("ok"):
            self.mirrored_names[name] = download
            if self.stack.mode == "move":
                self.released.add(download)

    @rule(delete=st.booleans())
    def purge(self, delete: bool) -> None:
        """``ariabot purge --older-than 0`` (with or without files)."""
        self._step("purge", delete)
        before = set(self._rows())
        answer = self.stack.control("purge", older_than_days=0, delete_files=delete)
        assert answer.get("ok"), answer
        if delete:
            # It may delete only what it removed from the list: the rows gone now, not the
            # ones seen finished before it ran (a download seeding then may finish meanwhile).
            self.released |= before - set(self._rows())

    # --- rules: the machine and the store ----------------------------------------------------

    @rule(how=pick(("sigterm", "kill-9", "kill-9-aria2c")))
    def restart(self, how: str) -> None:
        self._step(f"restart {how}")
        if how == "kill-9-aria2c":
            self.stack.kill_aria2c()
        else:
            if how == "sigterm":
                self.stack.stop()
            else:
                self.stack.kill()
            self.stack.mode = "move" if self.stack.mode == "copy" else "copy"
            self.stack.start()
        self.disagree.clear()  # the bound starts again once it is back

    @precondition(lambda self: self.knobs.store_faults)
    @rule(seconds=st.sampled_from((STORE_LOCK, 2 * STORE_LOCK)))
    def store_write_fails(self, seconds: float) -> None:
        """Another connection holds the write lock past the busy timeout while downloads
        finish (the seeder unthrottled at once): their writes fail, and must be retried."""
        self._step("store_write_fails", seconds)
        with self.stack.store_locked():
            self.catalog.swarm.seeder.set_upload_limit(0)
            deadline = time.monotonic() + seconds
            wait_until(lambda: time.monotonic() > deadline, seconds + 5, "the lock's end")
        self.disagree.clear()

    @rule(on=st.booleans())
    def throttle(self, on: bool) -> None:
        self._step("throttle", on)
        self.catalog.swarm.seeder.set_upload_limit(THROTTLE if on else 0)

    # --- rules: Telegram faults --------------------------------------------------------------

    @rule(fault=st.tuples(pick(("5xx", "429", "lost", "403", "migrated")),
                          pick((USER, GROUP, USER2)), pick((3.0, 6.0))))
    def telegram_fault(self, fault: tuple[str, int, float]) -> None:
        """A chat's Bot API calls fail: 5xx for a while, 429 three times, the next message's
        answer lost after Telegram posted it, 403 for good (USER2 blocks the bot: his news is
        dropped), or the group upgraded to a supergroup (its news must follow it)."""
        kind, chat, seconds = fault
        self._step(f"telegram {kind}", chat, seconds)
        if kind == "403":
            self._block()
            return
        if kind == "migrated":
            self._migrate()
            return
        where = self._chat(chat)
        now = time.monotonic()
        setter: Callable[[FaultyTelegram], None]
        if kind == "5xx":
            def setter(server: FaultyTelegram) -> None:
                server.down_until[where] = now + seconds
            end = now + seconds
        elif kind == "429":
            def setter(server: FaultyTelegram) -> None:
                server.too_many_next[where] = server.too_many_next.get(where, 0) + 3
            end = now + 6
        else:
            def setter(server: FaultyTelegram) -> None:
                server.lose_next[where] = server.lose_next.get(where, 0) + 1
            end = now
        self.stack.chat_fault(setter)
        for shown in {chat, where}:
            self.fault_end[shown] = max(self.fault_end.get(shown, 0.0), end)

    def _block(self) -> None:
        self.blocked.add(USER2)
        self.stack.chat_fault(lambda server: server.blocked.add(USER2))

    def _migrate(self) -> None:
        if not self.knobs.migration or self.migrated:
            return
        self.migrated = True
        self.stack.chat_fault(lambda server: server.migrated.__setitem__(GROUP, GROUP_MIGRATED))

    @rule(unthrottle=st.booleans())
    def settle(self, unthrottle: bool = True) -> None:
        """Wait (polling, with a deadline) until nothing is due and, unthrottled, until every
        download and upload under way has ended; the bounds still apply meanwhile."""
        self._step("settle", unthrottle)
        if unthrottle:
            self.catalog.swarm.seeder.set_upload_limit(0)

        def quiet() -> bool:
            due = self._check()
            return not due and not (unthrottle and self._busy())
        wait_until(quiet, NEWS_BOUND + FAULT_SLACK + 30, "every bounded promise to be kept",
                   describe=self._describe_busy if unthrottle else self._describe)
        self._no_traceback()

    def _no_traceback(self) -> None:
        """ariabot logged no traceback (with the knob off: except the known one, see
        :attr:`Knobs.network_tracebacks`)."""
        lines = self.stack.output.splitlines()
        known = False
        for number, line in enumerate(lines):
            if _LOG_LINE.match(line):
                known = bool(_KNOWN_TRACEBACK.search(line)) and not self.knobs.network_tracebacks
            elif line.startswith("Traceback") and not known:
                raise AssertionError("ariabot logged a traceback:\n" + "\n".join(
                    lines[max(0, number - 5):number + 40]))

    def _press(self, download: int, data: str) -> bool:
        """Press a button under the download's progress message (False: it has none)."""
        known = self.known[download]
        row = self._rows().get(download)
        if row is None or not row["message_id"] or known.chat == LOCAL \
                or not self._usable(known.chat):
            return False
        chat = self._chat(known.chat)
        since = self.stack.mark()
        query = self.stack.press(chat, self._user(known.chat), int(row["message_id"]), data)
        if query is None:
            return False
        self._wait_answer(query, since)
        return True

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def promises(self) -> None:
        self._check()
        self.clean = True

    def _check(self) -> int:
        """Check every promise now; raise on a broken one. Returns how many are still due."""
        now = time.monotonic()
        rows = self._rows()
        mirrors = {m["download_id"]: m for m in self.stack.rows("mirrors")}
        requests_seen = self.stack.requests()
        self._i1_bytes_kept()
        self._own_finished(rows, mirrors)
        self._i4_no_shared_path(rows)
        self._i6_confirmed_never_again(requests_seen)
        self._i7_one_node_online()
        due = self._i2_i5_announced(rows, requests_seen, now)
        due += self._i3_agreement(rows, mirrors, now)
        return due

    def _describe(self) -> str:
        return "\n".join(f"- {d.what} (for {time.monotonic() - d.since:.0f}s)"
                         for d in self.disagree.values())

    def _busy(self) -> list[str]:
        """The downloads and uploads under way, which a settle unthrottled waits for."""
        busy = [f"- #{r['id']} {r['state']} {r['completed_bytes']}/{r['total_bytes']} bytes, "
                f"gid {r['gid']}" for r in self.stack.rows() if r["state"] in RUNNING]
        uploads = [f"- mirror of #{m['download_id']} {m['state']}"
                   for m in self.stack.rows("mirrors") if m["state"] in UPLOADING]
        return busy + uploads

    def _describe_busy(self) -> str:
        """What settle still waits for: promises due, downloads and uploads under way."""
        return "\n".join([self._describe(), *self._busy()]).strip()

    def _selected(self, row: dict[str, Any], item: Item) -> list[str]:
        chosen = row["selected_files"]
        if not chosen:
            return list(item.torrent.files)
        numbers: set[int] = set()
        for part in str(chosen).split(","):
            low, _, high = part.partition("-")
            numbers.update(range(int(low), int(high or low) + 1))
        return [f for n, f in enumerate(item.torrent.files, start=1) if n in numbers]

    def _own_finished(self, rows: dict[int, dict[str, Any]],
                      mirrors: dict[int, dict[str, Any]]) -> None:
        """Fingerprint every finished download's files, and each mirror's copy once done."""
        for number, row in rows.items():
            item = self.known[number].item
            if item is None or number in self.released or row["completed_at"] is None:
                continue
            if row["state"] not in ("complete", "seeding"):
                continue
            for relative in self._selected(row, item):
                path = Path(row["directory"]) / relative
                if path not in self.owned and fingerprint(path) == item.torrent.digests[
                        relative]:
                    self.owned[path] = Owned(number, item.torrent.digests[relative])
        for number, mirror in mirrors.items():
            known = self.known.get(number)
            if mirror["state"] != "done" or known is None or known.item is None:
                continue
            if any(o.owner == number and o.where == "cloud" for o in self.owned.values()):
                continue
            row = rows.get(number)
            item = known.item
            wanted = self._selected(row, item) if row else list(item.torrent.files)
            for relative in wanted:
                copies = [p for p in self.stack.destination.rglob(Path(relative).name)
                          if p.as_posix().endswith("/" + relative)
                          and fingerprint(p) == item.torrent.digests[relative]]
                assert copies, (f"I4: mirror of #{number} is done but {relative} with its "
                                f"bytes is not at the destination")
                for copy in copies:
                    held = self.owned.get(copy)
                    assert held is None or held.owner == number, (
                        f"I4: #{number}'s mirror copy {copy.name} is at the place of "
                        f"{'a planted file' if held.owner is None else f'#{held.owner}'}")
                    self.owned[copy] = Owned(number, item.torrent.digests[relative], "cloud")

    def _i1_bytes_kept(self) -> None:
        for path, owned in list(self.owned.items()):
            if owned.owner is not None and owned.where == "disk" and owned.owner in self.released:
                del self.owned[path]
                continue
            now = fingerprint(path)
            whose = "planted by the machine" if owned.owner is None else \
                f"#{owned.owner}'s {'mirror copy' if owned.where == 'cloud' else 'file'}"
            assert now == owned.digest, (
                f"I1: {path.relative_to(self.stack.root)} ({whose}) "
                f"{'disappeared' if now is None else 'changed'}")

    def _i4_no_shared_path(self, rows: dict[int, dict[str, Any]]) -> None:
        paths: dict[str, int] = {}
        for number, row in sorted(rows.items()):
            if row["state"] not in LIVE and row["state"] != "complete":
                continue
            if not self._name_known(row):
                continue  # a magnet before its metadata: its name is the link's guess
            path = str((Path(row["directory"]) / row["name"]).resolve())
            assert path not in paths, (f"I4: #{paths.get(path)} and #{number} are listed "
                                       f"with the same path {row['name']!r} in chat "
                                       f"{row['chat_id']}")
            paths[path] = number

    @staticmethod
    def _name_known(row: dict[str, Any]) -> bool:
        """Whether a row's name is its torrent's (docs/promises.md, I4): a .torrent's is; a
        magnet's only once its metadata gave it a size or it started writing. A magnet
        paused (or queued) before its metadata carries the link's ``dn=``, has no files,
        and can write none until the metadata's name passes the clash check."""
        return (row["source_kind"] != "magnet" or bool(row["total_bytes"])
                or row["state"] in WRITING)

    @staticmethod
    def _news_key(text: str) -> str | None:
        for marker in ("is downloaded (#", "failed (#"):
            if marker in text:
                return marker + text.split(marker, 1)[1].split(")", 1)[0] + ")"
        return None

    def _generation(self, news: str | None, at: float) -> float | None:
        """Which download a news text with ``#id`` was about: ids come again after a purge."""
        if news is None:
            return None
        number = int(news.rsplit("#", 1)[1].rstrip(")"))
        known = self.known.get(number)
        return known.since if known is not None and known.since <= at else None

    def _i6_confirmed_never_again(self, seen: list[Any]) -> None:
        confirmed: dict[tuple[Any, ...], float] = {}
        for request in seen:
            chat = request.params.get("chat_id")
            if request.method == "sendMessage":
                news = self._news_key(str(request.params.get("text", "")))
                key: tuple[Any, ...] | None = (chat, news, self._generation(news,
                                                                             request.time))
            elif request.method == "sendDocument":
                document = request.params.get("document")
                key = (chat, getattr(document, "filename", None), getattr(document, "sha1",
                                                                           None))
            else:
                continue
            if key is None or key[1] is None:
                continue
            assert key not in confirmed, (f"I6: {key} was confirmed by Telegram and sent "
                                          f"again {request.time - confirmed[key]:.1f}s later")
            if request.status == 200:
                confirmed[key] = request.time

    def _i7_one_node_online(self) -> None:
        """The data dir's node is the database's one node, online, after any restart (a
        kill -9 included: no wait for the heartbeat limit)."""
        nodes = self.stack.control("nodes")["nodes"]
        assert [(node["state"], node["this"]) for node in nodes] == [("online", True)], (
            f"I7: the nodes after a step: {nodes}")

    def _i2_i5_announced(self, rows: dict[int, dict[str, Any]], seen: list[Any],
                         now: float) -> int:
        """Completions and failures announced once each (a lost answer may repeat one, the
        documented at-least-once policy), within the bound of their chat."""
        for number, row in rows.items():
            if row["completed_at"] is not None and row["state"] in ("complete", "seeding"):
                self.completed.setdefault(number, now)
            if row["state"] == "error":
                self.failed.setdefault(number, now)
        lost_answers = list(self.stack.server.lost)
        due = 0
        for table, marker in ((self.completed, "is downloaded (#"), (self.failed, "failed (#")):
            for number, since in table.items():
                chat = self.known[number].chat
                if chat == LOCAL or chat in self.blocked or number not in rows:
                    continue
                key = f"{marker}{number})"
                chats = {chat, self._chat(chat)}
                start = self.known[number].since
                posted = [r for r in seen if r.method == "sendMessage" and r.status == 200
                          and r.params.get("chat_id") in chats and r.time >= start
                          and key in str(r.params.get("text"))]
                repeats = sum(key in lost.text for lost in lost_answers if lost.at >= start)
                assert len(posted) <= 1, f"I2: {key} announced {len(posted)} times"
                if posted or repeats:
                    continue
                bound = max(since + NEWS_BOUND,
                            max((self.fault_end.get(c, 0.0) for c in chats), default=0.0)
                            + FAULT_SLACK)
                others = sorted(c for c, end in self.fault_end.items()
                                if c not in chats and end > since)
                label = "I5" if others and since + NEWS_BOUND >= bound else "I2"
                assert now <= bound, (f"{label}: {key} not announced in chat {chat} "
                                      f"{now - since:.0f}s after it happened"
                                      + (f" (faults in chats {others})" if others else ""))
                due += 1
        return due

    def _i3_agreement(self, rows: dict[int, dict[str, Any]],
                      mirrors: dict[int, dict[str, Any]], now: float) -> int:
        entries = self.stack.aria2()
        if entries is None:
            return self._disagree({"aria2": "aria2 does not answer"}, now)
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for entry in entries:
            place = (entry.get("infoHash", ""), os.path.realpath(entry.get("dir", "")))
            found.setdefault(place, []).append(entry)
        wrong: dict[str, str] = {}
        places = set()
        for number, row in rows.items():
            place = (row["info_hash"], os.path.realpath(row["directory"]))
            if row["state"] in LIVE:
                places.add(place)
            theirs = [e for e in found.get(place, []) if not e.get("followedBy")]
            theirs = [e for e in theirs if e["gid"] == row["gid"]] or theirs
            state, tag = row["state"], f"#{number} ({row['name']}, chat {row['chat_id']})"
            disagreement = self._i3_row(row, theirs, tag)
            if disagreement:
                wrong[f"row{number}"] = disagreement
            item = self.known[number].item
            gone = mirrors.get(number, {}).get("local_deleted")
            if state in ("complete", "seeding") and item is not None and not gone \
                    and number not in self.released:
                missing = [f for f in self._selected(row, item)
                           if fingerprint(Path(row["directory"]) / f) != item.torrent.digests[f]]
                if missing:
                    wrong[f"disk{number}"] = f"{tag} is stored {state}, disk lacks {missing}"
        for place, theirs in found.items():
            if place not in places and any(e["status"] in ("active", "waiting")
                                           and e.get("seeder") != "true" for e in theirs):
                wrong[f"aria2{place}"] = f"aria2 runs {place[0][:8]} in {place[1]}, no row"
        return self._disagree(wrong, now)

    @staticmethod
    def _i3_row(row: dict[str, Any], theirs: list[dict[str, Any]], tag: str) -> str | None:
        """How a row disagrees with what aria2 holds at its place (``theirs``), if it does."""
        live = [e for e in theirs if e["status"] in ("active", "waiting", "paused")]
        done = [e for e in theirs if e["status"] == "complete"
                or (e["status"] == "active" and e.get("seeder") == "true")]
        state = row["state"]
        if state in RUNNING and (done or not live):
            said = [e["status"] for e in theirs] or "nothing"
            return f"{tag} is stored {state}, aria2 says {said}"
        if state == "paused" and not any(e["status"] == "paused" for e in live):
            return f"{tag} is stored paused, aria2 does not hold it paused"
        if state in ("complete", "cancelled", "error") and any(
                e["status"] in ("active", "waiting") and e.get("seeder") != "true"
                for e in live):
            return f"{tag} is stored {state}, aria2 still runs it"
        return None

    def _disagree(self, wrong: dict[str, str], now: float) -> int:
        """Remember since when each disagreement lasts; fail the one past its bound."""
        self.disagree = {key: Due(self.disagree[key].since if key in self.disagree else now,
                                  what) for key, what in wrong.items()}
        for due in self.disagree.values():
            assert now - due.since <= AGREE_BOUND, f"I3: for {now - due.since:.0f}s: {due.what}"
        return len(self.disagree)


def make_machine(catalog: Catalog, root: Path, telegram_loop: LoopThread,
                 knobs: Knobs = KNOWN_DEFECTS, tally: Tally | None = None,
                 ) -> type[PromisesMachine]:
    """The machine bound to one swarm's catalog, a scratch folder and the fake Telegram's
    loop; examples get folders of their own below ``root``."""
    return type("Promises", (PromisesMachine,), {
        "catalog": catalog, "root": root, "telegram_loop": telegram_loop, "knobs": knobs,
        "tally": tally or Tally(), "numbers": itertools.count(1),
        "__module__": __name__})
