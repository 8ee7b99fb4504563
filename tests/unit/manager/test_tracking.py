"""aria2's words to ours: states, error texts, stuck reasons."""

from __future__ import annotations

from typing import Any

import pytest

from manager.aria2.observation import (
    POLL_KEYS,
    Observation,
    StallWatch,
    derive_state,
    error_text,
    unreachable_reason,
)
from manager.models import TorrentState


def status(**values: Any) -> dict[str, Any]:
    base = {"gid": "g1", "status": "active", "infoHash": "AB" * 20, "totalLength": "100",
            "completedLength": "10", "numPieces": "4", "connections": "2",
            "downloadSpeed": "5", "seeder": "false"}
    base.update({k: str(v) if not isinstance(v, list) else v for k, v in values.items()})
    return base


def test_numbers_arrive_as_strings_and_are_typed() -> None:
    observation = Observation.parse(status(uploadLength="7"))
    assert observation.total == 100 and observation.completed == 10 and observation.uploaded == 7
    assert observation.info_hash == "ab" * 20
    assert not observation.is_metadata


@pytest.mark.parametrize(("values", "verifying"), [
    ({"verifiedLength": "0"}, True),
    ({"verifyIntegrityPending": "true"}, True),
    ({}, False),
])
def test_a_hash_check_is_seen_by_the_keys_aria2_adds_only_while_it_runs(
        values: dict[str, str], verifying: bool) -> None:
    assert Observation.parse(status(**values)).verifying is verifying
    assert {"verifiedLength", "verifyIntegrityPending"} <= set(POLL_KEYS)


def test_garbage_numbers_become_zero() -> None:
    assert Observation.parse(status(totalLength="x")).total == 0


@pytest.mark.parametrize(("values", "state"), [
    ({"numPieces": "0", "totalLength": "0"}, TorrentState.METADATA),
    ({}, TorrentState.DOWNLOADING),
    ({"seeder": "true", "completedLength": "100"}, TorrentState.SEEDING),
    ({"completedLength": "100"}, TorrentState.SEEDING),
    ({"status": "waiting"}, TorrentState.QUEUED),
    ({"status": "paused"}, TorrentState.PAUSED),
    ({"status": "complete"}, TorrentState.COMPLETE),
    ({"status": "removed"}, TorrentState.CANCELLED),
    ({"status": "error"}, TorrentState.ERROR),
])
def test_derive_state(values: dict[str, str], state: TorrentState) -> None:
    assert derive_state(Observation.parse(status(**values))) is state


def test_dead_torrent_stopped_by_bt_stop_timeout_says_so() -> None:
    observation = Observation.parse(status(status="error", errorCode="7", errorMessage=""))
    assert error_text(observation, 900) == "stopped: no data for 15 min (dead torrent)"


@pytest.mark.parametrize("values", [
    {"errorCode": "9"},
    {"errorCode": "1", "errorMessage": "Failed to write: No space left on device"},
])
def test_disk_full(values: dict[str, str]) -> None:
    assert error_text(Observation.parse(status(status="error", **values)), 900) == "disk full"


def test_a_listen_port_another_program_holds_is_named_not_unknown() -> None:
    # What aria2c 1.36 said in CI when its listen port was taken before it bound it.
    observation = Observation.parse(status(status="error", errorCode="1",
                                           errorMessage="Errors occurred while binding port.\n"))
    assert error_text(observation, 900) == (
        "the downloader could not open its BitTorrent port (ARIABOT_LISTEN_PORT): another "
        "program uses it")


@pytest.mark.parametrize(("code", "message", "expected"), [
    ("11", "File /srv/dl/torrents/7/x.bin is being downloaded by other command.",
     "another download in this chat writes a file of the same name"),
    ("15", "Failed to open the file /srv/dl/torrents/7/p/a.bin, cause: Not a directory",
     "the downloader could not open the files"),
    ("1", "boom in /srv/dl", "the downloader failed for a reason it did not name"),
    ("99", "Something new at /srv/dl", "the download failed (downloader error 99)"),
])
def test_aria2s_message_is_logged_never_shown(code: str, message: str, expected: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    observation = Observation.parse(status(status="error", errorCode=code,
                                           errorMessage=message))
    assert error_text(observation, 900) == expected
    [record] = caplog.records
    assert record.levelname == "WARNING" and "g1" in record.getMessage()
    assert message in record.getMessage()


def test_poll_keys_leave_out_heavy_fields() -> None:
    assert not {"files", "bittorrent", "bitfield", "uris"} & set(POLL_KEYS)


def test_no_peers_for_two_minutes_is_reported_then_cleared() -> None:
    watch = StallWatch(started=0)
    lonely = Observation.parse(status(connections="0", downloadSpeed="0"))
    assert watch.update(lonely, TorrentState.DOWNLOADING, 10) is None
    assert watch.update(lonely, TorrentState.DOWNLOADING, 129) is None
    assert watch.update(lonely, TorrentState.DOWNLOADING, 130) == "no peers found for 2 min"
    busy = Observation.parse(status())
    assert watch.update(busy, TorrentState.DOWNLOADING, 131) is None


def test_waiting_for_metadata_names_the_peer_count() -> None:
    watch = StallWatch(started=0)
    meta = Observation.parse(status(numPieces="0", totalLength="0", connections="0"))
    assert watch.update(meta, TorrentState.METADATA, 100) is None
    assert watch.update(meta, TorrentState.METADATA, 185) == (
        "waiting for metadata for 3 min (0 peers)")


def test_no_data_with_peers_for_five_minutes() -> None:
    watch = StallWatch(started=0)
    idle = Observation.parse(status(connections="3", downloadSpeed="0"))
    watch.update(idle, TorrentState.DOWNLOADING, 0)
    assert watch.update(idle, TorrentState.DOWNLOADING, 301) == "no data for 5 min (3 peers)"


def test_paused_download_is_never_stuck() -> None:
    watch = StallWatch(started=0)
    lonely = Observation.parse(status(connections="0", downloadSpeed="0"))
    watch.update(lonely, TorrentState.DOWNLOADING, 0)
    assert watch.update(lonely, TorrentState.PAUSED, 500) is None


@pytest.mark.parametrize("trackers", [
    ["udp://tracker.example:1337/announce"],
    ["udp://a.example:1/announce", "UDP://b.example:2/announce"],
])
def test_dht_off_and_only_udp_trackers_is_unreachable(trackers: list[str]) -> None:
    # aria2 1.36 sends nothing to a udp:// tracker when DHT is off ("udp is not supported yet").
    reason = unreachable_reason(trackers, dht_enabled=False)
    assert reason is not None
    assert "udp://" in reason and "DHT is off" in reason
    assert "enable DHT" in reason and "http" in reason


def test_dht_off_and_no_tracker_at_all_is_unreachable() -> None:
    reason = unreachable_reason([], dht_enabled=False)
    assert reason is not None and "no tracker" in reason and "enable DHT" in reason


@pytest.mark.parametrize(("trackers", "dht"), [
    (["udp://a.example:1/announce", "http://b.example/announce"], False),
    (["https://b.example/announce"], False),
    (["udp://a.example:1/announce"], True),
    ([], True),
])
def test_a_usable_peer_source_is_not_unreachable(trackers: list[str], dht: bool) -> None:
    assert unreachable_reason(trackers, dht_enabled=dht) is None


def test_unreachable_reason_shows_at_once_and_only_while_nobody_is_connected() -> None:
    watch = StallWatch(started=0)
    watch.unreachable = "no usable tracker"
    meta = Observation.parse(status(numPieces="0", totalLength="0", connections="0"))
    assert watch.update(meta, TorrentState.METADATA, 1) == "no usable tracker"
    lonely = Observation.parse(status(connections="0", downloadSpeed="0"))
    assert watch.update(lonely, TorrentState.DOWNLOADING, 2) == "no usable tracker"
    # A peer came anyway (one that connected to us): the reason is gone.
    assert watch.update(Observation.parse(status()), TorrentState.DOWNLOADING, 3) is None
    assert watch.update(lonely, TorrentState.PAUSED, 4) is None
