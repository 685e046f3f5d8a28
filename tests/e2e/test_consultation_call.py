"""Two clinicians in real Chromium log in, open the same consultation, and see and hear each other."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

INBOUND_STATS = """
async () => {
  const call = window.telemedCall;
  const peer = call && [...call.peers.values()][0];
  if (!peer) return null;
  const result = {state: peer.pc.connectionState, video: null, audio: null};
  (await peer.pc.getStats()).forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    if (r.kind === "video") result.video = {framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth || 0};
    if (r.kind === "audio") result.audio = {packetsReceived: r.packetsReceived || 0,
                                            totalSamplesReceived: r.totalSamplesReceived || 0};
  });
  return result;
}
"""


async def open_consultation(browser: Browser, base: str, username: str) -> Page:
    """Log in through the form like a person, then open the consultation from the dashboard."""
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[{username}] page error: {error}"))
    await page.goto(f"{base}/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill("telemed-demo")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="My consultations")).to_be_visible()
    await page.get_by_role("link", name="Open").first.click()
    await expect(page.locator("#connection-state")).to_be_visible()
    return page


async def stats_when(page: Page, ready, within: float = 30) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    stats = None
    while asyncio.get_running_loop().time() < deadline:
        stats = await page.evaluate(INBOUND_STATS)
        if stats and ready(stats):
            return stats
        await asyncio.sleep(0.25)
    raise AssertionError(f"stats never became ready: {stats}")


def decoding(stats: dict[str, Any]) -> bool:
    return bool(stats["video"] and stats["video"]["framesDecoded"] > 0 and stats["audio"]
                and stats["audio"]["packetsReceived"] > 0)


async def assert_receiving(page: Page) -> None:
    first = await stats_when(page, decoding)
    await asyncio.sleep(1.5)
    later = await page.evaluate(INBOUND_STATS)
    assert later["video"]["framesDecoded"] > first["video"]["framesDecoded"], "video keeps being decoded"
    assert later["video"]["frameWidth"] > 0
    assert later["audio"]["packetsReceived"] > first["audio"]["packetsReceived"], "audio keeps arriving"
    assert later["audio"]["totalSamplesReceived"] > 0
    assert later["state"] == "connected"


async def test_doctor_and_specialist_see_and_hear_each_other(client: TestClient, browser: Browser) -> None:
    base = str(client.make_url("")).rstrip("/")
    doctor = await open_consultation(browser, base, "dr.li")
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "waiting")
    specialist = await open_consultation(browser, base, "dr.wang")

    await asyncio.gather(assert_receiving(doctor), assert_receiving(specialist))
    for page in (doctor, specialist):
        await expect(page.locator("#connection-state")).to_have_text("In call")
        await expect(page.locator("figure.remote video")).to_have_count(1)

    # Mute and camera off stop what is sent without renegotiating the call.
    await doctor.get_by_role("button", name="Mute").click()
    await doctor.get_by_role("button", name="Turn camera off").click()
    enabled = await doctor.evaluate(
        "() => window.telemedCall.localStream.getTracks().map((t) => [t.kind, t.enabled])")
    assert sorted(enabled) == [["audio", False], ["video", False]]
    await expect(doctor.get_by_role("button", name="Unmute")).to_be_visible()
    await doctor.get_by_role("button", name="Unmute").click()
    assert await doctor.evaluate("() => window.telemedCall.localStream.getAudioTracks()[0].enabled") is True

    # Hanging up ends the call here and takes the doctor's tile away on the other side.
    await doctor.get_by_role("button", name="Hang up").click()
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "ended")
    await expect(doctor.get_by_role("link", name="Rejoin")).to_be_visible()
    await expect(specialist.locator("figure.remote")).to_have_count(0)
    await expect(specialist.locator("#connection-state")).to_have_attribute("data-state", "waiting")
