"""Tests of manager.feeds.items: what each real feed shape gives as an item's source, hash,
size and key; and the documents refused before any parser runs."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime

import pytest

from manager.errors import FeedError
from manager.feeds import FeedItem, ParsedFeed, read_feed
from tests.fakes.feeds import TORZNAB_NS, FakeItem, atom, jackett, nyaa, prowlarr, showrss

HEX = "0123456789abcdef0123456789abcdef01234567"
OTHER = "89abcdef0123456789abcdef0123456789abcdef"
BASE32 = base64.b32encode(bytes.fromhex(HEX)).decode()
MAGNET = f"magnet:?xt=urn:btih:{HEX}&dn=Show&tr=udp%3A%2F%2Ftracker.example%3A1337"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
GIB = 1024**3
JACKETT_URL = ("http://127.0.0.1:9117/dl/tracker/?jackett_apikey=k3y&path=Q2ZESjhB"
               "&file=Show.S01E02.1080p")
ENTITY_REFUSED = "the feed declares XML entities, which this bot does not read"


def rss(items: str, namespaces: str = "", prolog: str = '<?xml version="1.0"?>') -> bytes:
    return (f'{prolog}<rss version="2.0" {namespaces}><channel><title>Tracker</title>'
            f"<link>https://tracker.example/</link>{items}</channel></rss>").encode()


def only(feed: ParsedFeed) -> FeedItem:
    assert len(feed.items) == 1, feed
    return feed.items[0]


# --------------------------------------------------------------------------------------------
# The shapes trackers and indexers serve


def test_nyaa_link_is_the_torrent_and_size_is_in_words():
    feed = read_feed(nyaa([FakeItem("[Group] Show - 02 (1080p)", "https://nyaa.si/view/1",
                                    torrent_url="https://nyaa.si/download/1.torrent",
                                    info_hash=HEX.upper(), size=3 * GIB // 2, published=WHEN)]))
    assert feed.title == "Nyaa - Home - Torrent File RSS"
    assert feed.without_torrent == 0
    assert only(feed) == FeedItem(
        guid="https://nyaa.si/view/1", title="[Group] Show - 02 (1080p)",
        source="https://nyaa.si/download/1.torrent", info_hash=HEX, size=3 * GIB // 2,
        published=WHEN.timestamp(),
        # what is added when the .torrent link fails: a magnet made of its info-hash
        fallback=f"magnet:?xt=urn:btih:{HEX}&dn=%5BGroup%5D%20Show%20-%2002%20%281080p%29",
    )


def test_nyaa_size_in_mib_words_is_read():
    feed = read_feed(nyaa([FakeItem("A", "g", torrent_url="https://nyaa.si/download/2.torrent",
                                    size=700 * 1024**2)]))
    assert only(feed).size == 700 * 1024**2


def test_showrss_magnet_is_the_source_with_hash_and_length():
    feed = read_feed(showrss([FakeItem("Show S01E02 720p", "tv-123", magnet=MAGNET,
                                       info_hash=HEX, size=123456789, published=WHEN)]))
    assert only(feed) == FeedItem(guid="tv-123", title="Show S01E02 720p", source=MAGNET,
                                  info_hash=HEX, size=123456789, published=WHEN.timestamp())


def test_jackett_enclosure_without_torrent_suffix_is_the_source():
    feed = read_feed(jackett([FakeItem("Show.S01E02.1080p", "https://tracker.example/t/9",
                                       torrent_url=JACKETT_URL, magnet=MAGNET, info_hash=OTHER,
                                       size=2 * GIB, published=WHEN)]))
    item = only(feed)
    assert item.source == JACKETT_URL  # the download link beats the magnet
    assert item.fallback == MAGNET  # added when the download link fails
    assert item.info_hash == OTHER  # the infohash attr, not the one in the magnet
    assert item.size == 2 * GIB
    assert item.guid == "https://tracker.example/t/9"


def test_jackett_keeps_every_attr_of_every_item():
    feed = read_feed(jackett([
        FakeItem("First", "g1", torrent_url=JACKETT_URL + "1", info_hash=HEX, size=10),
        FakeItem("Second", "g2", torrent_url=JACKETT_URL + "2", info_hash=OTHER, size=20),
    ]))
    assert [(i.guid, i.info_hash) for i in feed.items] == [("g1", HEX), ("g2", OTHER)]


def test_torznab_attrs_before_the_last_are_not_lost():
    """feedparser keeps only the last ``torznab:attr`` (here ``seeders``)."""
    body = rss(f"""<item><title>Only attrs</title><guid>g1</guid>
        <torznab:attr name="size" value="4242" />
        <torznab:attr name="infohash" value="{HEX}" />
        <torznab:attr name="magneturl" value="{MAGNET.replace('&', '&amp;')}" />
        <torznab:attr name="seeders" value="3" /></item>""", f'xmlns:torznab="{TORZNAB_NS}"')
    assert only(read_feed(body)) == FeedItem(guid="g1", title="Only attrs", source=MAGNET,
                                            info_hash=HEX, size=4242, published=None)


def test_torznab_items_without_guid_are_matched_by_position():
    body = rss(f"""
        <item><title>A</title><torznab:attr name="infohash" value="{HEX}" />
        <torznab:attr name="seeders" value="1" /></item>
        <item><title>B</title><torznab:attr name="infohash" value="{OTHER}" />
        <torznab:attr name="seeders" value="2" /></item>""", f'xmlns:torznab="{TORZNAB_NS}"')
    feed = read_feed(body)
    assert [(i.title, i.info_hash) for i in feed.items] == [("A", HEX), ("B", OTHER)]
    assert feed.items[0].source.startswith(f"magnet:?xt=urn:btih:{HEX}&dn=A")


def test_prowlarr_magnet_only_item():
    feed = read_feed(prowlarr([FakeItem("Show.S01E03", "https://tracker.example/t/3",
                                        magnet=MAGNET, size=5 * GIB)]))
    item = only(feed)
    assert (item.source, item.info_hash, item.size) == (MAGNET, HEX, 5 * GIB)


def test_prowlarr_with_a_download_link_uses_it():
    url = "http://localhost:9696/3/download?apikey=k3y&link=abc&file=Show.S01E04"
    feed = read_feed(prowlarr([FakeItem("Show.S01E04", "g4", torrent_url=url, info_hash=HEX,
                                        magnet=MAGNET)]))
    assert (only(feed).source, only(feed).info_hash) == (url, HEX)


def test_a_hash_alone_becomes_a_magnet_link_named_after_the_title():
    feed = read_feed(prowlarr([FakeItem("Show & Co: S01", "g5", info_hash=HEX)]))
    assert only(feed).source == f"magnet:?xt=urn:btih:{HEX}&dn=Show%20%26%20Co%3A%20S01"
    assert only(feed).info_hash == HEX


def test_atom_enclosure_is_the_source_and_the_page_is_not():
    feed = read_feed(atom([FakeItem("Show", "urn:uuid:1",
                                    torrent_url="https://tracker.example/get?id=1",
                                    size=777, published=WHEN)]))
    assert only(feed) == FeedItem(guid="urn:uuid:1", title="Show",
                                  source="https://tracker.example/get?id=1", info_hash=None,
                                  size=777, published=WHEN.timestamp())


def test_atom_magnet_enclosure_gives_its_hash():
    feed = read_feed(atom([FakeItem("Show", "urn:uuid:2", magnet=MAGNET)]))
    assert (only(feed).source, only(feed).info_hash) == (MAGNET, HEX)


# --------------------------------------------------------------------------------------------
# Hashes, sizes, keys, titles


def test_base32_hash_becomes_hex():
    feed = read_feed(nyaa([FakeItem("A", "g", torrent_url="https://nyaa.si/download/3.torrent",
                                    info_hash=BASE32)]))
    assert only(feed).info_hash == HEX


def test_base32_magnet_gives_a_hex_hash():
    magnet = f"magnet:?xt=urn:btih:{BASE32}&dn=A"
    feed = read_feed(showrss([FakeItem("A", "g", magnet=magnet)]))
    assert (only(feed).source, only(feed).info_hash) == (magnet, HEX)


@pytest.mark.parametrize("bad", ["not-a-hash", HEX[:39], HEX + "0", "g" * 40])
def test_a_malformed_hash_is_no_hash_and_no_source(bad):
    feed = read_feed(nyaa([FakeItem("A", "g", info_hash=bad)]))
    assert feed == ParsedFeed(title="Nyaa - Home - Torrent File RSS", items=(),
                              without_torrent=1)


def test_a_malformed_hash_next_to_a_torrent_is_none():
    feed = read_feed(nyaa([FakeItem("A", "g", torrent_url="https://nyaa.si/download/4.torrent",
                                    info_hash="zz")]))
    assert only(feed).info_hash is None


@pytest.mark.parametrize("size", ["0", "-5", "12abc", "1.5", ""])
def test_a_garbage_size_is_none(size):
    body = rss(f"""<item><title>A</title><guid>g</guid><size>{size}</size>
        <link>https://tracker.example/a.torrent</link></item>""")
    assert only(read_feed(body)).size is None


def test_enclosure_length_zero_is_no_size():
    body = rss("""<item><title>A</title><guid>g</guid><enclosure
        url="https://tracker.example/a.torrent" length="0" type="application/x-bittorrent"/>
        </item>""")
    assert (only(read_feed(body)).source, only(read_feed(body)).size) == (
        "https://tracker.example/a.torrent", None)


def test_an_item_without_guid_is_keyed_by_its_source():
    body = rss("<item><title>A</title><link>https://tracker.example/dl/a.torrent</link></item>")
    assert only(read_feed(body)).guid == "https://tracker.example/dl/a.torrent"


def test_a_title_is_stripped_and_a_missing_one_is_the_guid():
    body = rss(f"""<item><title>
        Spaced  </title><guid>g1</guid><link>{MAGNET.replace("&", "&amp;")}</link></item>
        <item><guid>g2</guid><link>https://tracker.example/b.torrent</link></item>""")
    assert [(i.guid, i.title) for i in read_feed(body).items] == [("g1", "Spaced"), ("g2", "g2")]


def test_an_updated_date_is_used_when_there_is_no_published_one():
    feed = read_feed(atom([FakeItem("A", "urn:1", magnet=MAGNET, published=WHEN)]))
    assert only(feed).published == WHEN.timestamp()


def test_results_are_frozen():
    item = only(read_feed(showrss([FakeItem("A", "g", magnet=MAGNET)])))
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.source = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Items without a torrent


def test_a_web_page_link_is_never_a_source():
    body = rss("""<item><title>A</title><guid>g1</guid><link>https://tracker.example/view/1</link>
        </item><item><title>B</title><guid>g2</guid>
        <link>https://tracker.example/download/2.torrent</link></item>""")
    feed = read_feed(body)
    assert [i.guid for i in feed.items] == ["g2"]
    assert feed.without_torrent == 1


def test_an_enclosure_that_is_not_a_torrent_is_not_a_source():
    body = rss("""<item><title>Podcast</title><guid>g</guid><enclosure
        url="https://cdn.example/episode.mp3" length="100" type="audio/mpeg"/></item>""")
    assert read_feed(body).without_torrent == 1


def test_a_feed_whose_items_all_lack_a_torrent_is_returned_empty():
    body = rss("".join(f"<item><title>{n}</title><link>https://tracker.example/view/{n}</link>"
                       "</item>" for n in range(3)))
    assert read_feed(body) == ParsedFeed(title="Tracker", items=(), without_torrent=3)


def test_an_empty_channel_is_an_empty_feed():
    assert read_feed(rss("")) == ParsedFeed(title="Tracker", items=(), without_torrent=0)


# --------------------------------------------------------------------------------------------
# Hostile and wrong documents


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title>
<link>https://tracker.example/a.torrent</link></item></channel></rss>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&xxe;</title><item><title>&xxe;</title>
<link>https://tracker.example/a.torrent</link></item></channel></rss>"""


@pytest.mark.parametrize("document", [
    BILLION_LAUGHS.encode(),
    XXE.encode(),
    XXE.replace("<!ENTITY xxe", "<!ENTITY % xxe").encode(),  # a parameter entity
    XXE.encode("utf-16"),  # with a byte order mark
    XXE.encode("utf-16-le"),  # without one
    XXE.replace("<!ENTITY", "<!entity").encode(),  # a loose parser may not mind the case
    XXE.replace("<!DOCTYPE", "<!-- <a> --><!DOCTYPE").encode(),  # "root" hidden in a comment
    XXE.replace("[<!ENTITY", '[<!ELEMENT a "<b>"><!-- ]> --><!ENTITY').encode(),
])
def test_entity_declarations_are_refused(document):
    with pytest.raises(FeedError) as caught:
        read_feed(document)
    assert str(caught.value) == ENTITY_REFUSED


def test_the_word_entity_in_an_item_is_not_a_declaration():
    body = rss("""<item><title><![CDATA[How <!ENTITY works]]></title><guid>g</guid>
        <link>https://tracker.example/a.torrent</link></item>""")
    assert only(read_feed(body)).title == "How <!ENTITY works"


def test_an_external_dtd_without_entities_is_read():
    """RSS 0.91 feeds name Netscape's DTD; no parser here fetches it. The CDATA spells
    ``<!ENTITY``, so the prolog is walked, past a comment and the DOCTYPE."""
    prolog = ('<?xml version="1.0"?>\n<!-- a comment --><!DOCTYPE rss PUBLIC '
              '"-//Netscape Communications//DTD RSS 0.91//EN" '
              '"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n')
    body = rss("<item><title><![CDATA[<!ENTITY>]]></title>"
               "<link>https://t.example/a.torrent</link></item>", prolog=prolog)
    assert only(read_feed(body)).source == "https://t.example/a.torrent"


def test_an_internal_subset_without_entities_is_read():
    prolog = '<?xml version="1.0"?><!DOCTYPE rss [<!ELEMENT rss ANY>]>'
    body = rss("<item><title><![CDATA[<!ENTITY>]]></title>"
               "<link>https://t.example/a.torrent</link></item>", prolog=prolog)
    assert only(read_feed(body)).title == "<!ENTITY>"


@pytest.mark.parametrize("page", [
    b"<!DOCTYPE html><html><head><title>Log in</title></head><body><p>Log in</p></body></html>",
    b"\n<html lang='en'><body>Not found</body></html>",
])
def test_a_web_page_is_refused_as_one(page):
    with pytest.raises(FeedError, match=r"^it is a web page, not an RSS or Atom feed$"):
        read_feed(page)


@pytest.mark.parametrize("document", [
    b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"title": "x"}]}',
    b"",
    b"just some text",
    b"d8:announce3:xyze",
])
def test_json_and_garbage_are_not_feeds(document):
    with pytest.raises(FeedError, match=r"^it is not an RSS or Atom feed$"):
        read_feed(document)


def test_malformed_but_recoverable_xml_is_read():
    body = rss("""<item><title>Fish & Chips</title><guid>g1</guid>
        <link>https://tracker.example/a.torrent?k=1&file=x.torrent</link></item>
        <item><title>Second</title><guid>g2</guid>
        <link>https://tracker.example/b.torrent</link></item>""")
    feed = read_feed(body)
    assert [(i.guid, i.title) for i in feed.items] == [("g1", "Fish & Chips"), ("g2", "Second")]


def test_malformed_torznab_falls_back_to_feedparsers_attr():
    """ElementTree refuses the bare ``&``; the item is still read, with the one attr
    feedparser kept (the last)."""
    body = rss(f"""<item><title>Fish & Chips</title><guid>g1</guid>
        <enclosure url="http://127.0.0.1:9117/dl/t/?apikey=k&file=Fish" length="0"
        type="application/x-bittorrent"/>
        <torznab:attr name="seeders" value="3" />
        <torznab:attr name="infohash" value="{HEX}" /></item>""", f'xmlns:torznab="{TORZNAB_NS}"')
    item = only(read_feed(body))
    assert (item.source, item.info_hash) == ("http://127.0.0.1:9117/dl/t/?apikey=k&file=Fish", HEX)
