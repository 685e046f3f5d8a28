"""The device check's bandwidth measure, in real Chromium, on a phone, in English and in Chinese: the
patient sees their connection's speed; on a slow link they are offered audio only, already chosen, and the
relayed room they then join sends them no video, while the admitting doctor reads the measure.

Screenshots are saved where TELEMED_TEST_SCREENSHOTS says (not committed) for a person to look at."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, Route, expect

from server.appkeys import RELAYS
from server.settings import Settings

from ..support.peers import until
from .conftest import checked, screenshot
from .test_room_layout import LOCALES, in_call, patient_on_a_phone, words

pytestmark = pytest.mark.e2e

UPLOAD_DELAY_S = 9  # 256 KiB in 9 s is about 230 kbit/s: under the check's 300


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The relay runs on the node's own loop (not in a worker process), where the test reads what it chose."""
    return dataclasses.replace(settings, relay_workers=0)


async def _at_the_check(browser: Browser, base: str, client: TestClient, locale: str) -> tuple[Page, str]:
    return await patient_on_a_phone(browser, base, client, locale, page="check")


async def _finish_the_check(patient: Page, _: Any) -> None:
    """The rest of the check passes: the microphone hears, the patient heard the test sound, the room opens."""
    await expect(patient.locator("#check-microphone")).to_have_attribute("data-state", "ok", timeout=10_000)
    await patient.get_by_role("button", name=_("Play a test sound")).click()
    await patient.get_by_role("button", name=_("Yes")).click()
    await expect(patient.locator("#to-room")).to_have_attribute("aria-disabled", "false", timeout=10_000)


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_check_shows_the_measured_bandwidth(client: TestClient, browser: Browser, locale: str) -> None:
    """On a fast link the check shows kbit/s down and up, offers nothing, and keeps the measure for the room
    token request; the room button does not wait on it."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    patient, guest = await _at_the_check(browser, base, client, locale)
    await patient.get_by_role("button", name=_("Start the check")).click()
    row = patient.locator("#check-bandwidth")
    await expect(row).to_have_attribute("data-state", "ok", timeout=20_000)
    assert int(await row.get_attribute("data-down-kbps") or "0") >= 300
    assert int(await row.get_attribute("data-up-kbps") or "0") >= 300
    await expect(row.locator(".result")).to_contain_text("kbit/s")
    await expect(patient.locator("#audio-only-offer")).to_be_hidden()
    await _finish_the_check(patient, _)
    await checked(patient, f"check-bandwidth-phone-{locale}")
    await patient.locator("#to-room").click()
    kept = await patient.evaluate(f"JSON.parse(sessionStorage.getItem('device-check:{guest}'))")
    assert kept["down_kbps"] >= 300 and kept["up_kbps"] >= 300
    assert await patient.evaluate(f"sessionStorage.getItem('device-check:{guest}:audio-only')") is None
    await patient.context.close()


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_slow_link_suggests_audio_only_and_the_relayed_room_honours_it(client: TestClient, browser: Browser,
                                                                               locale: str) -> None:
    """The upload is held back as a slow uplink would (the request reaches the server seconds late): the
    check says the link is too slow for video and offers audio only, ticked. In the room with the doctor and
    the specialist (three, so relayed) the patient's "Audio only" is pressed at once and the relay sends them
    no video; the doctor saw the measure in the lobby."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    doctor, _specialist = await in_call(browser, base, locale)
    patient, guest = await _at_the_check(browser, base, client, locale)

    async def slow(route: Route) -> None:
        await asyncio.sleep(UPLOAD_DELAY_S)
        await route.continue_()
    await patient.route("**/api/guest/bandwidth/upload", slow)
    await patient.get_by_role("button", name=_("Start the check")).click()
    row = patient.locator("#check-bandwidth")
    await expect(row).to_have_attribute("data-state", "low", timeout=30_000)
    await expect(row.locator(".result")).to_contain_text(_("too slow for video"))
    box = patient.get_by_label(_("Start with audio only"))
    await expect(box).to_be_checked()
    await _finish_the_check(patient, _)
    await checked(patient, f"check-bandwidth-slow-phone-{locale}")
    await patient.locator("#to-room").click()

    lobby = doctor.locator("#lobby-list li")
    await expect(lobby.locator(".device-check")).to_contain_text("kbit/s", timeout=20_000)
    await lobby.get_by_role("button", name=_("Admit")).click()
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "connected", timeout=30_000)
    await expect(patient.locator("figure.remote")).to_have_count(2, timeout=30_000)
    pressed = patient.locator("#audio-only")
    await expect(pressed).to_be_visible(timeout=20_000)
    await expect(pressed).to_have_attribute("aria-pressed", "true")
    await expect(pressed).to_have_text(_("Show video"))
    await expect(patient.locator("#audio-only-pending")).to_be_hidden()
    seat = await patient.evaluate("window.telemedCall.self.id")
    (session,) = client.app[RELAYS].values()
    await until(lambda: bool(session.relay.video_layout(seat))
                and set(session.relay.video_layout(seat).values()) == {"paused"}, seconds=20)
    await screenshot(patient, f"room-audio-only-from-check-phone-{locale}")
