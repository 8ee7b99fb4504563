"""The link server alone, in its own process, for the HTTP benchmark (:mod:`.links`).

``python -m tests.bench.linkserve <file> <workdir>`` stores one finished download of
``<file>`` (a .torrent made with torf) in a SQLite store, runs ariabot's real link code on
it (:class:`manager.delivery.links.Links` → :class:`web.LinkServer` on 127.0.0.1, a free port), and
prints one JSON line: the file's URL and the pid. It serves until its stdin closes, then
prints a second line: its event loop's lag (max and p99, ms) since the last line it read
(or since it started).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import torf

from manager import LinkConfig, ManagerConfig, SharedDownload, SharedFile
from manager.clock import utcnow
from manager.delivery.links import Links
from manager.downloads.contents import Contents
from manager.downloads.live import LiveDownloads
from manager.nodes import Ownership
from manager.store import Store
from tests.bench.looplag import LoopLag
from web import LinkServer

__all__ = ["main"]


class _Opener:
    def __init__(self, links: Links) -> None:
        self._links = links

    async def open_link(self, token: str) -> SharedDownload:
        return await self._links.open(token)

    async def open_link_file(self, token: str, number: int) -> SharedFile | None:
        return await self._links.open_file(token, number)


async def _serve(file: Path, workdir: Path) -> None:
    folder = file.parent
    torrent = torf.Torrent(path=file, trackers=["http://127.0.0.1:1/announce"],
                           creation_date=None)
    torrent.generate()
    source = bytes(torrent.dump())
    store = Store(f"sqlite:///{workdir / 'ariabot.db'}")
    await store.open()
    try:
        record = await store.downloads.create(info_hash=torrent.infohash, chat_id=1, user_id=1,
                                              name=file.name, source_kind="torrent", source=source,
                                              directory=str(folder), state="complete")
        await store.downloads.update(record.id, completed_at=utcnow())
        config = ManagerConfig(download_dir=folder.parent, torrent_max_bytes=10_000_000)
        links = Links(LinkConfig("http://127.0.0.1", secrets.token_bytes(32),
                                 timedelta(days=1)),
                      live=LiveDownloads(store, lambda: 0.0), store=store,
                      contents=Contents(None, store, config),  # type: ignore[arg-type]
                      ownership=Ownership(store, None))
        made = await links.make(record.id, 1, 1)
        server = LinkServer(_Opener(links), "127.0.0.1", 0)
        await server.start()
        lag = LoopLag()
        lag.start()
        page = made.url.replace("http://127.0.0.1", f"http://127.0.0.1:{server.port}")
        print(json.dumps({"page": page, "file": f"{page}/1/{quote(file.name)}",
                          "pid": os.getpid()}), flush=True)
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, sys.stdin.readline):  # a line: start afresh
            await lag.stop()
            lag.start()
        figures = await lag.stop()
        await server.stop()
        print(json.dumps({"lag_max_ms": figures.max_ms, "lag_p99_ms": figures.p99_ms,
                          "lag_samples": figures.samples}), flush=True)
    finally:
        await store.close()


def main() -> None:
    """Serve ``argv[1]`` with state in ``argv[2]`` until stdin closes."""
    asyncio.run(_serve(Path(sys.argv[1]), Path(sys.argv[2])))


if __name__ == "__main__":
    main()
