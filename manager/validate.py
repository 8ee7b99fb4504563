"""Validation of everything a user can hand ariabot as a download source.

Nothing a user types or uploads reaches aria2 before it went through here:

- :func:`parse_magnet` checks a magnet link and rebuilds it from its info-hash, name and
  trackers only (:attr:`MagnetLink.uri`); no other parameter of the user's string reaches aria2.
- :func:`parse_torrent` checks a .torrent file: size, bencoding, metainfo (with torf), every
  file and folder name (torf does not check them, and aria2 only catches some), and that the
  info-hash aria2 will compute is the one the swarm uses.
- :func:`find_magnets` picks magnet links out of a chat message.
- :func:`sanitize_options` keeps the few per-download aria2 options a user may set.

Every refusal is an :class:`~manager.errors.InvalidSource` (``InvalidMagnet``,
``InvalidTorrent``) whose message can be shown to the user as is.

aria2 1.36 facts this module relies on (checked with ``aria2c --show-files``):

- File indexes (for ``select-file``) are 1-based positions in ``info.files``, in metainfo order.
- aria2 prefers ``name.utf-8`` over ``name`` and ``path.utf-8`` over ``path``; a name that is
  not UTF-8 is percent-encoded whole (``util::encodeNonUtf8``). Both keys are checked here.
- aria2 computes the info-hash by re-encoding the info dictionary, not from the file's bytes:
  a non-canonical info dictionary gets a hash no peer knows. Such files are refused.
- aria2 1.36 drops dictionary keys of length 0 when it reads bencode, and every file of a
  v2 ``file tree`` is one: it names a hybrid (v1+v2) torrent by a wrong info-hash. Hybrids are
  flagged here; :mod:`manager.compat` refuses them when the running aria2c is older than 1.37.
- aria2 **crashes (SIGSEGV)** on a torrent with a repeated key inside the info dictionary, from
  the command line and from ``aria2.addTorrent`` alike. Repeated keys are refused anywhere.
- aria2 accepts ``a/b`` inside one path element (creating folders), empty elements, backslashes
  and control characters (escaped as ``%01``); it refuses ``..``, ``.`` and absolute names.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torf

from manager.errors import InvalidMagnet, InvalidSource, InvalidTorrent
from manager.models import FileEntry

__all__ = [
    "ALLOWED_OPTIONS",
    "DEFAULT_MAX_FILES",
    "MAX_MAGNET_CHARS",
    "MagnetLink",
    "TorrentMeta",
    "find_magnets",
    "parse_magnet",
    "parse_torrent",
    "sanitize_options",
]

MAX_MAGNET_CHARS = 8192
"""Longest magnet link accepted, in characters (after stripping surrounding blanks)."""

DEFAULT_MAX_FILES = 10_000
"""Most files a .torrent may list unless the caller says otherwise."""

_MAX_TRACKERS = 50  # more are dropped, in order
_MAX_NAME_BYTES = 255  # one file or folder name on disk, UTF-8 (NAME_MAX on Linux)
_MAX_PATH_BYTES = 2048  # a whole relative path; leaves room for the chat folder in PATH_MAX
_MAX_MAGNETS_PER_MESSAGE = 5
_MAX_QUERY_FIELDS = 256
_MAX_DEPTH = 64  # bencode nesting; torf recurses per level
_MAX_SHOWN = 80  # characters of user input quoted back in a message

_TRACKER_SCHEMES = frozenset({"http", "https", "udp"})
# WebTorrent (ws, wss) and Vuze (dht://<hash>.dht) trackers are common, useless to aria2 and
# harmless: dropped quietly.
_DROPPED_TRACKER_SCHEMES = frozenset({"ws", "wss", "dht"})

_HEX_HASH = re.compile(r"[0-9a-fA-F]{40}")
_BASE32_HASH = re.compile(r"[A-Za-z2-7]{32}")
_XT_KEY = re.compile(r"xt(?:\.[0-9]{1,3})?")
_TR_KEY = re.compile(r"tr(?:\.[0-9]{1,3})?")
_MAGNET_IN_TEXT = re.compile(r"magnet:\?[^\s<>\"'`]+", re.IGNORECASE)
_BENCODE_INT = re.compile(rb"0|-?[1-9][0-9]{0,19}")
_BENCODE_LEN = re.compile(rb"0|[1-9][0-9]{0,10}")

_INT64_MAX = 2**63 - 1


# --------------------------------------------------------------------------------------------
# Magnet links


@dataclass(frozen=True)
class MagnetLink:
    """A magnet link that passed :func:`parse_magnet`.

    Attributes:
        info_hash: BitTorrent v1 info-hash, 40 lower-case hex characters.
        name: the display name (``dn``), cleaned and at most 255 bytes; None when absent.
        trackers: http, https and udp tracker URLs, deduplicated, in the link's order.
        uri: a canonical magnet link rebuilt from ``xt`` (hex), ``dn`` and ``tr`` only; this,
            not the user's text, is what goes to aria2.
        hybrid: the link names a hybrid (v1+v2) torrent: it has ``xt=urn:btmh:`` next to
            ``xt=urn:btih:``. Whether aria2 can download it depends on its version
            (:mod:`manager.compat`).
    """

    info_hash: str
    name: str | None
    trackers: tuple[str, ...]
    uri: str
    hybrid: bool = False


def parse_magnet(text: str) -> MagnetLink:
    """Check a magnet link and rebuild it from the parts aria2 needs.

    Accepted: ``xt=urn:btih:`` with 40 hex (any case) or 32 base32 characters; more ``xt``
    (``xt.1``, ``urn:btmh:`` of a hybrid torrent, which sets :attr:`MagnetLink.hybrid`,
    other networks' URNs) as long as the ``btih`` ones agree; ``tr`` and ``tr.N`` trackers;
    any other parameter (``x.pe``, ``so``, ``ws``, ``xl``, ``kt``…), which is ignored.
    HTML-escaped ``&amp;`` separators are undone.

    Refused: other schemes, more than :data:`MAX_MAGNET_CHARS` characters, control characters,
    a missing or malformed ``btih``, a v2-only link (``btmh`` without ``btih``: aria2 cannot
    download it), a ``dn`` containing ``/`` or ``\\`` or being ``.``/``..``, and a tracker
    whose scheme is not http, https or udp (WebTorrent ``ws``/``wss`` and Vuze ``dht``
    trackers are dropped instead, since real clients add them to ordinary links).

    Parameters:
        text: the link as the user sent it; surrounding blanks are ignored.

    Returns:
        The checked :class:`MagnetLink`.

    Raises:
        InvalidMagnet: with a message fit for the user.
    """
    if not isinstance(text, str):
        raise InvalidMagnet("not a magnet link: expected text")
    text = text.strip()
    if len(text) > MAX_MAGNET_CHARS:
        raise InvalidMagnet(
            f"not a magnet link: too long ({len(text)} characters, limit {MAX_MAGNET_CHARS})"
        )
    if not _is_encodable(text):
        raise InvalidMagnet("not a magnet link: it is not valid text")
    if _has_control(text):
        raise InvalidMagnet("not a magnet link: it contains control characters")
    head, question, query = text.partition("?")
    if head.lower() != "magnet:" or not question:
        raise InvalidMagnet("not a magnet link: it must start with magnet:?")
    query = query.replace("&amp;", "&")
    try:
        pairs = urllib.parse.parse_qsl(
            query, keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS
        )
    except ValueError as exc:  # too many fields
        raise InvalidMagnet("not a magnet link: it has too many parameters") from exc

    hashes: list[str] = []
    has_btmh = False
    names: list[str] = []
    tracker_values: list[str] = []
    for raw_key, value in pairs:
        key = raw_key.lower()
        if _XT_KEY.fullmatch(key):
            urn = value.strip()
            prefix = urn[:9].lower()
            if prefix == "urn:btih:":
                hashes.append(_hex_info_hash(urn[9:]))
            elif prefix == "urn:btmh:":
                has_btmh = True
            # Other URNs (sha1, ed2k, tree:tiger…) are for other networks: ignored.
        elif key == "dn":
            names.append(value)
        elif _TR_KEY.fullmatch(key):
            tracker_values.append(value)

    if not hashes:
        if has_btmh:
            raise InvalidMagnet(
                "aria2 cannot download BitTorrent v2-only magnet links: this one has "
                "xt=urn:btmh but no xt=urn:btih"
            )
        raise InvalidMagnet("not a magnet link: missing xt=urn:btih")
    if len(set(hashes)) > 1:
        raise InvalidMagnet("not a magnet link: it names more than one info-hash")
    info_hash = hashes[0]
    name = _magnet_name(names[0]) if names else None
    trackers = _collect_trackers(tracker_values, InvalidMagnet, "magnet link refused")

    parts = [f"xt=urn:btih:{info_hash}"]
    if name is not None:
        parts.append("dn=" + urllib.parse.quote(name, safe=""))
    parts.extend("tr=" + urllib.parse.quote(url, safe="") for url in trackers)
    return MagnetLink(
        info_hash=info_hash, name=name, trackers=trackers, uri="magnet:?" + "&".join(parts),
        hybrid=has_btmh,
    )


def find_magnets(text: str, *, limit: int = _MAX_MAGNETS_PER_MESSAGE) -> list[str]:
    """Pick the magnet links out of free text, such as a chat message.

    A link ends at white space, a quote or an angle bracket; trailing sentence punctuation
    and an unbalanced closing bracket are not part of it. The strings are not checked: give
    each to :func:`parse_magnet`.

    Parameters:
        text: the message.
        limit: at most this many links are returned (the first ones, without repeats).

    Returns:
        The links in the order they appear, possibly empty.
    """
    found: list[str] = []
    if not isinstance(text, str) or limit <= 0:
        return found
    for match in _MAGNET_IN_TEXT.finditer(text):
        link = _trim_link(match.group(0))
        if link not in found:
            found.append(link)
            if len(found) >= limit:
                break
    return found


def _trim_link(link: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets from the end of a link."""
    pairs = {")": "(", "]": "["}
    while link:
        last = link[-1]
        unbalanced = last in pairs and link.count(last) > link.count(pairs[last])
        if last not in ".,;:!?" and not unbalanced:
            break
        link = link[:-1]
    return link


def _hex_info_hash(value: str) -> str:
    """Return a btih value as 40 lower-case hex characters, from hex or base32."""
    if _HEX_HASH.fullmatch(value):
        return value.lower()
    if _BASE32_HASH.fullmatch(value):
        return base64.b32decode(value.upper()).hex()
    raise InvalidMagnet("not a magnet link: info-hash must be 40 hex or 32 base32 characters")


def _magnet_name(value: str) -> str | None:
    """Check and clean a ``dn`` value; None when it is blank."""
    value = value.strip()
    if not value:
        return None
    if _has_control(value):
        raise InvalidMagnet("magnet link refused: its name (dn) contains control characters")
    if "/" in value or "\\" in value or value in (".", ".."):
        raise InvalidMagnet(
            f"magnet link refused: its name (dn) must not be a path: {_show(value)}"
        )
    return _truncate_utf8(value, _MAX_NAME_BYTES)


# --------------------------------------------------------------------------------------------
# Trackers (magnets and torrents)


def _collect_trackers(
    urls: Iterable[str], error: type[InvalidSource], prefix: str
) -> tuple[str, ...]:
    """Check tracker URLs; keep http/https/udp ones, deduplicated, at most ``_MAX_TRACKERS``."""
    kept: list[str] = []
    for url in urls:
        checked = _check_tracker(url, error, prefix)
        if checked is not None and checked not in kept:
            kept.append(checked)
    return tuple(kept[:_MAX_TRACKERS])


def _check_tracker(url: str, error: type[InvalidSource], prefix: str) -> str | None:
    """Return a usable tracker URL, None for one to drop quietly, or raise ``error``."""
    url = url.strip()
    if not url:
        return None
    if _has_control(url) or any(ch.isspace() for ch in url):
        raise error(f"{prefix}: a tracker URL contains blanks or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        _ = parts.port  # raises ValueError when the port is not a number in range
    except ValueError as exc:
        raise error(f"{prefix}: malformed tracker URL {_show(url)}") from exc
    if scheme in _DROPPED_TRACKER_SCHEMES:
        return None
    if scheme not in _TRACKER_SCHEMES:
        shown = _show(scheme) if scheme else "(none)"
        raise error(
            f"{prefix}: tracker scheme {shown} is not allowed (only http, https and udp)"
        )
    if not host:
        raise error(f"{prefix}: malformed tracker URL {_show(url)}")
    return url


# --------------------------------------------------------------------------------------------
# .torrent files


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
            (:mod:`manager.compat`).
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
        size, most = _format_bytes(len(data)), _format_bytes(limit)
        if size == most:
            size, most = f"{len(data):,} bytes", f"{limit:,} bytes"
        raise InvalidTorrent(f"torrent file is too large: {size} (limit {most})")
    if not data:
        raise InvalidTorrent("torrent file is empty")

    start, end = _scan_bencode(data)
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
    return InvalidTorrent(f"torrent file has an unsafe file name: {reason}: {_show(path)}")


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
        raise _damaged(f"its metainfo is malformed ({_show(str(exc))})") from exc


def _validate_with_torf(torrent: torf.Torrent) -> str:
    """Run torf's metainfo validation; return torf's info-hash (of the re-encoded info)."""
    try:
        torrent.validate()
        return str(torrent.infohash)
    except torf.MetainfoError as exc:
        raise _damaged(_torf_reason(exc)) from exc
    except _TORF_FAILURES as exc:
        raise _damaged(f"its metainfo is malformed ({_show(str(exc))})") from exc


def _torf_reason(exc: torf.MetainfoError) -> str:
    """torf's explanation without its "Invalid metainfo: " prefix, shortened."""
    reason = str(exc).removeprefix("Invalid metainfo: ")
    if len(reason) > 2 * _MAX_SHOWN:
        reason = reason[: 2 * _MAX_SHOWN] + "…"
    return reason


@dataclass(slots=True)
class _Open:
    """A list or dictionary being scanned by :func:`_scan_bencode`."""

    start: int
    keys: set[bytes] | None  # None for a list
    key: bytes | None = None  # a dictionary's key whose value comes next


def _scan_bencode(data: bytes) -> tuple[int, int]:
    """Walk bencoded ``data`` without building it, and find the info dictionary's bytes.

    torf decodes into dictionaries where a repeated key silently wins, and recurses once per
    nesting level; aria2 crashes on repeated keys. This walk checks what they do not.

    Returns:
        ``(start, end)``: the slice of ``data`` holding the root dictionary's ``info`` value.

    Raises:
        InvalidTorrent: not bencoded, not a dictionary, nested too deeply, a repeated key,
            or no ``info``.
    """
    if data[:1] != b"d":
        raise _damaged("it is not a bencoded torrent file")
    size = len(data)
    pos = 0
    stack: list[_Open] = []
    info: tuple[int, int] | None = None
    while True:
        if pos >= size:
            raise _damaged("it is truncated")
        top = stack[-1] if stack else None
        char = data[pos : pos + 1]
        if top is not None and top.keys is not None and top.key is None and char != b"e":
            key_start, pos = _scan_string(data, pos)
            key = data[key_start:pos]
            if key in top.keys:
                raise _damaged(f"a dictionary has the key {_show_bytes(key)} twice")
            top.keys.add(key)
            top.key = key
            continue
        if char in (b"l", b"d"):
            if len(stack) >= _MAX_DEPTH:
                raise _damaged("it is nested too deeply")
            stack.append(_Open(start=pos, keys=set() if char == b"d" else None))
            pos += 1
            continue
        if char == b"e":
            if top is None or top.key is not None:
                raise _damaged("it is not a bencoded torrent file")
            stack.pop()
            start, pos = top.start, pos + 1
        elif char == b"i":
            end = data.find(b"e", pos + 1, pos + 23)
            if end < 0 or not _BENCODE_INT.fullmatch(data, pos + 1, end):
                raise _damaged("it has a malformed or impossibly large number")
            start, pos = pos, end + 1
        else:
            start = pos
            _, pos = _scan_string(data, pos)
        # One value [start, pos) is complete.
        if not stack:
            if pos != size:
                raise _damaged("it has data after its end")
            if info is None:
                raise _damaged("it has no info dictionary")
            return info
        parent = stack[-1]
        if parent.keys is not None:
            if len(stack) == 1 and parent.key == b"info":
                info = (start, pos)
            parent.key = None


def _scan_string(data: bytes, pos: int) -> tuple[int, int]:
    """Read a bencoded string header at ``pos``; return ``(content_start, content_end)``."""
    colon = data.find(b":", pos, pos + 12)
    if colon < 0 or not _BENCODE_LEN.fullmatch(data, pos, colon):
        raise _damaged("it is not a bencoded torrent file")
    end = colon + 1 + int(data[pos:colon])
    if end > len(data):
        raise _damaged("it is truncated")
    return colon + 1, end


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
        shown += "/" + _display(element)
        elements.append(_component(element, shown))
    return elements


def _component(value: object, context: str) -> str:
    """Check one file or folder name; return it as aria2 writes it on disk.

    A name that is not UTF-8 is percent-encoded whole, as aria2 does (``encodeNonUtf8``).
    """
    if not isinstance(value, str | bytes):
        raise _damaged("a file or folder name is not a string")
    raw = value.encode() if isinstance(value, str) else value
    shown = context or _display(value)
    if not raw:
        raise _unsafe("an empty file or folder name", shown)
    if raw in (b".", b".."):
        raise _unsafe(f"{_display(value)!r} is not a file or folder name", shown)
    if b"/" in raw or b"\\" in raw:
        raise _unsafe("a name contains / or \\", shown)
    if any(byte < 0x20 or byte == 0x7F for byte in raw):
        raise _unsafe("a name contains control characters", shown)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        on_disk = urllib.parse.quote(raw, safe="")
    else:
        if _has_control(text):
            raise _unsafe("a name contains control characters", shown)
        on_disk = text
    if len(on_disk.encode()) > _MAX_NAME_BYTES:
        raise _unsafe(f"a name is longer than {_MAX_NAME_BYTES} bytes", shown)
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
    return _collect_trackers(urls, InvalidTorrent, "torrent file refused")


# --------------------------------------------------------------------------------------------
# Per-download options


def _check_select_file(value: str) -> str:
    """``select-file``: 1-based file numbers and ranges, ``1,3-5``."""
    hint = "use file numbers like 1,3-5"
    if len(value) > 4096:
        raise InvalidSource(f"bad value for select-file: too long ({hint})")
    for part in value.split(","):
        low, dash, high = part.partition("-")
        if not _is_file_number(low) or (dash and not _is_file_number(high)):
            raise InvalidSource(f"bad value for select-file: {_show(value)} ({hint})")
        if dash and int(high) < int(low):
            raise InvalidSource(f"bad value for select-file: range {_show(part)} goes backwards")
    return value


def _is_file_number(text: str) -> bool:
    """1 to 999999 without sign, blanks or leading zeros."""
    return re.fullmatch(r"[1-9][0-9]{0,5}", text) is not None


def _decimal_check(option: str, unit: str) -> Callable[[str], str]:
    """A check for a non-negative decimal like ``1.5`` (seed-ratio, seed-time)."""

    def check(value: str) -> str:
        if re.fullmatch(r"[0-9]{1,6}(?:\.[0-9]{1,6})?", value) is None:
            raise InvalidSource(
                f"bad value for {option}: {_show(value)} (use a number of {unit} like 1.5)"
            )
        return value

    return check


def _speed_check(option: str) -> Callable[[str], str]:
    """A check for a speed limit: bytes per second, optionally K or M (0 = unlimited)."""

    def check(value: str) -> str:
        if re.fullmatch(r"(?:0|[1-9][0-9]{0,9})[KkMm]?", value) is None:
            raise InvalidSource(
                f"bad value for {option}: {_show(value)} "
                "(use bytes per second like 500K or 2M; 0 means no limit)"
            )
        return value

    return check


def _check_pause(value: str) -> str:
    """``pause``: true or false (aria2 wants lower case)."""
    if value not in ("true", "false"):
        raise InvalidSource(f"bad value for pause: {_show(value)} (use true or false)")
    return value


_OPTION_CHECKS: Mapping[str, Callable[[str], str]] = MappingProxyType({
    "max-download-limit": _speed_check("max-download-limit"),
    "max-upload-limit": _speed_check("max-upload-limit"),
    "pause": _check_pause,
    "seed-ratio": _decimal_check("seed-ratio", "times the size"),
    "seed-time": _decimal_check("seed-time", "minutes"),
    "select-file": _check_select_file,
})

ALLOWED_OPTIONS: frozenset[str] = frozenset(_OPTION_CHECKS)
"""The per-download aria2 options a user may set; everything else (``dir``, ``out``,
``on-download-*``, ``log``, ``save-session``, ``allow-overwrite``, ``index-out``…) is refused."""


def sanitize_options(options: Mapping[str, str]) -> dict[str, str]:
    """Keep the per-download aria2 options a user may set, with strictly checked values.

    Parameters:
        options: option name to value, both strings, as aria2's RPC takes them.

    Returns:
        A new dict with the same options (all allowed and well-formed).

    Raises:
        InvalidSource: an option not in :data:`ALLOWED_OPTIONS`, or a malformed value.
    """
    clean: dict[str, str] = {}
    for key, value in options.items():
        check = _OPTION_CHECKS.get(key) if isinstance(key, str) else None
        if check is None:
            allowed = ", ".join(sorted(ALLOWED_OPTIONS))
            raise InvalidSource(f"option {_show(key)} cannot be set (allowed: {allowed})")
        if not isinstance(value, str):
            raise InvalidSource(f"bad value for {key}: it must be text")
        clean[key] = check(value)
    return clean


# --------------------------------------------------------------------------------------------
# Small helpers


def _has_control(text: str) -> bool:
    """Whether ``text`` has a control character (C0, DEL or C1)."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def _is_encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogates)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _truncate_utf8(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit].decode(errors="ignore")


def _display(value: str | bytes) -> str:
    """A name for messages, whatever its encoding."""
    return value if isinstance(value, str) else value.decode(errors="backslashreplace")


def _show(value: object) -> str:
    """User input quoted back in a message: repr-escaped and shortened."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > _MAX_SHOWN:
        text = text[:_MAX_SHOWN] + "…"
    return repr(text)


def _show_bytes(value: bytes) -> str:
    """A bencode key quoted back in a message."""
    return _show(value.decode(errors="backslashreplace"))


def _format_bytes(size: int) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"
