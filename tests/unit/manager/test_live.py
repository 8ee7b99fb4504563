"""The working memory of the unfinished downloads, against a real store."""

from __future__ import annotations

import asyncio
import time

from manager.downloads import LiveDownloads
from manager.store import DownloadRecord, Store


async def test_a_failure_is_read_with_its_reason_by_whoever_its_notice_wakes(
        store: Store) -> None:
    """The failure's notice wakes the news, which reads the download at once: it must find
    the reason, not the tracked copy from before the failure (the chat was told "the
    downloader gave no reason", 5 times in 7 on PostgreSQL)."""
    live = LiveDownloads(store, time.monotonic)
    record = await store.downloads.create(
        info_hash="c" * 40, chat_id=7, user_id=1, name="clash.bin", source_kind="magnet",
        source=b"magnet:?", directory="/d/torrents/7", state="metadata")
    reads: list[asyncio.Future[DownloadRecord]] = []
    store.notices.watch(lambda: reads.append(asyncio.ensure_future(live.record(record.id))))
    await live.fail(live.remember(record), "files named 'clash.bin' are already here")
    (read,) = reads
    assert ((await read).state, (await read).error) == (
        "error", "files named 'clash.bin' are already here")
