"""The bot's screens as pure functions: text and keyboards."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path, PurePosixPath

import pytest

from bot.config import BotConfig
from bot.views import (
    completion_keyboard,
    completion_text,
    engine_alert_text,
    failure_text,
    files_text,
    help_text,
    human_duration,
    mirror_done_text,
    mirror_failed_text,
    percent,
    progress_bar,
    progress_keyboard,
    progress_percent,
    progress_text,
    refusal_text,
    relative_location,
    status_view,
)
from manager import (
    Cancellation,
    FileEntry,
    Mirror,
    MirrorState,
    SourceKind,
    StatusPage,
    Torrent,
    TorrentState,
)

MIB = 1024 * 1024


def torrent(**changes: object) -> Torrent:
    base = Torrent(
        id=7, info_hash="ab" * 20, name="ubuntu.iso", chat_id=42, user_id=42,
        state=TorrentState.DOWNLOADING, source_kind=SourceKind.MAGNET,
        total_bytes=700 * MIB, completed_bytes=294 * MIB, download_speed=MIB,
        upload_speed=10 * 1024, seeders=3, peers=12,
        path="/srv/dl/torrents/42/ubuntu.iso",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def buttons(markup: object) -> list[list[tuple[str, str]]]:
    assert markup is not None
    return [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]  # type: ignore[attr-defined]


# --- units ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (45, "45s"), (65, "1m 05s"), (7500, "2h 05m"), (3 * 86400 + 4 * 3600, "3d 04h"),
    (200 * 86400, "over 99d"), (-3, "0s"),
])
def test_durations_show_two_units(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_bar_is_full_only_when_done() -> None:
    assert progress_bar(0.0) == "░" * 12
    assert progress_bar(0.5) == "█" * 6 + "░" * 6
    assert progress_bar(0.999) == "█" * 11 + "░"
    assert progress_bar(1.0) == "█" * 12
    assert progress_bar(7.0) == "█" * 12


def test_percent_rounds_down() -> None:
    assert percent(torrent(completed_bytes=700 * MIB - 1)) == 99
    assert percent(torrent(completed_bytes=700 * MIB)) == 100
    assert percent(torrent(total_bytes=0, state=TorrentState.METADATA)) == 0


# --- progress message ----------------------------------------------------------------------------

def test_progress_text_shows_everything_a_user_needs() -> None:
    text = progress_text(torrent())
    assert text.splitlines() == [
        "<b>ubuntu.iso</b> · #7",
        "Downloading",
        "<code>█████░░░░░░░</code> 42%",
        "294.0 MiB of 700.0 MiB",
        "↓ 1.0 MiB/s · ↑ 10.0 KiB/s · ETA 6m 46s",
        "Seeders 3 · peers 12",
    ]


def test_progress_text_escapes_the_name_and_reasons() -> None:
    text = progress_text(torrent(name="<script>a & *b*</script>", stuck_reason="no <peers>"))
    assert "<b>&lt;script&gt;a &amp; *b*&lt;/script&gt;</b>" in text
    assert "⚠️ no &lt;peers&gt;" in text
    assert "<script>" not in text


def test_progress_text_queue_position_error_note_and_confirm() -> None:
    queued = progress_text(torrent(state=TorrentState.QUEUED, queue_position=2,
                                   download_speed=0))
    assert "Queued · #2 in the queue" in queued
    assert "ETA" not in queued and "↓" not in queued
    failed = progress_text(torrent(state=TorrentState.ERROR, error="tracker said <no>"))
    assert "❌ tracker said &lt;no&gt;" in failed
    assert "Note: the downloader is restarting" in progress_text(
        torrent(), note="the downloader is restarting")
    assert "Cancel this download?" in progress_text(torrent(), confirm=True)


def test_seeding_shows_upload_only() -> None:
    text = progress_text(torrent(state=TorrentState.SEEDING, completed_bytes=700 * MIB,
                                 upload_bytes=3 * MIB, upload_speed=2048))
    assert "↑ 2.0 KiB/s · uploaded 3.0 MiB" in text
    assert "↓" not in text and "ETA" not in text


def test_progress_text_before_metadata_has_no_bar() -> None:
    text = progress_text(torrent(state=TorrentState.METADATA, total_bytes=0,
                                 completed_bytes=0, name=""))
    assert "Fetching metadata" in text
    assert "<code>" not in text
    assert "abababab" in text  # no name yet: the info-hash stands in


def test_long_names_are_cut() -> None:
    text = progress_text(torrent(name="x" * 5000))
    assert len(text) < 1000 and "…" in text


@pytest.mark.parametrize(("state", "first"), [
    (TorrentState.DOWNLOADING, ("⏸ Pause", "pause:7")),
    (TorrentState.QUEUED, ("⏸ Pause", "pause:7")),
    (TorrentState.METADATA, ("⏸ Pause", "pause:7")),
    (TorrentState.SEEDING, ("⏸ Pause", "pause:7")),
    (TorrentState.PAUSED, ("▶ Resume", "resume:7")),
])
def test_keyboard_depends_on_state(state: TorrentState, first: tuple[str, str]) -> None:
    assert buttons(progress_keyboard(torrent(state=state))) == [
        [first, ("✖ Cancel", "cancel:7"), ("↻ Refresh", "refresh:7")],
    ]


@pytest.mark.parametrize("state", [TorrentState.COMPLETE, TorrentState.ERROR,
                                   TorrentState.CANCELLED])
def test_final_states_have_no_buttons(state: TorrentState) -> None:
    assert progress_keyboard(torrent(state=state)) is None
    assert progress_keyboard(torrent(state=state), confirm=True) is None


def test_cancel_confirmation_keyboard() -> None:
    assert buttons(progress_keyboard(torrent(), confirm=True)) == [
        [("Cancel", "cancel:7:keep"), ("Cancel + delete files", "cancel:7:delete")],
        [("Back", "back:7")],
    ]


# --- news ----------------------------------------------------------------------------------------

def test_completion_text_size_time_and_relative_place() -> None:
    done = torrent(state=TorrentState.COMPLETE, completed_bytes=700 * MIB,
                   created_at=datetime(2024, 5, 1, 10, 0, 0),
                   completed_at=datetime(2024, 5, 1, 12, 5, 30))
    location = relative_location(done.path, PurePosixPath("/srv/dl/torrents/42"))
    assert location == "ubuntu.iso"
    text = completion_text(done, location)
    assert "✅ <b>ubuntu.iso</b> is downloaded (#7)." in text
    assert "Size 700.0 MiB · took 2h 05m" in text
    assert "<code>ubuntu.iso</code>" in text
    assert "/srv" not in text


def test_location_never_shows_a_path_outside_the_chat_folder() -> None:
    folder = PurePosixPath("/srv/dl/torrents/42")
    assert relative_location("/srv/dl/torrents/42/pack/sub", folder) == "pack/sub"
    assert relative_location("/etc/secret/thing", folder) == "thing"
    assert relative_location("/srv/dl/torrents/42/../43/x", folder) == "x"
    assert relative_location(None, folder) == ""


def test_send_button_only_when_sendable() -> None:
    assert completion_keyboard(torrent(), can_send=False) is None
    assert buttons(completion_keyboard(torrent(), can_send=True)) == [[("📎 Send file",
                                                                        "send:7")]]


def test_mirror_button_beside_send_file_when_mirroring_is_on_request() -> None:
    assert buttons(completion_keyboard(torrent(), can_send=True, can_mirror=True)) == [[
        ("📎 Send file", "send:7"), ("☁️ Mirror", "mirror:7")]]
    assert buttons(completion_keyboard(torrent(), can_send=False, can_mirror=True)) == [[
        ("☁️ Mirror", "mirror:7")]]


def mirrored(state: MirrorState, **changes: object) -> Torrent:
    mirror = Mirror(state=state, destination="dav:up/<ubuntu>.iso", bytes=350 * MIB,
                    total_bytes=700 * MIB, speed=2 * MIB, eta_seconds=175, attempt=1,
                    attempts=4)
    return torrent(state=TorrentState.COMPLETE, completed_bytes=700 * MIB,
                   mirror=dataclasses.replace(mirror, **changes))  # type: ignore[arg-type]


def test_the_upload_shows_like_the_download_with_a_stop_button() -> None:
    shown = mirrored(MirrorState.UPLOADING)
    text = progress_text(shown)
    assert text.endswith("☁️ Uploading to <code>dav:up/&lt;ubuntu&gt;.iso</code>\n"
                         f"<code>{progress_bar(0.5)}</code> 50%\n"
                         "350.0 MiB of 700.0 MiB\n↑ 2.0 MiB/s · ETA 2m 55s")
    assert progress_percent(shown) == 50 and percent(shown) == 100
    assert buttons(progress_keyboard(shown)) == [[("⏹ Stop upload", "mirror:7:stop")]]
    seeding = dataclasses.replace(shown, state=TorrentState.SEEDING)
    assert buttons(progress_keyboard(seeding))[1] == [("⏹ Stop upload", "mirror:7:stop")]


@pytest.mark.parametrize(("state", "changes", "line"), [
    (MirrorState.QUEUED, {}, "☁️ Waiting to upload to <code>dav:up/&lt;ubuntu&gt;.iso</code>"),
    (MirrorState.VERIFYING, {}, "☁️ Checking the upload to <code>dav:up/&lt;ubuntu&gt;.iso"
     "</code>"),
    (MirrorState.RETRYING, {"attempt": 2, "retry_in": 8.0, "error": "down <now>"},
     "Trying again in 8s: down &lt;now&gt;"),
    (MirrorState.FAILED, {"error": "gone"}, "☁️ Upload to <code>dav:up/&lt;ubuntu&gt;.iso"
     "</code> failed: gone"),
    (MirrorState.STOPPED, {}, "☁️ Upload to <code>dav:up/&lt;ubuntu&gt;.iso</code> stopped"),
    (MirrorState.DONE, {"local_deleted": True}, "☁️ Uploaded to <code>dav:up/&lt;ubuntu&gt;"
     ".iso</code> (moved: the local files are deleted)"),
])
def test_every_state_of_an_upload_has_its_line(state: MirrorState, changes: dict[str, object],
                                               line: str) -> None:
    shown = mirrored(state, **changes)
    assert line in progress_text(shown)
    if state.is_final:
        assert progress_keyboard(shown) is None


def test_mirror_news_says_where_with_the_link_or_why_not() -> None:
    done = mirror_done_text(mirrored(MirrorState.DONE, link="https://x.example/s/<1>"))
    assert done == ("☁️ <b>ubuntu.iso</b> is uploaded (#7) to "
                    "<code>dav:up/&lt;ubuntu&gt;.iso</code>.\n"
                    "Size 700.0 MiB, checked at the destination.\n"
                    "Link: https://x.example/s/&lt;1&gt;")
    failed = mirror_failed_text(mirrored(MirrorState.FAILED, attempt=4, error="no <route>"))
    assert failed == ("❌ <b>ubuntu.iso</b> could not be uploaded (#7) to "
                      "<code>dav:up/&lt;ubuntu&gt;.iso</code> after 4 attempts: "
                      "no &lt;route&gt;\nThe files on this server are kept. Try again with "
                      "/mirror 7.")


def test_failure_and_alert_texts_escape() -> None:
    text = failure_text(torrent(state=TorrentState.ERROR, error="disk <full>"))
    assert text == "❌ <b>ubuntu.iso</b> failed (#7): disk &lt;full&gt;"
    assert "no reason" in failure_text(torrent(state=TorrentState.ERROR, error=None))
    assert engine_alert_text("fatal", "crashed <3 times>").endswith("crashed &lt;3 times&gt;")
    assert "running again" in engine_alert_text("restarted", "")


# --- /status -------------------------------------------------------------------------------------

def overview(torrents: list[Torrent], total: int | None = None, page: int = 0,
             pages: int = 1) -> StatusPage:
    return StatusPage(tuple(torrents), len(torrents) if total is None else total, page, pages)


def test_status_overview_paginates_with_prev_refresh_next() -> None:
    first = [torrent(id=i, name=f"t{i}") for i in range(23, 13, -1)]
    text, markup = status_view(overview(first, 23, 0, 3))
    assert text.splitlines()[0] == "<b>Downloads</b> (23) · page 1/3"
    assert "#23 <b>t23</b>" in text and "#14 <b>t14</b>" in text
    assert buttons(markup) == [[("↻ Refresh", "status:0"), ("Next ▶", "status:1")]]
    text, markup = status_view(overview(first, 23, 1, 3))
    assert buttons(markup) == [[("◀ Prev", "status:0"), ("↻ Refresh", "status:1"),
                                ("Next ▶", "status:2")]]
    text, markup = status_view(overview(first[:3], 23, 2, 3))
    assert "page 3/3" in text
    assert buttons(markup) == [[("◀ Prev", "status:1"), ("↻ Refresh", "status:2")]]


def test_status_shows_each_state_in_words() -> None:
    items = [
        torrent(id=3, name="queued", state=TorrentState.QUEUED, queue_position=1),
        torrent(id=1, name="old-done", state=TorrentState.COMPLETE, completed_bytes=700 * MIB),
    ]
    text, _ = status_view(overview(items))
    assert text.index("queued") < text.index("old-done")  # the page's order is kept
    assert "#1 in the queue" in text
    assert "complete 100%" in text


def test_status_says_where_another_nodes_download_is() -> None:
    text, _ = status_view(overview([
        torrent(id=4, name="there", state=TorrentState.COMPLETE, completed_bytes=700 * MIB,
                node="alpha", elsewhere="on node alpha, stopped 3 min ago"),
        torrent(id=5, name="here", state=TorrentState.COMPLETE, completed_bytes=700 * MIB,
                node="beta")]))
    assert "complete 100% · 🖥 on node alpha, stopped 3 min ago" in text
    assert text.count("🖥") == 1


def test_empty_status() -> None:
    text, markup = status_view(overview([]))
    assert "Nothing here yet" in text
    assert buttons(markup) == [[("↻ Refresh", "status:0")]]


# --- /files, help, refusal -----------------------------------------------------------------------

def test_files_text_numbers_and_marks() -> None:
    entries = [FileEntry(1, "pack/a.bin", 2 * MIB, MIB, True),
               FileEntry(2, "pack/<b>.bin", MIB, 0, False)]
    text = files_text(torrent(name="pack"), entries)
    assert "1. ✅ pack/a.bin (2.0 MiB 50%)" in text
    assert "2. ▫️ pack/&lt;b&gt;.bin (1.0 MiB)" in text
    assert "/files 7 1,3-5" in text
    assert "not known yet" in files_text(torrent(), [])
    assert "can no longer be chosen" in files_text(torrent(state=TorrentState.COMPLETE), [])


def test_files_text_fits_one_message() -> None:
    entries = [FileEntry(i, f"folder/{'n' * 80}{i}.bin", MIB) for i in range(1, 500)]
    text = files_text(torrent(), entries)
    assert len(text) < 4096
    assert "more" in text


def test_help_and_refusal() -> None:
    assert "/torrent" in help_text(50 * MIB) and "50.0 MiB" in help_text(50 * MIB)
    assert "123" in refusal_text(123, 123, chat_refused=False)
    assert "ARIABOT_ALLOWED_USERS" in refusal_text(123, 123, chat_refused=False)
    assert "ARIABOT_ALLOWED_CHATS" in refusal_text(1, -100, chat_refused=True)


def test_status_shows_where_an_upload_is() -> None:
    text, _ = status_view(overview([mirrored(MirrorState.UPLOADING),
                                    mirrored(MirrorState.DONE)]))
    assert "complete 100% · ☁️ uploading 50%" in text
    assert "complete 100% · ☁️ uploaded" in text


@pytest.mark.parametrize(("done", "text"), [
    ({}, "; its files are kept."),
    ({"files_deleted": True}, "; its files are deleted."),
    ({"kept_for": 4}, "; its files were kept: #4 uses the same name."),
    ({"files_deleted": True, "upload_stopped": True},
     "; its files are deleted. Its upload to the mirror is stopped."),
])
def test_a_cancels_answer_says_what_really_happened(done: dict[str, object],
                                                     text: str) -> None:
    assert Cancellation(torrent(), **done).outcome == text  # type: ignore[arg-type]


def test_the_mini_app_button_is_offered_in_private_chats_only() -> None:
    url = "https://files.example.org/app/"
    private, group = torrent(chat_id=7), torrent(chat_id=-1001)
    markup = progress_keyboard(private, app_url=url)
    assert markup is not None
    [button] = markup.inline_keyboard[-1]
    assert (button.text, button.web_app.url if button.web_app else None) == ("📱 Open app", url)
    done = completion_keyboard(dataclasses.replace(private, state=TorrentState.COMPLETE),
                               can_send=False, app_url=url)
    assert done is not None and done.inline_keyboard[-1] == (button,)
    for markup in (progress_keyboard(group, app_url=url), progress_keyboard(private)):
        assert markup is not None
        assert all(b.web_app is None for row in markup.inline_keyboard for b in row)
    assert completion_keyboard(group, can_send=False, app_url=url) is None


@pytest.mark.parametrize(("miniapp_url", "button_url"), [
    ("https://files.example.org/app/", "https://files.example.org/app/"),
    ("http://files.example.org/app/", ""),  # Telegram would refuse the whole message
    ("", ""),
])
def test_buttons_open_only_an_https_mini_app(miniapp_url: str, button_url: str) -> None:
    config = BotConfig(token="1:x", download_dir=Path("/d"), miniapp_url=miniapp_url)
    assert config.app_button_url == button_url
