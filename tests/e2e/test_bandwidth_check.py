"""The device check's bandwidth measure, in real Chromium, on a phone, in English and in Chinese: the
patient sees their connection's speed; on a slow link they are offered audio only, already chosen, and the
relayed room they then join sends them no video, while the admitting doctor reads the measure.

Screenshots are saved where TELEMED_TEST_SCREENSHOTS says (not committed) for a person to look at."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Locator, Page, Route, expect

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


def speed(kbps: int, _: Any) -> str:
    """A speed as the page must word it (web/static/js/link-speed.js), in the reader's language."""
    if kbps > 100_000:
        return _("more than 100 Mbit/s")
    if kbps < 1000:
        return _("{n} kbit/s").format(n=kbps)
    # halves away from zero on the exact decimal, as the page's Intl.NumberFormat does (54050 kbit/s is 54.1, where
    # the binary float's :.1f said 54.0)
    return _("{n} Mbit/s").format(n=(Decimal(kbps) / 1000).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


async def measured(row: Locator) -> tuple[int, int]:
    """The kbit/s down and up the check measured, as it keeps them on its row."""
    return (int(await row.get_attribute("data-down-kbps") or "0"),
            int(await row.get_attribute("data-up-kbps") or "0"))


def bandwidth(down: int, up: int, _: Any) -> str:
    return _("{down} down · {up} up").format(down=speed(down, _), up=speed(up, _))


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
    """On a fast link the check shows the speeds down and up in the reader's words (kbit/s, Mbit/s with one
    decimal, or "more than 100 Mbit/s": a loopback link measures hundreds of Mbit/s, once shown as a raw
    six-figure kbit/s), offers nothing, and keeps the measure, in kbit/s, for the room token request; the
    room button does not wait on it."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    patient, guest = await _at_the_check(browser, base, client, locale)
    await patient.get_by_role("button", name=_("Start the check")).click()
    row = patient.locator("#check-bandwidth")
    await expect(row).to_have_attribute("data-state", "ok", timeout=20_000)
    down, up = await measured(row)
    assert down >= 300 and up >= 300
    await expect(row.locator(".result")).to_have_text(bandwidth(down, up, _))
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
    down, up = await measured(row)
    assert up < 300
    await expect(row.locator(".result")).to_have_text(
        f"{bandwidth(down, up, _)} · {_('too slow for video')}")
    box = patient.get_by_label(_("Start with audio only"))
    await expect(box).to_be_checked()
    await _finish_the_check(patient, _)
    await checked(patient, f"check-bandwidth-slow-phone-{locale}")
    await patient.locator("#to-room").click()

    lobby = doctor.locator("#lobby-list li")
    await expect(lobby.locator(".device-check")).to_contain_text(bandwidth(down, up, _), timeout=20_000)
    await lobby.get_by_role("button", name=_("Admit")).click()
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "connected", timeout=30_000)
    await expect(patient.locator("figure.remote")).to_have_count(2, timeout=30_000)
    pressed = patient.locator("#audio-only")
    await expect(pressed).to_be_visible(timeout=20_000)
    await expect(pressed).to_have_attribute("aria-pressed", "true")
    await expect(pressed).to_have_text(_("Show video"))
    seat = await patient.evaluate("window.telemedCall.self.id")
    (session,) = client.app[RELAYS].values()
    await until(lambda: bool(session.relay.video_layout(seat))
                and set(session.relay.video_layout(seat).values()) == {"paused"}, seconds=20)
    await screenshot(patient, f"room-audio-only-from-check-phone-{locale}")


# kbit/s as measured, what the reader reads in English (the Chinese from the catalog, the same rule)
SPEEDS = [(0, "0 kbit/s"), (230, "230 kbit/s"), (999, "999 kbit/s"), (1000, "1.0 Mbit/s"), (1549, "1.5 Mbit/s"),
          (25_960, "26.0 Mbit/s"), (100_000, "100.0 Mbit/s"), (100_001, "more than 100 Mbit/s"),
          (588_674, "more than 100 Mbit/s")]


@pytest.mark.parametrize("locale", LOCALES)
async def test_speeds_are_worded_in_kbit_or_mbit_in_the_readers_language(client: TestClient, browser: Browser,
                                                                         locale: str) -> None:
    """link-speed.js, run in the check page with the page's own strings, words each speed by the rule: whole
    kbit/s below 1000, Mbit/s with one decimal up to 100 Mbit/s, and beyond that what the probe can tell:
    "more than 100 Mbit/s"."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    patient, _guest = await _at_the_check(browser, base, client, locale)
    shown = await patient.evaluate("""async (speeds) => {
        const { speed } = await import("/static/js/link-speed.js");
        const strings = JSON.parse(document.getElementById("check-strings").textContent);
        return speeds.map((kbps) => speed(kbps, strings));
    }""", [kbps for kbps, _english in SPEEDS])
    assert shown == [speed(kbps, _) for kbps, _english in SPEEDS]
    if locale == "en":
        assert shown == [english for _kbps, english in SPEEDS]
    else:
        assert "超过 100 Mbit/s" in shown
    await patient.context.close()
