"""Video that adapts to each viewer's link, in real Chromium, in English and in Chinese: in a relayed room
every browser sends its camera twice (the camera and a low layer the relay can forward instead); a
patient on a phone may choose audio only, is told on each tile that the sound goes on, and gets video back
with one tap; a doctor whose link the relay judged too weak sees why on the tile and can ask to try video
again, which brings the low layer at once. Audio keeps playing throughout.

Screenshots are saved to screenshots/ (not committed) for a person to look at."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from media.layers import Layer, LinkReport
from media.relay import Relay
from server.appkeys import RELAYS
from server.settings import Settings

from ..support.peers import until
from .conftest import assert_accessible, screenshot
from .test_room_layout import LOCALES, in_call, patient_on_a_phone, words

pytestmark = pytest.mark.e2e

AUDIO_RECEIVED = """async () => {
  const report = await window.telemedCall.relay.pc.getStats();
  let packets = 0;
  report.forEach((r) => { if (r.type === "inbound-rtp" && r.kind === "audio") packets += r.packetsReceived; });
  return packets;
}"""

LOW_PICTURES = """() => [...document.querySelectorAll("figure.remote video")].every(
  (v) => v.videoHeight > 0 && v.videoHeight <= 180)"""


async def _seat(page: Page) -> str:
    return await page.evaluate("window.telemedCall.self.id")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The relay runs on the node's own loop (not in a worker process), where the test reads what it chose."""
    return dataclasses.replace(settings, relay_workers=0)


def _relay(client: TestClient) -> Relay:
    (session,) = client.app[RELAYS].values()
    return session.relay


@contextlib.asynccontextmanager
async def _lossy_link(relay: Relay, participant: str) -> AsyncIterator[None]:
    """While in it, the relay hears every half second that the viewer's link lost 5 % of its packets, as
    such a link's receiver reports would say: too many for the link to count as holding (so the relay
    does not climb a layer after its hold, as it would on the good link of this test's loopback), too few
    to step down. Without it the browser's own reports (no loss) would bring the video back after four
    seconds, and a slow machine takes longer than that to screenshot and check the page."""

    async def report() -> None:
        while True:
            relay._heard(relay.peers[participant], LinkReport(time.monotonic(), lost=0.05))
            await asyncio.sleep(0.5)

    task = asyncio.create_task(report())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _audio_flows(page: Page) -> None:
    """The page's relay connection receives audio packets, more of them a second later."""
    before = await page.evaluate(AUDIO_RECEIVED)
    await page.wait_for_timeout(1000)
    assert await page.evaluate(AUDIO_RECEIVED) > before + 20


@pytest.mark.parametrize("locale", LOCALES)
async def test_two_layers_audio_only_by_choice_and_video_paused_for_a_weak_link(client: TestClient, browser: Browser,
                                                                                locale: str) -> None:
    """Three in the room, so relayed: each browser publishes a low layer besides its camera. The patient
    (on a phone), whose link has paused their video, chooses audio only: the relay sends them no video, every
    tile says it is their choice (not their link's) and that the sound goes on, their audio keeps coming;
    "Show video" brings the pictures back. The relay then judges the doctor's link too weak (the report it
    acts on is fed in as its receiver-report path would): the doctor's tiles say why and offer to try again,
    which brings the low layer, marked "lower quality"."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    doctor, specialist = await in_call(browser, base, locale)
    patient, _guest = await patient_on_a_phone(browser, base, client, locale)
    await doctor.locator("#lobby-list li").get_by_role("button", name=_("Admit")).click()
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "connected", timeout=30_000)
    await expect(patient.locator("figure.remote")).to_have_count(2, timeout=30_000)
    relay = _relay(client)
    seats = {name: await _seat(page) for name, page in (("doctor", doctor), ("specialist", specialist),
                                                         ("patient", patient))}

    # Every browser sends two layers, and the relay receives both.
    await until(lambda: all({"high", "low"} <= set(relay.peers[s].sources) for s in seats.values()), seconds=20)
    await until(lambda: all(relay.peers[s].sources[Layer.LOW].packets > 30 for s in seats.values()), seconds=20)

    # The patient's link pauses their video (as a busy phone's may), and they choose audio only: the tiles
    # say it is their choice now, not their link's (once they went on offering to try video again).
    audio_only = patient.get_by_role("button", name=_("Audio only"))
    await expect(audio_only).to_be_visible()
    notes = patient.locator("figure.remote .video-note")
    async with _lossy_link(relay, seats["patient"]):
        relay._heard(relay.peers[seats["patient"]], LinkReport(time.monotonic(), lost=0.5))
        await expect(patient.locator('figure.remote[data-video="paused"]')).to_have_count(2, timeout=10_000)
        await audio_only.click()
        await expect(patient.get_by_role("button", name=_("Show video"))).to_have_attribute("aria-pressed", "true")
        await expect(notes).to_have_count(2, timeout=10_000)
        await expect(patient.locator('figure.remote[data-role="main"] .video-note')).to_have_text(
            _("Audio only, as you chose. The sound goes on."))
        assert set(relay.video_layout(seats["patient"]).values()) == {"paused"}
        await _audio_flows(patient)
        await screenshot(patient, f"room-audio-only-phone-patient-{locale}")
        await assert_accessible(patient)
    await patient.get_by_role("button", name=_("Show video")).click()
    await expect(notes).to_have_count(0, timeout=10_000)
    # (the low layer at once, the high one once the link has held: HOLD_SECONDS)
    await expect(patient.locator('figure.remote[data-video="high"]')).to_have_count(2, timeout=30_000)

    # The doctor's link: the relay judges it too weak for video, and it stays weak.
    async with _lossy_link(relay, seats["doctor"]):
        relay._heard(relay.peers[seats["doctor"]], LinkReport(time.monotonic(), lost=0.5))
        weak = doctor.locator("figure.remote .video-note")
        await expect(weak).to_have_count(2, timeout=10_000)
        on_main = doctor.locator('figure.remote[data-role="main"] .video-note')
        await expect(on_main).to_contain_text(_("Video paused: your connection is too weak for it just now. The "
                                                "sound goes on."))
        await _audio_flows(doctor)
        await screenshot(doctor, f"room-video-paused-desktop-doctor-{locale}")
        await assert_accessible(doctor)
        await on_main.get_by_role("button", name=_("Try video again")).click()
        await expect(doctor.locator('figure.remote[data-video="low"]')).to_have_count(2, timeout=10_000)
        badge = doctor.locator("figure.remote").first.locator('[data-badge="low"]')
        await expect(badge).to_have_text(_("lower quality"))
        await expect(weak).to_have_count(0)
        # The low layer plays: the doctor's video elements have pictures of the low layer's size.
        for _attempt in range(150):  # (wait_for_function evaluates a string, which the page's CSP forbids)
            if await doctor.evaluate(LOW_PICTURES):
                break
            await doctor.wait_for_timeout(100)
        assert await doctor.evaluate(LOW_PICTURES)
        await screenshot(doctor, f"room-video-low-desktop-doctor-{locale}")
