"""Tests of manager.sources.metainfo (and the bencode walk under it): checking .torrent files.

Torrents are made here: good ones with torf from files in a temp folder, hostile ones as
hand-built metainfo encoded with torf's own bencoder (flatbencode), or as raw bytes where
the hostility is in the encoding itself (repeated or unsorted keys).
"""

from __future__ import annotations

import hashlib
import math
import os
import posixpath
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import torf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manager.errors import InvalidTorrent
from manager.models import FileEntry
from manager.sources.metainfo import DEFAULT_MAX_FILES, TorrentMeta, parse_torrent
from tests.hybrid import build_hybrid
from tests.swarm import make_content

try:  # torf >= 4.3 vendors flatbencode; torf 4.2 depends on the package
    from torf import _flatbencode as bencode
except ImportError:  # pragma: no cover
    import flatbencode as bencode  # type: ignore[no-redef]

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


def test_results_are_frozen():
    meta = parse_torrent(encode(info_dict()), max_bytes=MAX)
    with pytest.raises(AttributeError):
        meta.name = "x"  # type: ignore[misc]


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
# property tests: a valid, safe result, or our error: never another exception


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
