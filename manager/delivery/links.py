"""Signed links to a finished download, and the files such a link may serve.

A link is ``<public url>/d/<token>``; the token is ``<download id>.<expiry>.<tag>.<signature>``:
the tag is a digest of the download's *stamp* (its info-hash, when its row was created and
when it completed), and the signature is HMAC-SHA256, under the key kept 0600 in the data
dir, of the id, the expiry (Unix seconds) and the tag. The signature is checked before
anything else, so a forged link costs no query; the tag is then compared with the row's
stamp. A link names a download, never a path; the page's files are then chosen by their
number in that download's own list.

What a link serves is cheap to serve again (a player sends a storm of Range requests): the
download's parsed metainfo is kept in memory per download and stamp (a few hundred at most),
dropped when the link is refused (cancelled, purged, another stamp); each request still
reads the row and checks on disk the file it serves.

A link dies when:

* its expiry passes (:class:`~manager.errors.LinkExpired`);
* its download is purged (no row), or a new download has its id (another stamp);
* its download is cancelled, or added again and completed anew (another ``completed_at``);
* its files are deleted or changed size: only the download's own chosen files, from its
  metainfo, complete on disk, with no symlink on the way, are ever served, so a link whose
  files are gone serves nothing (:class:`~manager.errors.LinkRefused`).

Nothing is stored per link: revoking needs no table, and a new key (delete the key file)
revokes every link at once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import stat
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from manager.config import LinkConfig
from manager.downloads import Contents, LiveDownloads, is_pad
from manager.errors import DownloadNotFound, InvalidState, LinkExpired, LinkRefused, LinksOff
from manager.models import Torrent, TorrentState
from manager.nodes import Ownership
from manager.sources import TorrentMeta
from manager.store import DownloadRecord, Store

__all__ = [
    "DownloadLink",
    "Links",
    "SharedDownload",
    "SharedFile",
    "link_stamp",
    "parse_token",
    "sign_token",
    "stamp_tag",
]

_FINISHED = frozenset({TorrentState.COMPLETE.value, TorrentState.SEEDING.value})
_DOMAIN = b"ariabot-link-2"
_TOKEN = re.compile(
    r"([1-9][0-9]{0,11})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})")
_KEPT_METAINFO = 256
"""Downloads whose parsed metainfo is kept for their links (the least recently used go)."""


@dataclass(frozen=True)
class DownloadLink:
    """A signed link to a download's page.

    Attributes:
        url: the page's address (``<public url>/d/<token>``).
        expires_at: when the link stops working (UTC, time-zone aware).
        torrent: the download it opens.
    """

    url: str
    expires_at: datetime
    torrent: Torrent


@dataclass(frozen=True)
class SharedFile:
    """One file a link serves.

    Attributes:
        number: its 1-based place in the download's list of files (as ``/files`` numbers
            them: pad files left out).
        name: its path inside the download, ``/``-separated (``Show/ep1.mkv``).
        length: its size in bytes.
        path: where it is on disk: the checked, symlink-free absolute path (never shown).
    """

    number: int
    name: str
    length: int
    path: Path = field(repr=False)


@dataclass(frozen=True)
class SharedDownload:
    """What a valid link opens: a finished download's own files, complete on disk."""

    id: int
    name: str
    files: tuple[SharedFile, ...]
    expires_at: datetime

    def file(self, number: int) -> SharedFile | None:
        """The file with this number, or None when the download has none such."""
        return next((f for f in self.files if f.number == number), None)


def link_stamp(record: DownloadRecord) -> bytes:
    """What ties a link to one completion of one download row (see the module's doc)."""
    completed = record.completed_at.replace(tzinfo=None).isoformat(timespec="microseconds") \
        if record.completed_at is not None else "-"
    created = record.created_at.replace(tzinfo=None).isoformat(timespec="microseconds")
    return f"{record.info_hash}|{created}|{completed}".encode()


def stamp_tag(stamp: bytes) -> str:
    """The 96-bit digest of a stamp a token carries (the signature covers it)."""
    return base64.urlsafe_b64encode(hashlib.sha256(stamp).digest()[:12]).decode("ascii")


def _signature(key: bytes, download_id: int, expires: int, tag: str) -> str:
    message = b"|".join((_DOMAIN, str(download_id).encode(), str(expires).encode(),
                         tag.encode()))
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_token(key: bytes, download_id: int, expires: int, stamp: bytes) -> str:
    """The token of a link to ``download_id`` valid until ``expires`` (Unix seconds)."""
    tag = stamp_tag(stamp)
    return f"{download_id}.{expires}.{tag}.{_signature(key, download_id, expires, tag)}"


def parse_token(token: str) -> tuple[int, int, str, str] | None:
    """``(download id, expiry, stamp tag, signature)`` of a well-formed token, else None."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    return int(match[1]), int(match[2]), match[3], match[4]


def _now() -> datetime:
    return datetime.now(UTC)


class Links:
    """Makes links to finished downloads and opens them again.

    Parameters:
        config: the public URL, the key and the links' lifetime; None when links are off.
        live: the downloads (their tracked rows).
        store: the opened store (sources, the activity log).
        contents: finds a download's metainfo.
        ownership: links are made to, and serve, this node's downloads only (their files).
        now: the wall clock (UTC, aware); injected by tests.
    """

    def __init__(self, config: LinkConfig | None, *, live: LiveDownloads, store: Store,
                 contents: Contents, ownership: Ownership,
                 now: Callable[[], datetime] = _now) -> None:
        self._config = config
        self._ownership = ownership
        self._live = live
        self._store = store
        self._contents = contents
        self._now = now
        self._metainfo: OrderedDict[int, tuple[bytes, TorrentMeta]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """True when links can be made (a public URL and a key are set)."""
        return self._config is not None

    async def make(self, download_id: int, chat_id: int | None, user_id: int) -> DownloadLink:
        """A signed link to a finished download's page.

        Raises:
            LinksOff: links are not set up.
            DownloadNotFound: no such download (in this chat).
            InvalidState: not finished, or its files are no longer on disk.
        """
        config = self._require()
        record = await self._live.record(download_id, chat_id)
        await self._ownership.check(record)
        if record.state not in _FINISHED:
            raise InvalidState(f"#{download_id} is {TorrentState(record.state).label}; only a "
                               "finished download has a link")
        if not await self._files(record):
            raise InvalidState(f"the files of #{download_id} are no longer here")
        expires = int((self._now() + config.ttl).timestamp())
        token = sign_token(config.key, record.id, expires, link_stamp(record))
        expires_at = datetime.fromtimestamp(expires, UTC)
        await self._store.activity.log(
            "link", chat_id=record.chat_id, user_id=user_id,
            download_id=record.id, detail=f"until {expires_at:%Y-%m-%d %H:%M}")
        return DownloadLink(url=f"{config.public_url}/d/{token}", expires_at=expires_at,
                            torrent=self._live.snapshot(record))

    async def open(self, token: str) -> SharedDownload:
        """What the link with this token serves (every file checked on disk).

        Raises:
            LinksOff: links are not set up.
            LinkRefused: forged, damaged or revoked (see the module's doc).
            LinkExpired: genuine, but its time is up.
        """
        record, expires = await self._verify(token)
        files = await self._files(record)
        if not files:
            raise LinkRefused(f"the files of #{record.id} are no longer here")
        return SharedDownload(id=record.id, name=record.name, files=files,
                              expires_at=datetime.fromtimestamp(expires, UTC))

    async def open_file(self, token: str, number: int) -> SharedFile | None:
        """File ``number`` of what the link serves, checked on disk (only that one: a
        player's Range requests cost no walk over a big torrent's files); None when the
        download has no such file or it is not complete on disk.

        Raises:
            LinksOff, LinkRefused, LinkExpired: as :meth:`open`.
        """
        record, _ = await self._verify(token)
        return next(iter(await self._files(record, only=number)), None)

    async def _verify(self, token: str) -> tuple[DownloadRecord, int]:
        """The row a genuine, unexpired link names, and its expiry. The signature is
        checked first: a forged token costs no query."""
        config = self._require()
        parsed = parse_token(token)
        if parsed is None:
            raise LinkRefused("not a link of this ariabot")
        download_id, expires, tag, signature = parsed
        expected = _signature(config.key, download_id, expires, tag)
        if not hmac.compare_digest(expected, signature):
            raise LinkRefused("a forged link")
        try:
            record = await self._live.record(download_id)
        except DownloadNotFound:
            self._metainfo.pop(download_id, None)
            raise LinkRefused(f"#{download_id} is no longer in the list") from None
        if not hmac.compare_digest(stamp_tag(link_stamp(record)), tag):
            self._metainfo.pop(download_id, None)
            raise LinkRefused("a link to an earlier download or completion")
        if not self._ownership.owns(record):
            raise LinkRefused(f"#{download_id} is on another node")
        if self._now().timestamp() >= expires:
            raise LinkExpired(f"the link to #{download_id} has expired")
        if record.state not in _FINISHED:
            self._metainfo.pop(download_id, None)
            raise LinkRefused(f"#{download_id} is {TorrentState(record.state).label}")
        return record, expires

    def _require(self) -> LinkConfig:
        if self._config is None:
            raise LinksOff()
        return self._config

    async def _files(self, record: DownloadRecord,
                     only: int | None = None) -> tuple[SharedFile, ...]:
        meta = await self._meta(record)
        if meta is None:
            return ()
        return await asyncio.to_thread(
            shared_files, meta, Path(record.directory), _selected(record.selected_files),
            only=only)

    async def _meta(self, record: DownloadRecord) -> TorrentMeta | None:
        """The download's parsed metainfo: kept per download and stamp, else read."""
        stamp = link_stamp(record)
        kept = self._metainfo.get(record.id)
        if kept is not None and kept[0] == stamp:
            self._metainfo.move_to_end(record.id)
            return kept[1]
        stored = await self._store.downloads.source(record.id)
        kind, source = stored if stored is not None else (record.source_kind, b"")
        meta = await asyncio.to_thread(self._contents.known_meta, record, kind, source)
        if meta is not None:
            self._metainfo[record.id] = (stamp, meta)
            self._metainfo.move_to_end(record.id)
            while len(self._metainfo) > _KEPT_METAINFO:
                self._metainfo.popitem(last=False)
        return meta


def shared_files(meta: TorrentMeta, folder: Path, selected: set[int] | None, *,
                 only: int | None = None) -> tuple[SharedFile, ...]:
    """The download's chosen files that are complete on disk, each at its real path
    (with ``only``, just the file of that number, if it is one of them).

    A file is left out when it is missing, not a regular file, not its metainfo's size, or
    reached through a symlink (anywhere below the chat folder): what is served is exactly
    ``<chat folder>/<its path in the metainfo>``, never a file a link elsewhere points to.
    """
    try:
        root = folder.resolve(strict=True)
    except OSError:
        return ()
    shared = []
    number = 0
    for entry in meta.files:
        if is_pad(entry.path):
            continue
        number += 1
        if (selected is not None and entry.index not in selected) or (
                only is not None and number != only):
            continue
        expected = root.joinpath(*entry.path.split("/"))
        try:
            real = expected.resolve(strict=True)
            status = real.lstat()
        except OSError:
            continue
        if real != expected or not real.is_relative_to(root):
            continue  # a symlink on the way, or a name that climbs out
        if not stat.S_ISREG(status.st_mode) or status.st_size != entry.length:
            continue
        shared.append(SharedFile(number=number, name=entry.path, length=entry.length,
                                 path=real))
    return tuple(shared)


def _selected(selected: str | None) -> set[int] | None:
    """aria2's ``select-file`` list as numbers, or None when every file is chosen."""
    if not selected:
        return None
    numbers: set[int] = set()
    for part in selected.split(","):
        low, _, high = part.strip().partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            numbers.update(range(int(low), int(high or low) + 1))
    return numbers or None

