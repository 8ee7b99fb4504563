""".torrent files: checking one a user uploaded, and describing it as aria2 will.

:func:`parse_torrent` checks size, bencoding (:mod:`manager.sources.bencode`), metainfo (with torf),
every file and folder name (torf does not check them, and aria2 only catches some), and that
the info-hash aria2 will compute is the one the swarm uses. Every refusal is an
:class:`~manager.errors.InvalidTorrent` whose message can be shown to the user as is.

aria2 1.36 facts this module relies on (checked with ``aria2c --show-files``):

- File indexes (for ``select-file``) are 1-based positions in ``info.files``, in metainfo order.
- aria2 prefers ``name.utf-8`` over ``name`` and ``path.utf-8`` over ``path``; a name that is
  not UTF-8 is percent-encoded whole (``util::encodeNonUtf8``). Both keys are checked here.
- aria2 computes the info-hash by re-encoding the info dictionary, not from the file's bytes:
  a non-canonical info dictionary gets a hash no peer knows. Such files are refused.
- aria2 1.36 drops dictionary keys of length 0 when it reads bencode, and every file of a
  v2 ``file tree`` is one: it names a hybrid (v1+v2) torrent by a wrong info-hash. Hybrids are
  flagged here; :mod:`manager.aria2.compat` refuses them when the running aria2c is older than 1.37.
- aria2 crashes on a repeated key inside the info dictionary (:mod:`manager.sources.bencode`).
- aria2 accepts ``a/b`` inside one path element (creating folders), empty elements, backslashes
  and control characters (escaped as ``%01``); it refuses ``..``, ``.`` and absolute names.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torf

from manager.errors import InvalidTorrent
from manager.models import FileEntry
from manager.sources.bencode import BencodeError, find_info
from manager.sources.trackers import collect_trackers
from manager.units import human_size
from manager.usertext import MAX_NAME_BYTES, display, has_control, shorten, show

__all__ = ["DEFAULT_MAX_FILES", "TorrentMeta", "parse_torrent"]

DEFAULT_MAX_FILES = 10_000
"""Most files a .torrent may list unless the caller says otherwise."""

_MAX_PATH_BYTES = 2048  # a whole relative path; leaves room for the chat folder in PATH_MAX
_MAX_REASON = 160  # characters of torf's explanation quoted in a message
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class TorrentMeta:
    """A .torrent file that passed :func:`parse_torrent`.

    Attributes:
        info_hash: BitTorrent v1 info-hash (SHA-1 of the info dictionary), 40 lower-case hex
            characters; the same as aria2's and the swarm's.
        name: the torrent's name: the file (single-file) or folder (multi-file) aria2 creates.
        total_bytes: the sum of all file lengths (> 0).
        files: every file, with aria2's 1-based index in aria2's order and its path relative
            to the download folder (``name/dir/file``, ``/``-separated), as aria2 writes it.
        trackers: http, https and udp announce URLs (``announce-list``, else ``announce``).
        private: the torrent is private (``info.private`` is 1): trackers only, no DHT/PEX.
        data: the file's original bytes, to pass to ``aria2.addTorrent`` unchanged.
        hybrid: a hybrid (v1+v2) torrent: its info has v1 ``pieces`` and v2's ``file tree``
            or ``meta version: 2``. Whether aria2 can download it depends on its version
            (:mod:`manager.aria2.compat`).
    """

    info_hash: str
    name: str
    total_bytes: int
    files: tuple[FileEntry, ...]
    trackers: tuple[str, ...]
    private: bool
    data: bytes = field(repr=False)
    hybrid: bool = False


def parse_torrent(
    data: bytes, *, max_bytes: int, max_files: int = DEFAULT_MAX_FILES
) -> TorrentMeta:
    """Check a .torrent file and describe it.

    Checks, in order: size; bencoding (shape, nesting depth, no repeated dictionary keys, which
    crash aria2); v2-only torrents (aria2 cannot download them; hybrids are recognised and
    flagged, :attr:`TorrentMeta.hybrid`, since aria2 1.36 cannot download them either); file
    count; total size > 0; torf's metainfo validation; that the info dictionary is canonically
    encoded, so aria2's info-hash is the swarm's; every file and folder name, under ``name``
    and ``name.utf-8``, ``path`` and ``path.utf-8`` (no ``..``, ``.``, empty names, ``/`` or
    ``\\`` inside a name, NUL or other control characters; at most 255 bytes per name and
    2048 per path); lengths; no file that is also a folder or is listed twice (except BEP 47
    pad files); trackers (as for magnets).

    The info-hash is the SHA-1 of the info dictionary's bytes in the file, checked equal to
    torf's (which re-encodes the dictionary, as aria2 does).

    Parameters:
        data: the file's content.
        max_bytes: largest file accepted (torf itself reads at most 10,000,000 bytes).
        max_files: most files accepted in one torrent.

    Returns:
        The checked :class:`TorrentMeta`.

    Raises:
        InvalidTorrent: with a message fit for the user.
        TypeError: ``data`` is not bytes.
        ValueError: ``max_bytes`` or ``max_files`` is not positive.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    if max_bytes <= 0 or max_files <= 0:
        raise ValueError("max_bytes and max_files must be positive")
    data = bytes(data)
    limit = min(max_bytes, torf.Torrent.MAX_TORRENT_FILE_SIZE)
    if len(data) > limit:
        size, most = human_size(len(data)), human_size(limit)
        if size == most:
            size, most = f"{len(data):,} bytes", f"{limit:,} bytes"
        raise InvalidTorrent(f"torrent file is too large: {size} (limit {most})")
    if not data:
        raise InvalidTorrent("torrent file is empty")

    try:
        start, end = find_info(data)
    except BencodeError as exc:
        raise _damaged(str(exc)) from None
    torrent = _read_with_torf(data)
    info = torrent.metainfo["info"]
    has_v2 = "file tree" in info or info.get("meta version") == 2
    if "pieces" not in info and has_v2:
        raise InvalidTorrent(
            "aria2 cannot download BitTorrent v2-only torrents: this one has no v1 "
            "piece hashes"
        )
    files_value = info.get("files")
    if isinstance(files_value, list) and len(files_value) > max_files:
        raise InvalidTorrent(
            f"torrent has too many files: {len(files_value)} (limit {max_files})"
        )
    if _declared_size(info) == 0:
        raise InvalidTorrent("torrent has no data: its total size is 0 bytes")
    torf_hash = _validate_with_torf(torrent)

    # SHA-1 is what BitTorrent v1 names torrents by: an identity, not a security check.
    info_hash = hashlib.sha1(data[start:end], usedforsecurity=False).hexdigest()
    if info_hash != torf_hash:
        raise _damaged(
            "its info dictionary is not canonically encoded (keys out of order, or a private "
            "flag other than 0 or 1), so aria2 would look for it under the wrong info-hash"
        )

    name = _name(info)
    files = _file_entries(info, name)
    total = sum(entry.length for entry in files)
    if total <= 0:
        raise InvalidTorrent("torrent has no data: its total size is 0 bytes")
    if total > _INT64_MAX:
        raise _damaged("its total size is impossibly large")
    piece_length = info["piece length"]
    if -(-total // piece_length) != len(info["pieces"]) // 20:
        raise _damaged("its number of pieces does not match its size")
    _check_layout(files)
    return TorrentMeta(
        info_hash=info_hash,
        name=name,
        total_bytes=total,
        files=files,
        trackers=_torrent_trackers(torrent.metainfo),
        private=bool(info.get("private", False)),
        data=data,
        hybrid=has_v2,
    )


def _declared_size(info: Mapping[str, Any]) -> int | None:
    """The total size the info dictionary declares, or None when its shape is wrong."""
    if "files" not in info:
        length = info.get("length")
        return length if type(length) is int else None
    files = info["files"]
    if not isinstance(files, list) or not all(
        isinstance(item, Mapping) and type(item.get("length")) is int for item in files
    ):
        return None
    return sum(item["length"] for item in files)


def _damaged(reason: str) -> InvalidTorrent:
    """The error for a torrent file that is not well-formed."""
    return InvalidTorrent(f"torrent file is damaged: {reason}")


def _unsafe(reason: str, path: str) -> InvalidTorrent:
    """The error for a torrent file with a file or folder name we refuse."""
    return InvalidTorrent(f"torrent file has an unsafe file name: {reason}: {show(path)}")


# Everything torf 4.3 was seen to raise on hostile input (found by fuzzing): its own errors,
# TypeError (e.g. sorting mixed str/bytes keys), ValueError/OverflowError/OSError (e.g. from
# datetime.fromtimestamp on a bogus "creation date"), ArithmeticError from piece counts.
_TORF_FAILURES = (TypeError, ValueError, ArithmeticError, OSError)


def _read_with_torf(data: bytes) -> torf.Torrent:
    """Decode with torf, without validation yet."""
    try:
        return torf.Torrent.read_stream(data, validate=False)
    except torf.BdecodeError as exc:
        raise _damaged("it is not a bencoded torrent file") from exc
    except torf.MetainfoError as exc:
        raise _damaged(_torf_reason(exc)) from exc
    except _TORF_FAILURES as exc:
        raise _damaged(f"its metainfo is malformed ({show(str(exc))})") from exc


def _validate_with_torf(torrent: torf.Torrent) -> str:
    """Run torf's metainfo validation; return torf's info-hash (of the re-encoded info)."""
    try:
        torrent.validate()
        return str(torrent.infohash)
    except torf.MetainfoError as exc:
        raise _damaged(_torf_reason(exc)) from exc
    except _TORF_FAILURES as exc:
        raise _damaged(f"its metainfo is malformed ({show(str(exc))})") from exc


def _torf_reason(exc: torf.MetainfoError) -> str:
    """torf's explanation without its "Invalid metainfo: " prefix, shortened."""
    return shorten(str(exc).removeprefix("Invalid metainfo: "), _MAX_REASON)




def _name(info: Mapping[str, Any]) -> str:
    """The torrent's name as aria2 writes it (``name.utf-8`` wins); both keys are checked."""
    name = _component(info["name"], "")
    if "name.utf-8" in info:
        value = info["name.utf-8"]
        if not isinstance(value, str | bytes):
            raise _damaged("its name.utf-8 is not a string")
        name = _component(value, "")
    return name


def _file_entries(info: Mapping[str, Any], name: str) -> tuple[FileEntry, ...]:
    """The files in aria2's order with aria2's indexes, every path element checked."""
    if "files" not in info:
        return (FileEntry(index=1, path=name, length=_length(info.get("length"))),)
    entries: list[FileEntry] = []
    for index, item in enumerate(info["files"], start=1):
        if not isinstance(item, Mapping):
            raise _damaged("an entry of its file list is not a dictionary")
        elements = _path(item, "path", name)
        if "path.utf-8" in item:
            elements = _path(item, "path.utf-8", name)
        path = "/".join([name, *elements])
        if len(path.encode()) > _MAX_PATH_BYTES:
            raise _unsafe(f"a path is longer than {_MAX_PATH_BYTES} bytes", path)
        entries.append(FileEntry(index=index, path=path, length=_length(item.get("length"))))
    if not entries:
        raise _damaged("its file list is empty")
    return tuple(entries)


def _path(item: Mapping[str, Any], key: str, name: str) -> list[str]:
    """Check one file's path list under ``key``; return its elements as aria2 writes them."""
    value = item.get(key)
    if not isinstance(value, list) or not value:
        raise _damaged(f"a file has no {key} list")
    shown = name
    elements: list[str] = []
    for element in value:
        if not isinstance(element, str | bytes):
            raise _damaged(f"a file's {key} has an element that is not a string")
        shown += "/" + display(element)
        elements.append(_component(element, shown))
    return elements


def _component(value: object, context: str) -> str:
    """Check one file or folder name; return it as aria2 writes it on disk.

    A name that is not UTF-8 is percent-encoded whole, as aria2 does (``encodeNonUtf8``).
    """
    if not isinstance(value, str | bytes):
        raise _damaged("a file or folder name is not a string")
    raw = value.encode() if isinstance(value, str) else value
    shown = context or display(value)
    if not raw:
        raise _unsafe("an empty file or folder name", shown)
    if raw in (b".", b".."):
        raise _unsafe(f"{display(value)!r} is not a file or folder name", shown)
    if b"/" in raw or b"\\" in raw:
        raise _unsafe("a name contains / or \\", shown)
    if any(byte < 0x20 or byte == 0x7F for byte in raw):
        raise _unsafe("a name contains control characters", shown)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        on_disk = urllib.parse.quote(raw, safe="")
    else:
        if has_control(text):
            raise _unsafe("a name contains control characters", shown)
        on_disk = text
    if len(on_disk.encode()) > MAX_NAME_BYTES:
        raise _unsafe(f"a name is longer than {MAX_NAME_BYTES} bytes", shown)
    return on_disk


def _length(value: object) -> int:
    """A file length: a non-negative integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _damaged("a file length is missing or negative")
    if value > _INT64_MAX:
        raise _damaged("a file is impossibly large")
    return value


def _check_layout(files: tuple[FileEntry, ...]) -> None:
    """Refuse a file listed twice, or a path that is both a file and a folder.

    BEP 47 pad files (``.pad/<size>``, e.g. in hybrid torrents) may repeat: they are zeros.
    """
    paths: set[str] = set()
    folders: set[str] = set()
    for entry in files:
        elements = entry.path.split("/")
        is_pad = len(elements) >= 2 and elements[-2] == ".pad"
        if entry.path in folders or (entry.path in paths and not is_pad):
            raise _unsafe("a path is listed twice, or as both a file and a folder", entry.path)
        paths.add(entry.path)
        for cut in range(1, len(elements)):
            folder = "/".join(elements[:cut])
            if folder in paths:
                raise _unsafe("a path is listed as both a file and a folder", folder)
            folders.add(folder)


def _torrent_trackers(metainfo: Mapping[str, Any]) -> tuple[str, ...]:
    """Announce URLs as aria2 reads them: ``announce-list`` if it is a list, else ``announce``."""
    urls: list[str] = []
    tiers = metainfo.get("announce-list")
    if isinstance(tiers, list):
        for tier in tiers:
            if isinstance(tier, list):
                urls.extend(url for url in tier if isinstance(url, str))
    elif isinstance(metainfo.get("announce"), str):
        urls.append(metainfo["announce"])
    return collect_trackers(urls, InvalidTorrent, "torrent file refused")
