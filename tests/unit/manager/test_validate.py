"""Tests of manager.validate: magnets, .torrent files, magnets in text, per-download options.

Torrents are made here: good ones with torf from files in a temp folder, hostile ones as
hand-built metainfo encoded with torf's own bencoder (flatbencode), or as raw bytes where
the hostility is in the encoding itself (repeated or unsorted keys).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import os
import posixpath
import re
import shutil
import subprocess
import unicodedata
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import torf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manager import validate
from manager.errors import InvalidMagnet, InvalidSource, InvalidTorrent
from manager.models import FileEntry
from manager.validate import (
    ALLOWED_OPTIONS,
    DEFAULT_MAX_FILES,
    MAX_MAGNET_CHARS,
    MagnetLink,
    TorrentMeta,
    find_magnets,
    parse_magnet,
    parse_torrent,
    sanitize_options,
)
from tests.hybrid import build_hybrid
from tests.swarm import make_content

try:  # torf >= 4.3 vendors flatbencode; torf 4.2 depends on the package
    from torf import _flatbencode as bencode
except ImportError:  # pragma: no cover
    import flatbencode as bencode  # type: ignore[no-redef]

HEX = "0123456789abcdef0123456789abcdef01234567"
HASH_BYTES = bytes.fromhex(HEX)
BASE32 = base64.b32encode(HASH_BYTES).decode()  # 32 characters
MAX = 10 * 1024 * 1024
PIECE = 16384
PROPERTY = settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --------------------------------------------------------------------------------------------
# helpers


def info_dict(files: list[tuple[list[bytes], int]] | None = None, *, name: Any = b"content",
              length: int = 10, extra: dict[bytes, Any] | None = None) -> dict[bytes, Any]:
    """A v1 info dictionary with correct piece count; multi-file when ``files`` is given."""
    info: dict[bytes, Any] = {b"name": name, b"piece length": PIECE}
    if files is None:
        info[b"length"] = length
        total = length
    else:
        info[b"files"] = [{b"length": size, b"path": path} for path, size in files]
        total = sum(size for _, size in files)
    info[b"pieces"] = b"\x11" * 20 * max(0, math.ceil(total / PIECE))
    info.update(extra or {})
    return info


def encode(info: dict[bytes, Any], **root: Any) -> bytes:
    """A whole .torrent around ``info``, bencoded by flatbencode (keys sorted)."""
    return bencode.encode({b"info": info, **{k.encode(): v for k, v in root.items()}})


def torrent_from_files(tmp_path: Path, layout: dict[str, int], **kwargs: Any) -> torf.Torrent:
    """A real torrent made by torf from files written under ``tmp_path/content``."""
    root = tmp_path / "content"
    for relative, size in layout.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(os.urandom(size))
    torrent = torf.Torrent(path=root if len(layout) > 1 else root / next(iter(layout)),
                           **kwargs)
    torrent.generate()
    return torrent


def aria2_show_files(path: Path) -> tuple[str, list[tuple[int, str, int]]]:
    """aria2c's own reading of a .torrent: info-hash and (index, path, length) per file."""
    aria2c = shutil.which("aria2c")
    if aria2c is None:
        pytest.fail("aria2c is not on PATH: install it (sudo apt-get install aria2)",
                    pytrace=False)
    result = subprocess.run([aria2c, "--show-files=true", str(path)], capture_output=True,
                            text=True, timeout=30, check=True)
    info_hash = re.search(r"^Info Hash: ([0-9a-f]{40})$", result.stdout, re.M)
    assert info_hash is not None, result.stdout
    entries = re.findall(r"^ *(\d+)\|\./(.*)\n *\|.*\(([\d,]+)\)$", result.stdout, re.M)
    return info_hash.group(1), [(int(i), p, int(n.replace(",", ""))) for i, p, n in entries]


def stays_inside(base: str, relative: str) -> bool:
    """Whether ``base/relative`` names something strictly inside ``base``."""
    if posixpath.isabs(relative) or "\x00" in relative:
        return False
    parts = relative.split("/")
    if any(part in ("", ".", "..") or "\\" in part for part in parts):
        return False
    joined = posixpath.normpath(posixpath.join(base, relative))
    return joined.startswith(base + "/")


def magnet(*params: str) -> str:
    return "magnet:?" + "&".join(params)


# --------------------------------------------------------------------------------------------
# the public surface


def test_all_lists_the_public_names():
    defined = {name for name, obj in vars(validate).items()
               if not name.startswith("_") and getattr(obj, "__module__", "") == validate.__name__}
    constants = {name for name in vars(validate) if name.isupper() and not name.startswith("_")}
    assert sorted(validate.__all__) == sorted(defined | constants)


def test_results_are_frozen():
    link = parse_magnet(magnet(f"xt=urn:btih:{HEX}"))
    with pytest.raises(AttributeError):
        link.info_hash = "x"  # type: ignore[misc]
    meta = parse_torrent(encode(info_dict()), max_bytes=MAX)
    with pytest.raises(AttributeError):
        meta.name = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# parse_magnet: accepted


def test_magnet_hex():
    link = parse_magnet(magnet(f"xt=urn:btih:{HEX}"))
    assert link == MagnetLink(info_hash=HEX, name=None, trackers=(),
                              uri=f"magnet:?xt=urn:btih:{HEX}")


def test_magnet_uppercase_hex_and_keys_and_scheme():
    link = parse_magnet(f"  MAGNET:?XT=URN:BTIH:{HEX.upper()}\n")
    assert link.info_hash == HEX
    assert link.uri == f"magnet:?xt=urn:btih:{HEX}"


@pytest.mark.parametrize("b32", [BASE32, BASE32.lower()])
def test_magnet_base32_becomes_hex(b32):
    assert parse_magnet(magnet(f"xt=urn:btih:{b32}")).info_hash == HEX


def test_magnet_name_and_trackers():
    link = parse_magnet(magnet(
        f"xt=urn:btih:{HEX}", "dn=My+Movie%20(2020)",
        "tr=udp%3A%2F%2Ftracker.example%3A1337%2Fannounce", "tr=http://a.example/announce",
        "tr=udp%3A%2F%2Ftracker.example%3A1337%2Fannounce", "tr.1=https://b.example/ann?k=1",
    ))
    assert link.name == "My Movie (2020)"
    assert link.trackers == ("udp://tracker.example:1337/announce",
                             "http://a.example/announce", "https://b.example/ann?k=1")
    assert link.uri == (
        f"magnet:?xt=urn:btih:{HEX}&dn=My%20Movie%20%282020%29"
        "&tr=udp%3A%2F%2Ftracker.example%3A1337%2Fannounce"
        "&tr=http%3A%2F%2Fa.example%2Fannounce&tr=https%3A%2F%2Fb.example%2Fann%3Fk%3D1"
    )


def test_magnet_extra_parameters_are_ignored_and_never_reach_the_uri():
    link = parse_magnet(magnet(
        f"xt=urn:btih:{HEX}", "x.pe=10.0.0.1:6881", "so=0,2,4-6", "ws=http://evil/seed",
        "xl=1234", "kt=some+words", "as=http://evil/x", "xs=http://evil/y", "mt=x",
        "x.foo=bar", "dir=/etc", "out=../../x", "on-download-complete=/bin/sh",
    ))
    assert link.uri == f"magnet:?xt=urn:btih:{HEX}"
    assert link.trackers == ()


def test_magnet_hybrid_v1_v2_keeps_the_v1_hash_only():
    link = parse_magnet(magnet(f"xt=urn:btih:{HEX}", "xt=urn:btmh:1220" + "ab" * 32))
    assert link.info_hash == HEX
    assert "btmh" not in link.uri
    assert link.hybrid  # whether aria2 can download it is manager.compat's call


def test_magnet_with_btih_only_is_not_flagged_hybrid():
    assert not parse_magnet(magnet(f"xt=urn:btih:{HEX}", "xt.1=urn:sha1:ABCDEF")).hybrid


def test_magnet_several_xt_of_which_one_is_btih():
    link = parse_magnet(magnet("xt=urn:sha1:ABCDEF", "xt.1=urn:ed2k:0123",
                               f"xt.2=urn:btih:{BASE32}", f"xt.3=urn:btih:{HEX}"))
    assert link.info_hash == HEX


def test_magnet_html_escaped_ampersands():
    link = parse_magnet(f"magnet:?xt=urn:btih:{HEX}&amp;dn=x&amp;tr=udp://t.example:1")
    assert (link.name, link.trackers) == ("x", ("udp://t.example:1",))


def test_magnet_websocket_trackers_are_dropped():
    link = parse_magnet(magnet(f"xt=urn:btih:{HEX}", "tr=wss://tracker.openwebtorrent.com",
                               "tr=ws://t.example/x", "tr=dht://" + HEX + ".dht/announce",
                               "tr=http://t.example/a", "tr="))
    assert link.trackers == ("http://t.example/a",)


def test_magnet_trackers_are_capped():
    link = parse_magnet(magnet(f"xt=urn:btih:{HEX}",
                               *(f"tr=http://t{i}.example/a" for i in range(80))))
    assert len(link.trackers) == validate._MAX_TRACKERS
    assert link.trackers[0] == "http://t0.example/a"


def test_magnet_long_name_is_cut_at_a_character_boundary():
    link = parse_magnet(magnet(f"xt=urn:btih:{HEX}", "dn=" + urllib.parse.quote("é" * 200)))
    assert link.name is not None
    assert len(link.name.encode()) <= 255
    assert link.name == "é" * 127


def test_magnet_blank_name_is_none():
    assert parse_magnet(magnet(f"xt=urn:btih:{HEX}", "dn=+++")).name is None


def test_magnet_uri_parses_to_the_same_link():
    link = parse_magnet(magnet(f"xt=urn:btih:{HEX}", "dn=a+%2B+b+%26+c%3D%25",
                               "tr=http://t.example/a?x=1&y=2"))
    assert parse_magnet(link.uri) == link


# --------------------------------------------------------------------------------------------
# parse_magnet: refused


@pytest.mark.parametrize(("text", "message"), [
    ("", "not a magnet link: it must start with magnet:?"),
    (f"http://example.com/?xt=urn:btih:{HEX}", "not a magnet link: it must start with magnet:?"),
    (f"magnet:xt=urn:btih:{HEX}", "not a magnet link: it must start with magnet:?"),
    (f"javascript:?xt=urn:btih:{HEX}", "not a magnet link: it must start with magnet:?"),
    ("magnet:?dn=x&tr=http://t.example/a", "not a magnet link: missing xt=urn:btih"),
    ("magnet:?xt=urn:sha1:ABCDEF", "not a magnet link: missing xt=urn:btih"),
    ("magnet:?xt=urn:btih:1234",
     "not a magnet link: info-hash must be 40 hex or 32 base32 characters"),
    (f"magnet:?xt=urn:btih:{HEX}0",
     "not a magnet link: info-hash must be 40 hex or 32 base32 characters"),
    (f"magnet:?xt=urn:btih:{HEX[:-1]}g",
     "not a magnet link: info-hash must be 40 hex or 32 base32 characters"),
    (f"magnet:?xt=urn:btih:{BASE32[:-1]}1",
     "not a magnet link: info-hash must be 40 hex or 32 base32 characters"),
    (f"magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{'f' * 40}",
     "not a magnet link: it names more than one info-hash"),
    ("magnet:?xt=urn:btmh:1220" + "ab" * 32,
     "aria2 cannot download BitTorrent v2-only magnet links: this one has xt=urn:btmh but "
     "no xt=urn:btih"),
    (f"magnet:?xt=urn:btih:{HEX}&dn=a\x00b", "not a magnet link: it contains control characters"),
    (f"magnet:?xt=urn:btih:{HEX}\n&dn=x", "not a magnet link: it contains control characters"),
    (f"magnet:?xt=urn:btih:{HEX}&dn=a\x85b", "not a magnet link: it contains control characters"),
    (f"magnet:?xt=urn:btih:{HEX}&dn=\ud800", "not a magnet link: it is not valid text"),
    (f"magnet:?xt=urn:btih:{HEX}&dn=a%00b",
     "magnet link refused: its name (dn) contains control characters"),
    (f"magnet:?xt=urn:btih:{HEX}&dn=../../etc/passwd",
     "magnet link refused: its name (dn) must not be a path: '../../etc/passwd'"),
    (f"magnet:?xt=urn:btih:{HEX}&dn=%2Fetc%2Fpasswd",
     "magnet link refused: its name (dn) must not be a path: '/etc/passwd'"),
    (f"magnet:?xt=urn:btih:{HEX}&dn=a%5Cb",
     "magnet link refused: its name (dn) must not be a path: 'a\\\\b'"),
    (f"magnet:?xt=urn:btih:{HEX}&dn=..",
     "magnet link refused: its name (dn) must not be a path: '..'"),
    (f"magnet:?xt=urn:btih:{HEX}&tr=javascript:alert(1)",
     "magnet link refused: tracker scheme 'javascript' is not allowed (only http, https and udp)"),
    (f"magnet:?xt=urn:btih:{HEX}&tr=file:///etc/passwd",
     "magnet link refused: tracker scheme 'file' is not allowed (only http, https and udp)"),
    (f"magnet:?xt=urn:btih:{HEX}&tr.1=ftp://t.example/a",
     "magnet link refused: tracker scheme 'ftp' is not allowed (only http, https and udp)"),
    (f"magnet:?xt=urn:btih:{HEX}&tr=t.example:80/announce",
     "magnet link refused: tracker scheme 't.example' is not allowed (only http, https and udp)"),
    (f"magnet:?xt=urn:btih:{HEX}&tr=/announce",
     "magnet link refused: tracker scheme (none) is not allowed (only http, https and udp)"),
    (f"magnet:?xt=urn:btih:{HEX}&tr=http:///announce",
     "magnet link refused: malformed tracker URL 'http:///announce'"),
    (f"magnet:?xt=urn:btih:{HEX}&tr=udp://t.example:99999",
     "magnet link refused: malformed tracker URL 'udp://t.example:99999'"),
    (f"magnet:?xt=urn:btih:{HEX}&tr=http://[::1",
     "magnet link refused: malformed tracker URL 'http://[::1'"),
    (f"magnet:?xt=urn:btih:{HEX}&tr=http://a%20b/",
     "magnet link refused: a tracker URL contains blanks or control characters"),
    (f"magnet:?xt=urn:btih:{HEX}&tr=http://a%0Ab/",
     "magnet link refused: a tracker URL contains blanks or control characters"),
])
def test_magnet_refused(text, message):
    with pytest.raises(InvalidMagnet) as caught:
        parse_magnet(text)
    assert str(caught.value) == message


def test_magnet_too_long():
    text = magnet(f"xt=urn:btih:{HEX}", "dn=" + "a" * MAX_MAGNET_CHARS)
    with pytest.raises(InvalidMagnet, match=r"^not a magnet link: too long \(\d+ characters, "
                                            r"limit 8192\)$"):
        parse_magnet(text)


def test_magnet_with_too_many_parameters():
    with pytest.raises(InvalidMagnet, match="too many parameters"):
        parse_magnet(magnet(f"xt=urn:btih:{HEX}", *["a=b"] * 300))


def test_magnet_not_text():
    with pytest.raises(InvalidMagnet, match="expected text"):
        parse_magnet(b"magnet:?xt=urn:btih:" + HEX.encode())  # type: ignore[arg-type]


def test_invalid_magnet_is_a_value_error():
    with pytest.raises(ValueError, match="not a magnet link"):
        parse_magnet("nope")


# --------------------------------------------------------------------------------------------
# find_magnets


def test_find_magnets_in_a_message():
    a = f"magnet:?xt=urn:btih:{HEX}&dn=A+(1)"
    b = f"magnet:?xt=urn:btih:{BASE32}"
    text = f"look at this ({a}). And <{b}>, also \"{a}\" again; MAGNET:?xt=z."
    assert find_magnets(text) == [a, b, "MAGNET:?xt=z"]


def test_find_magnets_stops_at_blanks_and_trailing_punctuation():
    link = f"magnet:?xt=urn:btih:{HEX}"
    assert find_magnets(f"{link},\nnext line") == [link]
    assert find_magnets(f"[{link}]") == [link]
    assert find_magnets(f"{link}!?") == [link]


def test_find_magnets_limit_and_nothing():
    text = " ".join(f"magnet:?xt=urn:btih:{i:040x}" for i in range(10))
    assert len(find_magnets(text)) == 5
    assert len(find_magnets(text, limit=2)) == 2
    assert find_magnets("no links here, magnet: ? nope") == []
    assert find_magnets("") == []


# --------------------------------------------------------------------------------------------
# parse_torrent: accepted, and aria2 agrees


def test_torrent_single_file(tmp_path):
    torrent = torrent_from_files(tmp_path, {"movie.mkv": 40000},
                                 trackers=["http://127.0.0.1:1/announce"])
    data = torrent.dump()
    meta = parse_torrent(data, max_bytes=MAX)
    assert meta.info_hash == torrent.infohash
    assert meta.name == "movie.mkv"
    assert meta.total_bytes == 40000
    assert meta.files == (FileEntry(index=1, path="movie.mkv", length=40000),)
    assert meta.trackers == ("http://127.0.0.1:1/announce",)
    assert meta.private is False
    assert meta.data == data
    assert "data=" not in repr(meta)


def test_torrent_multi_file_private_with_tiers(tmp_path):
    torrent = torrent_from_files(
        tmp_path, {"b.bin": 100, "a/x.bin": 20000, "a/y.bin": 1},
        trackers=[["udp://t1.example:80/a", "http://t2.example/a"],
                  ["http://t2.example/a", "wss://w.example/", "https://t3.example/a"]],
        private=True)
    meta = parse_torrent(torrent.dump(), max_bytes=MAX)
    assert meta.name == "content"
    assert [(f.index, f.path, f.length) for f in meta.files] == [
        (1, "content/a/x.bin", 20000), (2, "content/a/y.bin", 1), (3, "content/b.bin", 100)]
    assert meta.total_bytes == 20101
    assert meta.private is True
    assert meta.trackers == ("udp://t1.example:80/a", "http://t2.example/a",
                             "https://t3.example/a")


def test_torrent_file_order_and_hash_match_aria2(tmp_path):
    """aria2's file indexes are metainfo positions: check against aria2c on a shuffled list."""
    torrent = torrent_from_files(tmp_path, {"zeta.bin": 40000, "sub/b.txt": 1000,
                                            "a/c.dat": 20000, "Alpha": 5, "m/n/o.txt": 17})
    files = torrent.metainfo["info"]["files"]
    files[:] = [files[i] for i in (1, 4, 2, 0, 3)]  # not alphabetical, not torf's order
    path = tmp_path / "shuffled.torrent"
    path.write_bytes(torrent.dump())
    meta = parse_torrent(path.read_bytes(), max_bytes=MAX)
    ours = [(f.index, f.path, f.length) for f in meta.files]
    assert [p for _, p, _ in ours] != sorted(p for _, p, _ in ours)
    aria2_hash, aria2_files = aria2_show_files(path)
    assert ours == aria2_files
    assert meta.info_hash == aria2_hash


def test_torrent_non_utf8_names_are_written_as_aria2_writes_them(tmp_path):
    data = encode(info_dict([([b"\xe4\xf6 a b", b"c~d.txt"], 10), ([b"ok"], 5)],
                            name=b"x\xff\xfe"))
    path = tmp_path / "latin1.torrent"
    path.write_bytes(data)
    meta = parse_torrent(data, max_bytes=MAX)
    assert [f.path for f in meta.files] == ["x%FF%FE/%E4%F6%20a%20b/c~d.txt", "x%FF%FE/ok"]
    aria2_hash, aria2_files = aria2_show_files(path)
    assert [(f.index, f.path, f.length) for f in meta.files] == aria2_files
    assert meta.info_hash == aria2_hash


def test_torrent_utf8_name_keys_win_as_in_aria2(tmp_path):
    info = info_dict([([b"old"], 10)], name=b"legacy",
                     extra={b"name.utf-8": "Récital".encode()})
    info[b"files"][0][b"path.utf-8"] = ["Fichier é".encode()]
    path = tmp_path / "utf8.torrent"
    path.write_bytes(encode(info))
    meta = parse_torrent(path.read_bytes(), max_bytes=MAX)
    assert meta.name == "Récital"
    assert [(f.index, f.path, f.length) for f in meta.files] == [(1, "Récital/Fichier é", 10)]
    assert aria2_show_files(path)[1] == [(1, "Récital/Fichier é", 10)]


def test_torrent_hybrid_v1_v2_is_accepted_and_pad_files_may_repeat():
    files = [([b"a.bin"], 100), ([b".pad", b"16284"], 16284), ([b"b.bin"], 100),
             ([b".pad", b"16284"], 16284), ([b"c.bin"], 5)]
    tree = {b"a.bin": {b"": {b"length": 100, b"pieces root": b"\x22" * 32}}}
    info = info_dict(files, extra={b"meta version": 2, b"file tree": tree})
    meta = parse_torrent(encode(info, **{"piece layers": {}}), max_bytes=MAX)
    assert [f.path for f in meta.files] == [
        "content/a.bin", "content/.pad/16284", "content/b.bin", "content/.pad/16284",
        "content/c.bin"]
    assert meta.info_hash == hashlib.sha1(bencode.encode(info)).hexdigest()
    assert meta.hybrid


@pytest.mark.parametrize("sizes", [300_000, [100_000, 16_384, 5, 200_000]])
def test_torrent_real_hybrid_is_flagged_with_its_v1_hash(tmp_path, sizes):
    content = make_content(tmp_path, "hy", sizes, seed=5)
    hybrid = build_hybrid(content, "http://127.0.0.1:1/announce", piece_length=32 * 1024)
    meta = parse_torrent(hybrid.torrent_bytes, max_bytes=MAX)
    assert meta.hybrid and meta.info_hash == hybrid.v1_hash
    data_files = [f for f in meta.files if "/.pad/" not in f.path]
    assert sum(f.length for f in data_files) == sum([sizes] if isinstance(sizes, int) else sizes)


def test_torrent_v1_is_not_flagged_hybrid():
    assert not parse_torrent(encode(info_dict()), max_bytes=MAX).hybrid


def test_torrent_bytearray_is_accepted():
    data = encode(info_dict())
    assert parse_torrent(bytearray(data), max_bytes=MAX).data == data


def test_torrent_max_files_is_a_parameter():
    files = [([f"f{i:05}".encode()], 1) for i in range(20_000)]
    data = encode(info_dict(files))
    assert len(parse_torrent(data, max_bytes=MAX, max_files=20_000).files) == 20_000


# --------------------------------------------------------------------------------------------
# parse_torrent: refused


def unsafe(reason: str, path: str) -> str:
    shown = path if len(path) <= 80 else path[:80] + "…"
    return f"torrent file has an unsafe file name: {reason}: {shown!r}"


@pytest.mark.parametrize(("info", "message"), [
    (info_dict([([b"..", b"etc", b"passwd"], 10)]),
     unsafe("'..' is not a file or folder name", "content/..")),
    (info_dict([([b"a", b"."], 10)]), unsafe("'.' is not a file or folder name", "content/a/.")),
    (info_dict(name=b".."), unsafe("'..' is not a file or folder name", "..")),
    (info_dict(name=b"/etc/passwd"), unsafe("a name contains / or \\", "/etc/passwd")),
    (info_dict([([b"/etc/passwd"], 10)]),
     unsafe("a name contains / or \\", "content//etc/passwd")),
    (info_dict([([b"", b"etc", b"passwd"], 10)]),
     unsafe("an empty file or folder name", "content/")),
    (info_dict(name=b""), unsafe("an empty file or folder name", "")),
    (info_dict([([b"a/b"], 10)]), unsafe("a name contains / or \\", "content/a/b")),
    (info_dict([([b"..\\..\\x"], 10)]), unsafe("a name contains / or \\", "content/..\\..\\x")),
    (info_dict([([b"a\x00b"], 10)]),
     unsafe("a name contains control characters", "content/a\x00b")),
    (info_dict(name=b"a\nb"), unsafe("a name contains control characters", "a\nb")),
    (info_dict(name="a\u0085b".encode()),
     unsafe("a name contains control characters", "a\x85b")),
    (info_dict([([b"\xff\x01"], 10)]),
     unsafe("a name contains control characters", "content/\\xff\x01")),
    (info_dict(name=b"n" * 300), unsafe("a name is longer than 255 bytes", "n" * 300)),
    (info_dict([([b"a" * 250] * 9, 10)]),
     unsafe("a path is longer than 2048 bytes", "/".join(["content"] + ["a" * 250] * 9))),
    (info_dict(name=b"ok", extra={b"name.utf-8": b"../evil"}),
     unsafe("a name contains / or \\", "../evil")),
    (info_dict(name=b"ok", extra={b"name.utf-8": b".."}),
     unsafe("'..' is not a file or folder name", "..")),
    (info_dict([([b"a"], 10), ([b"a"], 10)]),
     unsafe("a path is listed twice, or as both a file and a folder", "content/a")),
    (info_dict([([b"a"], 10), ([b"a", b"b"], 10)]),
     unsafe("a path is listed as both a file and a folder", "content/a")),
    (info_dict([([b"a", b"b"], 10), ([b"a"], 10)]),
     unsafe("a path is listed twice, or as both a file and a folder", "content/a")),
])
def test_torrent_unsafe_names(info, message):
    with pytest.raises(InvalidTorrent) as caught:
        parse_torrent(encode(info), max_bytes=MAX)
    assert str(caught.value) == message


def test_torrent_hostile_path_utf8_is_checked_even_when_path_is_fine():
    info = info_dict([([b"fine"], 10)])
    info[b"files"][0][b"path.utf-8"] = [b"..", b"..", b"etc"]
    with pytest.raises(InvalidTorrent, match=r"'\.\.' is not a file or folder name"):
        parse_torrent(encode(info), max_bytes=MAX)


def damaged(reason: str) -> str:
    return "^" + re.escape(f"torrent file is damaged: {reason}")


def bad_type(key: bytes, value: Any, files: bool = False) -> bytes:
    info = info_dict([([b"a"], 10)]) if files else info_dict()
    info[key] = value
    return encode(info)


def with_file(**entry: Any) -> bytes:
    info = info_dict([([b"a"], 10)])
    info[b"files"][0] = {k.replace("_", " ").encode(): v for k, v in entry.items()}
    return encode(info)


PIECES = b"\x11" * 20
NOT_CANONICAL = damaged("its info dictionary is not canonically encoded")


@pytest.mark.parametrize(("data", "pattern"), [
    (b"hello", damaged("it is not a bencoded torrent file")),
    (b"le", damaged("it is not a bencoded torrent file")),
    (b"d4:info", damaged("it is truncated")),
    (b"d4:infod4:name1:xe", damaged("it is truncated")),
    (b"d4:infod4:name99999999999:x", damaged("it is truncated")),
    (encode(info_dict()) + b"junk", damaged("it has data after its end")),
    (b"d3:foo3:bare", damaged("it has no info dictionary")),
    (b"di1ei2ee", damaged("it is not a bencoded torrent file")),
    (b"d4:infoi" + b"9" * 30 + b"ee", damaged("it has a malformed or impossibly large number")),
    (b"d4:infoi03ee", damaged("it has a malformed or impossibly large number")),
    (b"d4:infoi-0ee", damaged("it has a malformed or impossibly large number")),
    (b"d4:info03:abce", damaged("it is not a bencoded torrent file")),
    (b"d4:infod" + b"1:zl" * 100 + b"e" * 100 + b"ee", damaged("it is nested too deeply")),
    # Repeated keys: aria2 1.36 crashes (SIGSEGV) on these inside the info dictionary.
    (b"d4:infod6:lengthi10e6:lengthi10e4:name1:x12:piece lengthi16384e6:pieces20:"
     + PIECES + b"ee", damaged("a dictionary has the key 'length' twice")),
    (b"d4:infod5:filesld6:lengthi10e6:lengthi10e4:pathl1:aeee4:name1:x12:piece lengthi16384e"
     b"6:pieces20:" + PIECES + b"ee", damaged("a dictionary has the key 'length' twice")),
    (encode(info_dict()) [:-1] + b"4:info" + bencode.encode(info_dict()) + b"e",
     damaged("a dictionary has the key 'info' twice")),
    # Not canonical: aria2 would hash the re-encoded dictionary, which no peer knows.
    (b"d4:infod4:name1:x6:lengthi10e12:piece lengthi16384e6:pieces20:" + PIECES + b"ee",
     NOT_CANONICAL),
    (encode(info_dict(extra={b"private": 2})), NOT_CANONICAL),
    (encode(info_dict(extra={b"private": b"1"})), NOT_CANONICAL),
    # Wrong types and missing keys (torf's validation and ours).
    (bencode.encode({b"info": [1, 2]}), damaged("")),
    (bencode.encode({b"info": {b"name": b"x"}}), damaged("")),
    (bad_type(b"name", 5), damaged("['info']['name'] must be str or bytes")),
    (bad_type(b"name.utf-8", 5), damaged("its name.utf-8 is not a string")),
    (bad_type(b"length", b"10"), damaged("['info']['length'] must be int or float")),
    (bad_type(b"piece length", 1000), damaged("['info']['piece length'] is invalid")),
    (bad_type(b"piece length", 0), damaged("['info']['piece length'] is invalid")),
    (bad_type(b"pieces", b"\x11" * 19), damaged("length of ['info']['pieces'] is not div")),
    (bad_type(b"pieces", b"\x11" * 40), damaged("Expected 1 pieces but there are 2")),
    (bad_type(b"files", b"nope"), damaged("['info'] includes both 'length' and 'files'")),
    (encode({k: v for k, v in info_dict().items() if k != b"pieces"}),
     damaged("Missing 'pieces' in ['info']")),
    (bad_type(b"files", [5], files=True), damaged("")),
    (with_file(length=10, path=b"a"), damaged("")),
    (with_file(length=10, path=[5]), damaged("")),
    (with_file(length=10, path=[]), damaged("a file has no path list")),
    (with_file(length=10), damaged("")),
    (with_file(path=[b"a"]), damaged("")),
    (encode(info_dict([([b"a"], 30000), ([b"b"], -10000)])),
     damaged("a file length is missing or negative")),
    (encode(info_dict(), **{"creation date": b"yesterday"}),
     damaged("its metainfo is malformed")),
    (encode(info_dict(), **{"creation date": 10**18}), damaged("its metainfo is malformed")),
    (encode(info_dict(), announce=b"not a url"), damaged("")),
])
def test_torrent_damaged(data, pattern):
    with pytest.raises(InvalidTorrent, match=pattern):
        parse_torrent(data, max_bytes=MAX)


def test_torrent_empty():
    with pytest.raises(InvalidTorrent, match=r"^torrent file is empty$"):
        parse_torrent(b"", max_bytes=MAX)


def test_torrent_too_large():
    data = encode(info_dict())
    with pytest.raises(InvalidTorrent) as caught:
        parse_torrent(data + b"x" * 2000, max_bytes=2048)
    assert str(caught.value) == "torrent file is too large: 2,090 bytes (limit 2,048 bytes)"
    with pytest.raises(InvalidTorrent) as caught:
        parse_torrent(data + b"x" * 5000, max_bytes=2048)
    assert str(caught.value) == "torrent file is too large: 5.0 KiB (limit 2.0 KiB)"


def test_torrent_larger_than_torf_reads_is_too_large():
    data = b"d4:info" + b"x" * torf.Torrent.MAX_TORRENT_FILE_SIZE
    with pytest.raises(InvalidTorrent, match=r"too large: 10,000,007 bytes \(limit 10,000,000 "):
        parse_torrent(data, max_bytes=100 * 1024 * 1024)


def test_torrent_too_many_files():
    files = [([f"f{i:05}".encode()], 1) for i in range(20_000)]
    with pytest.raises(InvalidTorrent) as caught:
        parse_torrent(encode(info_dict(files)), max_bytes=MAX)
    assert str(caught.value) == f"torrent has too many files: 20000 (limit {DEFAULT_MAX_FILES})"


@pytest.mark.parametrize("info", [
    info_dict(length=0),
    info_dict([([b"a"], 0), ([b"b"], 0)]),
    info_dict([([b"a"], 10)], extra={b"files": []}),
])
def test_torrent_without_data(info):
    with pytest.raises(InvalidTorrent, match=r"^torrent has no data: its total size is 0 bytes$"):
        parse_torrent(encode(info), max_bytes=MAX)


def test_torrent_v2_only():
    info = {b"name": b"x", b"piece length": PIECE, b"meta version": 2,
            b"file tree": {b"x": {b"": {b"length": 10, b"pieces root": b"\x22" * 32}}}}
    with pytest.raises(InvalidTorrent) as caught:
        parse_torrent(encode(info, **{"piece layers": {}}), max_bytes=MAX)
    assert str(caught.value) == (
        "aria2 cannot download BitTorrent v2-only torrents: this one has no v1 piece hashes")


@pytest.mark.parametrize(("url", "scheme"), [
    (b"ftp://t.example/a", "ftp"), (b"file://host/etc/passwd", "file"),
    (b"gopher://t.example/", "gopher")])
def test_torrent_tracker_with_a_bad_scheme(url, scheme):
    with pytest.raises(InvalidTorrent) as caught:
        parse_torrent(encode(info_dict(), announce=url), max_bytes=MAX)
    assert str(caught.value) == (f"torrent file refused: tracker scheme {scheme!r} is not "
                                 "allowed (only http, https and udp)")


def test_torrent_announce_list_wins_over_announce():
    data = encode(info_dict(), announce=b"http://ignored.example/a",
                  **{"announce-list": [[b"udp://a.example:1"], [b"wss://b.example"]]})
    assert parse_torrent(data, max_bytes=MAX).trackers == ("udp://a.example:1",)


def test_torrent_bad_arguments():
    with pytest.raises(TypeError):
        parse_torrent("d4:info", max_bytes=MAX)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be positive"):
        parse_torrent(b"d", max_bytes=0)


# --------------------------------------------------------------------------------------------
# sanitize_options


def test_allowed_options():
    expected = {"select-file", "seed-ratio", "seed-time", "max-download-limit",
                "max-upload-limit", "pause"}
    assert expected == ALLOWED_OPTIONS


def test_sanitize_keeps_good_options():
    options = {"select-file": "1,3-5,7", "seed-ratio": "1.5", "seed-time": "90",
               "max-download-limit": "2M", "max-upload-limit": "500k", "pause": "true"}
    assert sanitize_options(options) == options
    assert sanitize_options({}) == {}
    assert sanitize_options({"seed-ratio": "0", "max-upload-limit": "0",
                             "pause": "false"}) == {"seed-ratio": "0", "max-upload-limit": "0",
                                                    "pause": "false"}


@pytest.mark.parametrize("key", [
    "dir", "out", "on-download-complete", "on-download-error", "on-bt-download-complete",
    "log", "save-session", "allow-overwrite", "index-out", "input-file", "rpc-secret",
    "bt-tracker", "check-integrity", "Pause", "select_file", "",
])
def test_sanitize_refuses_other_options(key):
    with pytest.raises(InvalidSource, match=r"^option .* cannot be set \(allowed: "):
        sanitize_options({key: "x"})


@pytest.mark.parametrize(("key", "value"), [
    ("select-file", ""), ("select-file", "0"), ("select-file", "01"), ("select-file", "1,"),
    ("select-file", "1-"), ("select-file", "-3"), ("select-file", "1-3-4"),
    ("select-file", "5-3"), ("select-file", "1, 2"), ("select-file", "a"),
    ("select-file", "1234567"), ("select-file", "1," * 3000 + "1"),
    ("seed-ratio", "-1"), ("seed-ratio", "1e3"), ("seed-ratio", ".5"), ("seed-ratio", "1."),
    ("seed-ratio", "nan"), ("seed-time", "1 "), ("seed-time", ""),
    ("max-download-limit", "1G"), ("max-download-limit", "1.5K"),
    ("max-download-limit", "-1"), ("max-upload-limit", "01K"), ("max-upload-limit", "K"),
    ("pause", "TRUE"), ("pause", "1"), ("pause", "yes"),
])
def test_sanitize_refuses_bad_values(key, value):
    with pytest.raises(InvalidSource, match=f"^bad value for {key}: "):
        sanitize_options({key: value})


def test_sanitize_refuses_non_text():
    with pytest.raises(InvalidSource, match="must be text"):
        sanitize_options({"seed-ratio": 1.5})  # type: ignore[dict-item]
    with pytest.raises(InvalidSource, match="cannot be set"):
        sanitize_options({5: "1"})  # type: ignore[dict-item]


# --------------------------------------------------------------------------------------------
# property tests: a valid, safe result, or our error: never another exception


def check_magnet_result(link: MagnetLink) -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", link.info_hash)
    if link.name is not None:
        assert link.name and len(link.name.encode()) <= 255
        assert "/" not in link.name and "\\" not in link.name
        assert not any(unicodedata.category(ch) == "Cc" for ch in link.name)
    for url in link.trackers:
        assert urllib.parse.urlsplit(url).scheme.lower() in ("http", "https", "udp")
    assert len(set(link.trackers)) == len(link.trackers) <= 50
    assert link.uri.startswith(f"magnet:?xt=urn:btih:{link.info_hash}")
    # The rebuilt link is stable; it drops xt=urn:btmh, so it no longer says "hybrid".
    assert parse_magnet(link.uri) == dataclasses.replace(link, hybrid=False)


@PROPERTY
@given(st.text(max_size=300))
def test_property_magnet_from_any_text(text):
    try:
        link = parse_magnet(text)
    except InvalidMagnet:
        return
    check_magnet_result(link)


printable = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=40)
param_keys = st.sampled_from(["xt", "xt.1", "XT", "dn", "tr", "tr.2", "x.pe", "so", "ws", "kt"])
param_values = st.one_of(
    st.text(max_size=40),
    printable,
    printable.map(lambda s: urllib.parse.quote(s, safe="")),
    printable.map(lambda s: "http://t.example/" + urllib.parse.quote(s, safe="")),
    st.sampled_from([f"urn:btih:{HEX}", f"urn:btih:{BASE32}", f"URN:BTIH:{HEX.upper()}",
                     "urn:btmh:1220" + "ab" * 32, "urn:btih:", "udp://t.example:1/a",
                     "http%3A%2F%2Ft.example%2Fa", "wss://w.example", "javascript:x",
                     "http://t.example:0/", "..", "%2F", "a%00", "%FF%FE"]),
)


@PROPERTY
@given(st.sampled_from(["", f"xt=urn:btih:{HEX}&", f"xt=urn:btih:{BASE32}&",
                        f"XT=urn:btih:{HEX.upper()}&dn=x&"]),
       st.lists(st.tuples(param_keys, param_values), max_size=8))
def test_property_magnet_from_magnet_shaped_text(first, params):
    text = "magnet:?" + first + "&".join(f"{key}={value}" for key, value in params)
    try:
        link = parse_magnet(text)
    except InvalidMagnet:
        return
    check_magnet_result(link)


def check_torrent_result(meta: TorrentMeta, data: bytes) -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", meta.info_hash)
    assert meta.data == data
    assert meta.total_bytes == sum(f.length for f in meta.files) > 0
    assert [f.index for f in meta.files] == list(range(1, len(meta.files) + 1))
    base = "/srv/ariabot/chat"
    assert stays_inside(base, meta.name)
    for entry in meta.files:
        assert stays_inside(base, entry.path), entry.path
        assert entry.path == meta.name or entry.path.startswith(meta.name + "/")
        assert all(len(part.encode()) <= 255 for part in entry.path.split("/"))
        assert not any(unicodedata.category(ch) == "Cc" for ch in entry.path)


@PROPERTY
@given(st.binary(max_size=500))
def test_property_torrent_from_any_bytes(data):
    try:
        meta = parse_torrent(data, max_bytes=MAX)
    except InvalidTorrent:
        return
    check_torrent_result(meta, data)


bkeys = st.sampled_from([b"info", b"name", b"name.utf-8", b"length", b"files", b"path",
                         b"path.utf-8", b"pieces", b"piece length", b"private", b"announce",
                         b"announce-list", b"creation date", b"meta version", b"file tree",
                         b"md5sum", b"url-list", b"\xff"])
bleaf = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                  st.sampled_from([0, 1, 2, 10, PIECE, -1]), st.binary(max_size=45),
                  st.sampled_from([b"http://a.example/b", b"udp://x:1", PIECES, b"..", b"a/b"]))
btree = st.recursive(bleaf, lambda c: st.one_of(st.lists(c, max_size=4),
                                                 st.dictionaries(bkeys, c, max_size=6)),
                     max_leaves=25)
binfo = st.fixed_dictionaries(
    {b"name": st.one_of(st.just(b"x"), btree),
     b"piece length": st.one_of(st.just(PIECE), btree),
     b"pieces": st.one_of(st.just(PIECES), btree)},
    optional={b"length": st.one_of(st.just(10), btree), b"files": btree, b"private": btree,
              b"name.utf-8": btree, b"meta version": btree, b"file tree": btree})
broot = st.fixed_dictionaries({b"info": st.one_of(binfo, btree)},
                              optional={b"announce": btree, b"announce-list": btree,
                                        b"creation date": btree})


@PROPERTY
@given(broot)
def test_property_torrent_from_bencoded_structures(root):
    data = bencode.encode(root)
    try:
        meta = parse_torrent(data, max_bytes=MAX)
    except InvalidTorrent:
        return
    check_torrent_result(meta, data)


safe_names = st.text(st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/\\"),
                     min_size=1, max_size=20)
names = st.one_of(
    safe_names,
    st.text(max_size=20),
    st.binary(min_size=1, max_size=20),
    st.sampled_from(["..", ".", "", "/", "/etc/passwd", "a/b", "a\\b", "\x00", "..\\..",
                     "\u0085", "n" * 300, "é" * 130, ".pad"]),
)
# one_of() picks its branches evenly: hostile names ~1 in 8, so that many torrents pass.
mostly_safe_names = st.integers(0, 7).flatmap(lambda i: names if i == 0 else safe_names)


def as_bytes(name: str | bytes) -> bytes:
    return name.encode("utf-8", "surrogatepass") if isinstance(name, str) else name


@PROPERTY
@given(name=mostly_safe_names, name_utf8=st.none() | mostly_safe_names,
       files=st.none() | st.lists(st.tuples(st.lists(mostly_safe_names, min_size=1, max_size=3),
                                            st.integers(min_value=1, max_value=40000)
                                            | st.just(0)),
                                  min_size=1, max_size=5))
def test_property_torrent_with_any_names(name, name_utf8, files):
    info = info_dict(None if files is None else
                     [([as_bytes(part) for part in path], size) for path, size in files],
                     name=as_bytes(name))
    if name_utf8 is not None:
        info[b"name.utf-8"] = as_bytes(name_utf8)
    data = encode(info)
    try:
        meta = parse_torrent(data, max_bytes=MAX)
    except InvalidTorrent:
        return
    check_torrent_result(meta, data)
    assert len(meta.files) == (1 if files is None else len(files))
    assert meta.info_hash == hashlib.sha1(bencode.encode(info)).hexdigest()
