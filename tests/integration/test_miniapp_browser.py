"""The Mini App in a real browser: headless Chromium opens the page as Telegram would (its
signed initData in the URL fragment, where Telegram's own script puts it), on a phone's
screen, against the real stack of ``test_miniapp.py`` (the link server of ``ariabot run``, the
bot's rules from the real bot, the real manager and aria2c, the local swarm).

Screenshots (light and dark, 390 by 844) are kept in ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from manager import TorrentState
from tests.browser import HeadlessChromium
from tests.integration import test_miniapp
from tests.integration.test_bot import MIB, OTHER, USER
from tests.integration.test_manager import wait_state
from tests.integration.test_miniapp import GROUP, PUBLIC, App, init_data
from tests.runner import until
from tests.swarm import Swarm

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LIGHT = {"bg_color": "#ffffff", "text_color": "#000000", "hint_color": "#707579",
         "link_color": "#3390ec", "button_color": "#3390ec", "button_text_color": "#ffffff",
         "secondary_bg_color": "#f4f4f5", "destructive_text_color": "#e53935"}
DARK = {"bg_color": "#212121", "text_color": "#ffffff", "hint_color": "#aaaaaa",
        "link_color": "#8774e1", "button_color": "#8774e1", "button_text_color": "#ffffff",
        "secondary_bg_color": "#181818", "destructive_text_color": "#ff595a"}

pytestmark = pytest.mark.slow
app = test_miniapp.app  # the fixture: the Mini App of a running stack


def page_url(app: App, data: str, theme: dict[str, str] = LIGHT) -> str:
    """The page as Telegram opens it: initData and theme in the fragment."""
    return (f"{app.base}#tgWebAppData={quote(data, safe='')}&tgWebAppVersion=8.0"
            f"&tgWebAppThemeParams={quote(json.dumps(theme), safe='')}")


def card(number: int) -> str:
    return f"document.querySelector('#card-{number}')"


def click(selector: str) -> str:
    return f"(() => {{ document.querySelector({json.dumps(selector)}).click(); return true; }})()"


async def test_a_chat_is_managed_from_the_page_without_a_command(app: App, swarm: Swarm) -> None:
    manager = app.stack.manager
    seeded = swarm.add("series", [2 * MIB, 1 * MIB, 1 * MIB, 1 * MIB], seed=95)
    with swarm.throttled(192 * 1024), HeadlessChromium() as browser:
        number = (await manager.add(seeded.torrent_bytes, chat_id=USER,
                                    user_id=USER)).torrent.id
        browser.phone()
        await asyncio.to_thread(browser.open, page_url(app, init_data(USER)))

        def progress() -> float:
            return float(browser.wait_for(f"{card(number)}?.querySelector('progress')?.value",
                                          "a progress bar with a value"))

        first = await asyncio.to_thread(progress)
        await until(lambda: progress() > first, 60, "progress moving on the page")
        assert await asyncio.to_thread(browser.evaluate, "document.title") == "ariabot"
        assert await asyncio.to_thread(
            browser.evaluate, "document.documentElement.scrollWidth <= 390")
        await asyncio.to_thread(browser.screenshot, ARTIFACTS / "miniapp-light.png")

        # The file tree: untick two files and apply, in one action.
        await asyncio.to_thread(browser.evaluate, click(f"#card-{number} [data-action=files]"))
        await asyncio.to_thread(browser.wait_for,
                                "document.querySelectorAll('input.file-check').length === 4",
                                "the four files")
        for index in (2, 4):
            await asyncio.to_thread(browser.evaluate,
                                    click(f"input.file-check[data-index='{index}']"))
        await asyncio.to_thread(browser.evaluate, click("#apply-files"))
        await asyncio.to_thread(browser.wait_for,
                                "document.querySelector('#toast').textContent.includes('Saved')",
                                "the saved selection")
        assert [f.selected for f in await manager.files(number, USER)] == [
            True, False, True, False]
        await asyncio.to_thread(browser.evaluate, click("#back"))

        # Pause and resume from the card.
        await asyncio.to_thread(browser.evaluate, click(f"#card-{number} [data-action=pause]"))
        await asyncio.to_thread(browser.wait_for, f"{card(number)}.dataset.state === 'paused'",
                                "the card paused")
        assert (await manager.get(number, USER)).state is TorrentState.PAUSED
        await asyncio.to_thread(browser.evaluate, click(f"#card-{number} [data-action=resume]"))
        await asyncio.to_thread(browser.wait_for, f"{card(number)}.dataset.state !== 'paused'",
                                "the card resumed")
        assert (await manager.get(number, USER)).state is not TorrentState.PAUSED

        # Dark, as Telegram's dark theme asks (a new page: only the fragment differs).
        await asyncio.to_thread(browser.open, "about:blank")
        await asyncio.to_thread(browser.open, page_url(app, init_data(USER), DARK))
        await asyncio.to_thread(browser.wait_for, f"{card(number)} !== null", "the card")
        background = "getComputedStyle(document.body).backgroundColor"
        assert await asyncio.to_thread(browser.evaluate, background) == "rgb(33, 33, 33)"
        await asyncio.to_thread(browser.screenshot, ARTIFACTS / "miniapp-dark.png")

        # Cancel with its files, after the confirmation.
        await asyncio.to_thread(browser.evaluate, click(f"#card-{number} [data-action=cancel]"))
        await asyncio.to_thread(browser.wait_for, "document.querySelector('#confirm').open",
                                "the confirmation")
        await asyncio.to_thread(browser.evaluate, click("#delete-files"))
        await asyncio.to_thread(browser.evaluate, click("#confirm-yes"))
        toast = await asyncio.to_thread(
            browser.wait_for, "document.querySelector('#toast').textContent", "the answer")
        assert toast == f"#{number} is cancelled; its files are deleted."
        await asyncio.to_thread(browser.wait_for, f"{card(number)} === null", "the card gone")
    assert (await manager.get(number, USER)).state is TorrentState.CANCELLED
    assert not (app.stack.settings.download_dir / "torrents" / str(USER) / "series").exists()


async def test_a_member_without_rights_sees_no_controls_and_a_forged_page_is_refused(
    app: App, swarm: Swarm,
) -> None:
    manager = app.stack.manager
    seeded = swarm.add("theirs", 2 * MIB, seed=96)
    with swarm.throttled(64 * 1024), HeadlessChromium() as browser:
        number = (await manager.add(seeded.torrent_bytes, chat_id=GROUP,
                                    user_id=USER)).torrent.id
        browser.phone()
        await asyncio.to_thread(browser.open, page_url(
            app, init_data(OTHER, start_param=f"c{GROUP}")))
        await asyncio.to_thread(browser.wait_for, f"{card(number)} !== null", "the card")
        actions = await asyncio.to_thread(browser.evaluate, f"""
            [...{card(number)}.querySelectorAll('[data-action]')].map(b => b.dataset.action)""")
        assert "pause" not in actions and "cancel" not in actions, actions

        await asyncio.to_thread(browser.open, "about:blank")
        await asyncio.to_thread(browser.open, page_url(
            app, init_data(USER, token="42:NOT-THE-BOTS")))
        text = await asyncio.to_thread(
            browser.wait_for, "document.querySelector('#fatal')?.hidden === false && "
                              "document.querySelector('#fatal').textContent", "the refusal")
        assert "This request is not from Telegram." in text
        assert await asyncio.to_thread(browser.evaluate,
                                       "document.querySelector('#app').hidden") is True
    await manager.cancel(number, GROUP, delete_files=True)


async def test_a_web_login_link_opens_the_page_once_in_a_browser(app: App) -> None:
    answer = await app.stack.say(USER, "/web")
    [href] = re.findall(r'href="([^"]+)"', answer.params["text"])
    link = html.unescape(href).replace(PUBLIC + "/app/", app.base)
    with HeadlessChromium() as browser:
        # Not browser.open: the page takes the code out of its address at once.
        await asyncio.to_thread(browser.call, "Page.navigate", url=link)
        await asyncio.to_thread(browser.wait_for, "document.querySelector('#app')?.dataset.live"
                                " === 'true'", "the page signed in and live")
        # The code left the address bar; a reload of the tab keeps the session.
        assert await asyncio.to_thread(browser.evaluate, "location.hash") == ""
        await asyncio.to_thread(browser.call, "Page.reload")
        await asyncio.to_thread(browser.wait_for, "document.readyState === 'complete' && "
                                "document.querySelector('#app')?.dataset.live === 'true'",
                                "the reloaded page live")
    with HeadlessChromium() as second:  # whoever opens the link next
        await asyncio.to_thread(second.call, "Page.navigate", url=link)
        text = await asyncio.to_thread(
            second.wait_for, "document.querySelector('#fatal')?.hidden === false && "
                             "document.querySelector('#fatal').textContent", "the refusal")
        assert "This login link was already used" in text


async def test_a_finished_download_is_sent_to_the_chat_from_its_card(
    app: App, swarm: Swarm,
) -> None:
    server, seeded = app.stack.server, swarm.add("finished.bin", 1 * MIB, seed=100)
    mark = server.mark()
    server.push_document(USER, USER, seeded.torrent_bytes, "finished.torrent")
    await app.stack.answer(USER, mark, "is downloaded", timeout=60)
    [number] = [d["id"] for d in (await app.ask("GET", "api/downloads"))[1]["downloads"]]
    # Announced while it seeds for a moment (ARIABOT_SEED_TIME=0): a seeding card also
    # offers Pause. The finished card is the complete one.
    await wait_state(app.stack, number, TorrentState.COMPLETE)
    with HeadlessChromium() as browser:
        browser.phone()
        await asyncio.to_thread(browser.open, page_url(app, init_data(USER)))
        actions = await asyncio.to_thread(browser.wait_for, f"""{card(number)} &&
            [...{card(number)}.querySelectorAll('[data-action]')].map(b => b.dataset.action)""",
                                          "the finished card's buttons")
        assert actions == ["files", "link", "send", "cancel"]  # no mirror: none configured
        mark = server.mark()
        await asyncio.to_thread(browser.evaluate, click(f"#card-{number} [data-action=send]"))
        toast = await asyncio.to_thread(
            browser.wait_for, "document.querySelector('#toast').textContent", "the answer")
        assert toast == f"Sending #{number} (1 file) to the chat."
    sent = await server.wait_for("sendDocument", lambda r: r.params.get("chat_id") == USER,
                                 since=mark, timeout=30)
    assert sent.params["document"].size == MIB
