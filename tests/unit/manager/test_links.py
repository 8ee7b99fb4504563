"""Signed links: what a link opens, when it dies, and that it never serves anything else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import torf

from manager import (
    DownloadNotFound,
    InvalidState,
    LinkConfig,
    LinkExpired,
    LinkRefused,
    LinksOff,
    ManagerConfig,
)
from manager.clock import utcnow
from manager.delivery.links import Links, link_stamp, parse_token, sign_token, stamp_tag
from manager.downloads.contents import Contents
from manager.downloads.live import LiveDownloads
from manager.nodes import Ownership
from manager.store import DownloadRecord, Store

KEY = bytes(range(32))
TTL = timedelta(days=7)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    chat = tmp_path / "downloads" / "torrents" / "1"
    chat.mkdir(parents=True)
    return chat


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))


def links(store: Store, tmp_path: Path, clock: Clock, *, on: bool = True) -> Links:
    config = ManagerConfig(download_dir=tmp_path / "downloads")
    live = LiveDownloads(store, lambda: 0.0)
    contents = Contents(None, store, config)  # type: ignore[arg-type] - no aria2 needed
    link_config = LinkConfig("https://files.example.org", KEY, TTL) if on else None
    return Links(link_config, live=live, store=store, contents=contents,
                 ownership=Ownership(store, None), now=clock)


def torrent_of(folder: Path, name: str, files: dict[str, bytes]) -> bytes:
    for relative, data in files.items():
        (folder / name / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / name / relative).write_bytes(data)
    made = torf.Torrent(path=folder / name, trackers=["http://127.0.0.1:1/announce"],
                        creation_date=None)
    made.generate()
    return bytes(made.dump())


async def finished(store: Store, folder: Path, name: str = "pack",
                   files: dict[str, bytes] | None = None, state: str = "complete",
                   ) -> DownloadRecord:
    files = files if files is not None else {"clip.mp4": b"v" * 3000, "notes ü.txt": b"n" * 5}
    source = torrent_of(folder, name, files)
    info_hash = torf.Torrent.read_stream(source).infohash
    record = await store.downloads.create(
        info_hash=info_hash, chat_id=1, user_id=7, name=name,
        source_kind="torrent", source=source, directory=str(folder),
        state=state)
    updated = await store.downloads.update(record.id, completed_at=utcnow())
    assert updated is not None
    return updated


def token_of(url: str) -> str:
    return url.rsplit("/d/", 1)[1]


async def test_a_link_opens_the_downloads_own_files_by_number(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    record = await finished(store, folder)
    made = await links(store, tmp_path, clock).make(record.id, 1, 7)
    assert made.url.startswith("https://files.example.org/d/")
    assert made.expires_at == clock.now + TTL
    shared = await links(store, tmp_path, clock).open(token_of(made.url))
    assert [(f.number, f.name, f.length) for f in shared.files] == [
        (1, "pack/clip.mp4", 3000), (2, "pack/notes ü.txt", 5)]
    assert shared.file(1).path == (folder / "pack" / "clip.mp4").resolve()
    assert shared.file(3) is None and shared.file(0) is None
    assert str(folder) not in made.url
    [entry] = await store.activity.latest(chat_id=1)
    assert (entry.action, entry.download_id) == ("link", record.id)


@pytest.mark.parametrize("token", [
    "", "x", "1", "1.2", "1.2.3", "../../etc/passwd", "/etc/passwd", "1.99999999999.%2e%2e",
    "01.1893499200." + "A" * 43, "1.1893499200." + "A" * 42, "1.1893499200." + "A" * 44,
    "-1.1893499200." + "A" * 43, "1.1893499200." + "A" * 42 + "=",
    "1.1893499200." + "T" * 15 + "." + "A" * 43, "1.1893499200." + "T" * 17 + "." + "A" * 43,
    "1.1893499200." + "T" * 16 + "." + "A" * 42, "1.1893499200." + "T" * 16 + "/" + "A" * 43,
])
def test_malformed_tokens_do_not_parse(token: str) -> None:
    assert parse_token(token) is None


async def test_a_forged_or_altered_token_is_refused(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    record = await finished(store, folder)
    other = await finished(store, folder, "other", {"b.bin": b"b" * 10})
    opener = links(store, tmp_path, clock)
    download_id, expires, tag, signature = parse_token(
        token_of((await opener.make(record.id, 1, 7)).url)) or (0, 0, "", "")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    other_tag = stamp_tag(link_stamp(other))
    for forged in (f"{download_id}.{expires}.{tag}.{flipped}",  # a changed signature
                   f"{download_id}.{expires + 86400}.{tag}.{signature}",  # a longer life
                   f"{other.id}.{expires}.{tag}.{signature}",  # another download
                   f"{download_id}.{expires}.{other_tag}.{signature}",  # another stamp
                   sign_token(b"k" * 32, record.id, expires, link_stamp(record))):  # other key
        with pytest.raises(LinkRefused) as refused:
            await opener.open(forged)
        assert not isinstance(refused.value, LinkExpired)


async def test_an_expired_link_is_refused_as_expired(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    record = await finished(store, folder)
    opener = links(store, tmp_path, clock)
    token = token_of((await opener.make(record.id, 1, 7)).url)
    clock.now += TTL - timedelta(seconds=1)
    assert (await opener.open(token)).id == record.id
    clock.now += timedelta(seconds=1)
    with pytest.raises(LinkExpired):
        await opener.open(token)


async def test_cancelled_to_revoked(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    record = await finished(store, folder)
    opener = links(store, tmp_path, clock)
    token = token_of((await opener.make(record.id, 1, 7)).url)
    await store.downloads.update(record.id, state="cancelled")
    with pytest.raises(LinkRefused, match="cancelled"):
        await opener.open(token)


async def test_purged_to_revoked_and_a_new_download_on_the_same_id_is_not_opened(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    record = await finished(store, folder, "first", {"secret.bin": b"s" * 100})
    opener = links(store, tmp_path, clock)
    token = token_of((await opener.make(record.id, 1, 7)).url)
    await store.downloads.delete([record.id])
    with pytest.raises(LinkRefused, match="no longer in the list"):
        await opener.open(token)
    newcomer = await finished(store, folder, "second", {"other.bin": b"o" * 100})
    assert newcomer.id != record.id  # ids are never given again (schema migration 8) ...
    table = store.database.tables.download  # ... but a file restored from a backup may do it
    await store.database.run(lambda: table.update(id=record.id).where(
        table.id == newcomer.id).execute())
    with pytest.raises(LinkRefused, match="earlier download"):
        await opener.open(token)


async def test_a_new_completion_of_the_same_row_revokes_older_links(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    record = await finished(store, folder)
    opener = links(store, tmp_path, clock)
    token = token_of((await opener.make(record.id, 1, 7)).url)
    await store.downloads.update(record.id, completed_at=utcnow() + timedelta(seconds=1))
    with pytest.raises(LinkRefused):
        await opener.open(token)


async def test_deleted_files_revoke_the_link_and_a_missing_one_is_left_out(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    record = await finished(store, folder)
    opener = links(store, tmp_path, clock)
    token = token_of((await opener.make(record.id, 1, 7)).url)
    (folder / "pack" / "notes ü.txt").unlink()
    assert [f.number for f in (await opener.open(token)).files] == [1]
    (folder / "pack" / "clip.mp4").write_bytes(b"shorter")  # changed: not its file any more
    with pytest.raises(LinkRefused, match="no longer here"):
        await opener.open(token)
    with pytest.raises(InvalidState, match="no longer here"):
        await opener.make(record.id, 1, 7)


async def test_symlinks_are_never_followed(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "clip.mp4").write_bytes(b"x" * 3000)  # the same size as the real one
    (outside / "notes ü.txt").write_bytes(b"y" * 5)
    record = await finished(store, folder)
    opener = links(store, tmp_path, clock)
    token = token_of((await opener.make(record.id, 1, 7)).url)
    clip = folder / "pack" / "clip.mp4"
    clip.unlink()
    clip.symlink_to(outside / "clip.mp4")
    assert [f.number for f in (await opener.open(token)).files] == [2]
    (folder / "pack" / "notes ü.txt").unlink()
    (folder / "pack").rename(folder / "moved")
    (folder / "pack").symlink_to(outside)  # the whole folder points elsewhere
    with pytest.raises(LinkRefused):
        await opener.open(token)


async def test_only_chosen_files_are_served(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    record = await finished(store, folder)
    await store.downloads.update(record.id, selected_files="2")
    shared = await links(store, tmp_path, clock).open(
        token_of((await links(store, tmp_path, clock).make(record.id, 1, 7)).url))
    assert [f.number for f in shared.files] == [2]


async def test_unfinished_or_links_off_make_no_link(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    running = await finished(store, folder, state="downloading")
    with pytest.raises(InvalidState, match="only a finished download has a link"):
        await links(store, tmp_path, clock).make(running.id, 1, 7)
    with pytest.raises(LinksOff):
        await links(store, tmp_path, clock, on=False).make(running.id, 1, 7)
    with pytest.raises(LinksOff):
        await links(store, tmp_path, clock, on=False).open("1.2." + "A" * 43)
    done = await finished(store, folder, "done", {"d.bin": b"d"})
    with pytest.raises(DownloadNotFound):  # not from another chat
        await links(store, tmp_path, clock).make(done.id, 2, 7)


async def test_a_forged_link_costs_no_query(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    """The signature is checked before the store is asked anything."""
    record = await finished(store, folder)
    opener = links(store, tmp_path, clock)
    token = token_of((await opener.make(record.id, 1, 7)).url)
    _, expires = token.split(".")[:2]
    before = store.statements
    for forged in (token[:-43] + "A" * 43,  # another signature
                   f"{record.id}.{int(expires) + 86400}" + token[token.index(".", 2):],
                   sign_token(b"k" * 32, record.id, int(expires), link_stamp(record))):
        with pytest.raises(LinkRefused, match="forged"):
            await opener.open(forged)
    assert store.statements == before


async def test_a_range_storm_reads_the_metainfo_once_and_checks_only_the_file_served(
    store: Store, folder: Path, tmp_path: Path, clock: Clock,
) -> None:
    """A player's many requests: one row read each, the .torrent read and parsed once per
    stamp; a new completion (another stamp) reads it again, a deleted file is not served."""
    record = await finished(store, folder)
    opener = links(store, tmp_path, clock)
    token = token_of((await opener.make(record.id, 1, 7)).url)
    await opener.open(token)  # the page
    before = store.statements
    for _ in range(20):
        assert (await opener.open(token)).file(1) is not None
    assert store.statements - before == 20  # the row, each time; never the source again
    served = await opener.open_file(token, 1)  # a file request checks only its file
    assert served is not None and served.path == (folder / "pack" / "clip.mp4").resolve()
    assert store.statements - before == 21
    assert await opener.open_file(token, 3) is None

    (folder / "pack" / "notes ü.txt").unlink()
    assert await opener.open_file(token, 2) is None
    await store.downloads.update(record.id, completed_at=utcnow() + timedelta(seconds=1))
    with pytest.raises(LinkRefused, match="earlier"):
        await opener.open_file(token, 1)
    before = store.statements
    fresh = token_of((await opener.make(record.id, 1, 7)).url)  # reads the new stamp's source
    assert await opener.open_file(fresh, 1) is not None
    assert store.statements - before == 4  # make: row, source, activity; open: the row
