"""RSS and Atom feeds a chat subscribes to, read on a schedule; their new matches are added.

``items`` reads a feed document into the torrents it lists (hostile ones refused), ``filters``
holds the include/exclude/size rules and the option words that set them, ``reader`` does one
read of one feed (fetch, parse, add at most once per item and per torrent), ``service`` is
the surface a chat uses (subscribe, list, pause, resume, filter, remove) and the schedule,
``text`` a feed in words. It sits above ``actions`` (it adds through the manager's ``add``)
and ``fetch`` (the guarded HTTP client).
"""

from manager.feeds.filters import (
    MAX_NEWEST,
    MAX_PATTERN_CHARS,
    MAX_PATTERNS,
    FeedFilter,
    FeedOptions,
    normalise_title,
    parse_feed_options,
    parse_size,
)
from manager.feeds.items import TORZNAB_NS, FeedItem, ParsedFeed, read_feed
from manager.feeds.reader import FeedReader, ReadOutcome
from manager.feeds.service import MAX_FEEDS, FeedService, FeedView, Subscribed
from manager.feeds.text import feed_text

__all__ = ["MAX_FEEDS", "MAX_NEWEST", "MAX_PATTERNS", "MAX_PATTERN_CHARS", "TORZNAB_NS",
           "FeedFilter", "FeedItem", "FeedOptions", "FeedReader", "FeedService", "FeedView",
           "ParsedFeed", "ReadOutcome", "Subscribed", "feed_text", "normalise_title",
           "parse_feed_options", "parse_size", "read_feed"]
