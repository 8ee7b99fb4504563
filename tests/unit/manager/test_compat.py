"""manager.aria2.compat: which sources the running aria2c can download, by its version."""

from __future__ import annotations

from pathlib import Path

import pytest
import torf

from manager.aria2.compat import HYBRID_MIN_VERSION, check_downloadable, hybrid_limitation
from manager.errors import InvalidMagnet, InvalidTorrent
from manager.sources.magnets import parse_magnet
from manager.sources.metainfo import parse_torrent
from tests.hybrid import build_hybrid
from tests.swarm import make_content

HEX = "0123456789abcdef0123456789abcdef01234567"
BTMH = "xt=urn:btmh:1220" + "ab" * 32
MAX = 10 * 1024 * 1024


@pytest.fixture
def hybrid_file(tmp_path: Path) -> bytes:
    content = make_content(tmp_path, "hy", [40_000, 20_000], seed=3)
    return build_hybrid(content, "http://127.0.0.1:1/announce").torrent_bytes


@pytest.mark.parametrize("version", [(1, 36, 0), (1, 33, 1), (1, 36, 99)])
def test_hybrid_torrent_is_refused_before_1_37_saying_why_and_what_to_do(
    hybrid_file: bytes, version: tuple[int, ...]
) -> None:
    with pytest.raises(InvalidTorrent) as caught:
        check_downloadable(parse_torrent(hybrid_file, max_bytes=MAX), version)
    shown = ".".join(map(str, version))
    assert str(caught.value) == (
        f"torrent file refused: it is a hybrid (v1+v2) torrent, and aria2c {shown} looks for "
        "hybrid torrents under a wrong info-hash and finds no peers (fixed in aria2 1.37). To "
        "download it, ariabot's admin can install aria2 1.37 or newer (Debian 13 ships it) "
        "and set ARIABOT_ARIA2C to it.")


def test_hybrid_magnet_is_refused_before_1_37() -> None:
    link = parse_magnet(f"magnet:?xt=urn:btih:{HEX}&{BTMH}")
    with pytest.raises(InvalidMagnet, match=r"^magnet link refused: it names a hybrid "
                       r"\(v1\+v2\) torrent \(xt=urn:btmh next to xt=urn:btih\), and aria2c "
                       r"1\.36\.0 looks"):
        check_downloadable(link, (1, 36, 0))


@pytest.mark.parametrize("version", [(1, 37, 0), (1, 37, 1), (2, 0, 0), None])
def test_hybrids_pass_from_1_37_or_when_the_version_is_unknown(
    hybrid_file: bytes, version: tuple[int, ...] | None
) -> None:
    check_downloadable(parse_torrent(hybrid_file, max_bytes=MAX), version)
    check_downloadable(parse_magnet(f"magnet:?xt=urn:btih:{HEX}&{BTMH}"), version)


def test_v1_sources_pass_on_any_version(tmp_path: Path) -> None:
    content = make_content(tmp_path, "v1", 50_000)
    torrent = torf.Torrent(path=content, trackers=["http://127.0.0.1:1/announce"])
    torrent.generate()
    check_downloadable(parse_torrent(bytes(torrent.dump()), max_bytes=MAX), (1, 36, 0))
    check_downloadable(parse_magnet(f"magnet:?xt=urn:btih:{HEX}"), (1, 36, 0))


def test_limitation_is_none_from_1_37() -> None:
    assert hybrid_limitation(HYBRID_MIN_VERSION) is None
    assert hybrid_limitation(None) is None
    assert hybrid_limitation((1, 36, 0)) == (
        "aria2c 1.36.0 looks for hybrid torrents under a wrong info-hash and finds no peers "
        "(fixed in aria2 1.37)")
