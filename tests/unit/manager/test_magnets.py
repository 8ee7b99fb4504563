"""Tests of manager.sources.magnets: checking magnet links, and finding them in a chat message."""

from __future__ import annotations

import base64
import dataclasses
import re
import unicodedata
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manager.errors import InvalidMagnet
from manager.sources.magnets import MAX_MAGNET_CHARS, MagnetLink, find_magnets, parse_magnet
from manager.sources.trackers import MAX_TRACKERS

HEX = "0123456789abcdef0123456789abcdef01234567"
HASH_BYTES = bytes.fromhex(HEX)
BASE32 = base64.b32encode(HASH_BYTES).decode()  # 32 characters
PROPERTY = settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def magnet(*params: str) -> str:
    return "magnet:?" + "&".join(params)


def test_results_are_frozen():
    link = parse_magnet(magnet(f"xt=urn:btih:{HEX}"))
    with pytest.raises(AttributeError):
        link.info_hash = "x"  # type: ignore[misc]


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
    assert link.hybrid  # whether aria2 can download it is manager.aria2.compat's call


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
    assert len(link.trackers) == MAX_TRACKERS
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
