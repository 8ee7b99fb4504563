"""Hybrid (BitTorrent v1 + v2) .torrent files for tests, built by hand after BEP 52.

torf writes v1 metainfo only, and no Debian tool ariabot's tests use writes hybrids, so this
module builds them: a v1 part (``pieces`` over the files with a BEP 47 pad file after each,
so every file starts on a piece boundary) and a v2 part (``meta version: 2``, ``file tree``
with a SHA-256 merkle root per file, ``piece layers`` for files larger than one piece).
The result is byte for byte what libtorrent 2.0 (python3-libtorrent's ``create_torrent``)
makes of the same files without a creation date, and libtorrent verifies data against it.

Two hashes name a hybrid: ``v1_hash``, the SHA-1 of the bencoded info dictionary (what
``xt=urn:btih:`` and v1 peers use), and ``v2_hash``, its SHA-256 (``xt=urn:btmh:1220…``).
"""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# torf's own bencoder (vendored flatbencode); torf is pinned <5 in pyproject.toml.
from torf import _flatbencode as bencode

__all__ = ["BLOCK", "HybridTorrent", "aria2_136_hash", "build_hybrid", "merkle_root"]

BLOCK = 16 * 1024
"""BEP 52's leaf size: every file is hashed in 16 KiB blocks."""

_ZERO = bytes(32)


@dataclass(frozen=True)
class HybridTorrent:
    """A hybrid .torrent and the names the swarm knows it by."""

    torrent_bytes: bytes = field(repr=False)
    v1_hash: str
    """SHA-1 of the info dictionary, 40 lower-case hex digits (``btih``)."""
    v2_hash: str
    """SHA-256 of the info dictionary, 64 lower-case hex digits (``btmh`` without 1220)."""
    name: str
    tracker_url: str

    @property
    def magnet(self) -> str:
        """A hybrid magnet link: ``xt=urn:btih:`` and ``xt=urn:btmh:``, as clients write it."""
        return (f"magnet:?xt=urn:btih:{self.v1_hash}&xt=urn:btmh:1220{self.v2_hash}"
                f"&dn={urllib.parse.quote(self.name, safe='')}"
                f"&tr={urllib.parse.quote(self.tracker_url, safe='')}")


def aria2_136_hash(torrent_bytes: bytes) -> str:
    """The info-hash aria2 1.36 computes for a hybrid: SHA-1 of the info dictionary with
    every empty-named entry dropped.

    aria2 1.36's bencode decoder skips dictionary keys of length 0 (aria2 issue #1903, fixed
    in 1.37 by pull request #1905), and every file in a ``file tree`` is such a key. aria2
    re-encodes what it decoded to name the torrent, so it announces a hash no other client
    uses. ``aria2c -S`` on the files of :func:`build_hybrid` prints exactly this.
    """

    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k != b""}
        if isinstance(value, list):
            return [drop(v) for v in value]
        return value

    info = bencode.decode(torrent_bytes)[b"info"]
    return hashlib.sha1(bencode.encode(drop(info)), usedforsecurity=False).hexdigest()


def merkle_root(leaves: list[bytes], width: int) -> bytes:
    """The root of a SHA-256 merkle tree over ``leaves`` padded with zero hashes to ``width``.

    Parameters:
        leaves: 32-byte hashes.
        width: a power of two, at least ``len(leaves)``.
    """
    layer = leaves + [_ZERO] * (width - len(leaves))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest()
                 for i in range(0, len(layer), 2)]
    return layer[0]


def _pow2(count: int) -> int:
    width = 1
    while width < count:
        width *= 2
    return width


def _v2_file(data: bytes, piece_length: int) -> tuple[bytes, bytes | None]:
    """A file's ``pieces root`` and its piece layer (None when it fits in one piece)."""
    leaves = [hashlib.sha256(data[i:i + BLOCK]).digest() for i in range(0, len(data), BLOCK)]
    per_piece = piece_length // BLOCK
    if len(data) <= piece_length:
        return merkle_root(leaves, _pow2(len(leaves))), None
    pieces = [merkle_root(leaves[i:i + per_piece], per_piece)
              for i in range(0, len(leaves), per_piece)]
    # Above the piece layer, missing pieces are subtrees of zero leaves.
    pad = merkle_root([], per_piece)
    layer = pieces + [pad] * (_pow2(len(pieces)) - len(pieces))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest()
                 for i in range(0, len(layer), 2)]
    return layer[0], b"".join(pieces)


def build_hybrid(content: Path, tracker_url: str, *, piece_length: int = 64 * 1024,
                 private: bool = False) -> HybridTorrent:
    """Build a hybrid .torrent for a file or a folder of files (none of them empty).

    Parameters:
        content: the file, or the folder (its files, sorted by path, as BEP 52 orders them).
        tracker_url: the ``announce`` URL.
        piece_length: a power of two, at least 16 KiB.
        private: set ``info.private``.

    Returns:
        The .torrent and its v1 and v2 info-hashes.
    """
    if piece_length < BLOCK or piece_length & (piece_length - 1):
        raise ValueError("piece_length must be a power of two of at least 16 KiB")
    if content.is_file():
        files = [(content.name,)]
        paths = [content]
    else:
        paths = sorted((p for p in content.rglob("*") if p.is_file()),
                       key=lambda p: p.relative_to(content).parts)
        files = [p.relative_to(content).parts for p in paths]
    tree: dict[bytes, Any] = {}
    layers: dict[bytes, bytes] = {}
    v1_files: list[dict[bytes, Any]] = []
    stream = bytearray()
    for parts, path in zip(files, paths, strict=True):
        data = path.read_bytes()
        if not data:
            raise ValueError(f"{path} is empty: this helper makes no empty files")
        root, layer = _v2_file(data, piece_length)
        if layer is not None:
            layers[root] = layer
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part.encode(), {})
        node[parts[-1].encode()] = {b"": {b"length": len(data), b"pieces root": root}}
        stream += data
        v1_files.append({b"length": len(data), b"path": [p.encode() for p in parts]})
        tail = len(data) % piece_length
        if tail and content.is_dir():  # libtorrent pads after the last file too
            pad = piece_length - tail
            stream += bytes(pad)
            v1_files.append({b"attr": b"p", b"length": pad,
                             b"path": [b".pad", str(pad).encode()]})
    pieces = b"".join(hashlib.sha1(stream[i:i + piece_length], usedforsecurity=False).digest()
                      for i in range(0, len(stream), piece_length))
    info: dict[bytes, Any] = {
        b"file tree": tree,
        b"meta version": 2,
        b"name": content.name.encode(),
        b"piece length": piece_length,
        b"pieces": pieces,
    }
    if content.is_dir():
        info[b"files"] = v1_files
    else:
        info[b"length"] = v1_files[0][b"length"]
    if private:
        info[b"private"] = 1
    encoded_info = bencode.encode(info)
    metainfo = {b"announce": tracker_url.encode(), b"info": info, b"piece layers": layers}
    return HybridTorrent(
        torrent_bytes=bencode.encode(metainfo),
        v1_hash=hashlib.sha1(encoded_info, usedforsecurity=False).hexdigest(),
        v2_hash=hashlib.sha256(encoded_info).hexdigest(),
        name=content.name,
        tracker_url=tracker_url,
    )
