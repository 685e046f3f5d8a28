"""A consultation in real Chromium: the county doctor and the specialist see and hear each other, a patient
waits in the lobby until the doctor admits them, and a dropped connection resumes its seat."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

INBOUND_STATS = """
async () => {
  const call = window.telemedCall;
  if (!call) return null;
  const result = {};
  if (call.relay) {  // relay mode: one connection, a slot (audio and video mid) per remote participant
    const owners = {};
    for (const slot of call.relay.slots) {
      if (!slot.owner) continue;
      owners[slot.video.mid] = slot.owner;
      owners[slot.audio.mid] = slot.owner;
    }
    (await call.relay.pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp" || !(r.mid in owners)) return;
      const row = result[owners[r.mid]] ??= {state: call.relay.pc.connectionState, video: null, audio: null};
      if (r.kind === "video") row.video = {framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth || 0};
      if (r.kind === "audio") row.audio = {packetsReceived: r.packetsReceived || 0,
                                           totalSamplesReceived: r.totalSamplesReceived || 0};
    });
    return result;
  }
  for (const [id, peer] of call.peers) {
    const row = {state: peer.pc.connectionState, video: null, audio: null};
    (await peer.pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp") return;
      if (r.kind === "video") row.video = {framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth || 0};
      if (r.kind === "audio") row.audio = {packetsReceived: r.packetsReceived || 0,
                                           totalSamplesReceived: r.totalSamplesReceived || 0};
    });
    result[id] = row;
  }
  return result;
}
"""


async def logged_in(browser: Browser, base: str, username: str) -> Page:
    """Log in through the form like a person."""
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[{username}] page error: {error}"))
    await page.goto(f"{base}/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill("telemed-demo")
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{base}/")  # the home page (an auditor's lists no consultations of theirs)
    return page


async def open_consultation(browser: Browser, base: str, username: str) -> Page:
    page = await logged_in(browser, base, username)
    await page.get_by_role("link", name="Open").first.click()
    await expect(page.locator("#connection-state")).to_be_visible()
    return page


async def patient_arrives(browser: Browser, link: str, *, record: bool = False) -> Page:
    """A patient opens their invitation: says who they are, agrees to the video visit (and, if asked, to
    recording), passes the device check with the fake camera and microphone, hears the test sound, and goes
    to the waiting room."""
    patient = await (await browser.new_context(locale="en-US")).new_page()
    await patient.goto(link)
    await expect(patient.get_by_role("heading", name="Confirm who you are")).to_be_visible()
    await patient.get_by_label("Full name").fill("张伟 Zhang Wei")
    await patient.get_by_role("button", name="Continue").click()
    await expect(patient.get_by_role("heading", name="Before your video visit")).to_be_visible()
    await expect(patient.locator("#continue")).to_have_count(0)
    for purpose in ("video", "recording") if record else ("video",):
        await patient.locator(f"#{purpose}").get_by_role("button", name="I agree").click()
        await expect(patient.locator(f"#{purpose} .consent-state")).to_have_text("✓ You agreed.")
    await patient.locator("#continue").click()
    await patient.get_by_role("button", name="Start the check").click()
    await expect(patient.locator("#check-camera")).to_have_attribute("data-state", "ok", timeout=10_000)
    await expect(patient.locator("#check-microphone")).to_have_attribute("data-state", "ok", timeout=10_000)
    await expect(patient.locator("#check-network")).to_have_attribute("data-state", "ok")
    assert int(await patient.locator("#check-network").get_attribute("data-rtt") or "-1") >= 0
    await patient.get_by_role("button", name="Play a test sound").click()
    await patient.get_by_role("button", name="Yes").click()
    await expect(patient.locator("#check-summary")).to_have_text("Everything works. You can go to the waiting room.")
    await patient.get_by_role("link", name="Go to the waiting room").click()
    return patient


async def stats_when(page: Page, ready, within: float = 30) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    stats = None
    while asyncio.get_running_loop().time() < deadline:
        stats = await page.evaluate(INBOUND_STATS)
        if stats and ready(stats):
            return stats
        await asyncio.sleep(0.25)
    raise AssertionError(f"stats never became ready: {stats}")


def back_to_camera(peer_id: str):  # type: ignore[no-untyped-def]
    """The peer's video is its 640-wide fake camera again, not the 1280-wide screen. Under load Chromium
    may scale a camera down (its CPU adaptation), so anything up to 640 wide is the camera."""
    def ready(stats: dict[str, Any]) -> bool:
        return 0 < stats[peer_id]["video"]["frameWidth"] <= 640
    return ready


def decoding_from(count: int):  # type: ignore[no-untyped-def]
    def ready(stats: dict[str, Any]) -> bool:
        rows = list(stats.values())
        return len(rows) == count and all(
            r["video"] and r["video"]["framesDecoded"] > 0 and r["audio"] and r["audio"]["packetsReceived"] > 0
            for r in rows)
    return ready


async def assert_receiving(page: Page, peers: int = 1) -> None:
    """Video frames decoded and audio arriving from every remote participant, and still rising a moment later."""
    first = await stats_when(page, decoding_from(peers))
    await asyncio.sleep(1.5)
    later = await page.evaluate(INBOUND_STATS)
    for peer_id, row in first.items():
        now = later[peer_id]
        assert now["video"]["framesDecoded"] > row["video"]["framesDecoded"], "video keeps being decoded"
        assert now["video"]["frameWidth"] > 0
        assert now["audio"]["packetsReceived"] > row["audio"]["packetsReceived"], "audio keeps arriving"
        assert now["audio"]["totalSamplesReceived"] > 0
        assert now["state"] == "connected"


async def test_doctor_specialist_and_admitted_patient_see_and_hear_each_other(client: TestClient,
                                                                             browser: Browser) -> None:
    """Doctor and specialist see and hear each other peer to peer, a screen share too; the invited patient waits in
    the lobby with no media while the doctor sees their device check, and once admitted all three see and hear each
    other through the relay; mute and camera off disable the doctor's tracks and the others see the muted badge; a
    shared screen reaches everyone; chat reaches the patient too; hanging up takes the doctor's tile away."""
    base = str(client.make_url("")).rstrip("/")
    doctor = await open_consultation(browser, base, "dr.li")
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "waiting")
    specialist = await open_consultation(browser, base, "dr.wang")
    await asyncio.gather(assert_receiving(doctor), assert_receiving(specialist))
    for page in (doctor, specialist):
        await expect(page.locator("#connection-state")).to_have_text("In call")
        await expect(page.locator("figure.remote video")).to_have_count(1)
    # Peer to peer, a screen share replaces the camera on the call in place as well.
    doctor_id = await doctor.evaluate("window.telemedCall.self.id")
    await doctor.get_by_role("button", name="Share screen").click()
    await stats_when(specialist, lambda stats: stats[doctor_id]["video"]["frameWidth"] == 1280)
    await doctor.get_by_role("button", name="Stop sharing").click()
    await stats_when(specialist, back_to_camera(doctor_id))

    # The doctor invites the patient from the room; the patient opens the link, with no account.
    await doctor.get_by_role("button", name="Invite the patient").click()
    await expect(doctor.locator("#invite-result")).to_be_visible()
    link = await doctor.locator("#invite-link").input_value()
    assert "/visit/" in link
    patient = await patient_arrives(browser, link)
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "lobby")
    await expect(patient.get_by_role("heading", name="Please wait")).to_be_visible()
    await asyncio.sleep(1)
    assert await patient.evaluate("window.telemedCall.peers.size") == 0, "no media before admission"

    waiting = doctor.locator("#lobby-list li")
    await expect(waiting).to_have_count(1)
    await expect(waiting).to_contain_text("张伟 Zhang Wei")
    # What the patient's device check found, before the doctor lets them in.
    found = waiting.locator(".device-check")
    speed = r"(\d+ kbit/s|\d+\.\d Mbit/s|more than 100 Mbit/s)"
    await expect(found).to_have_text(re.compile(
        rf"^Camera ✓ · Microphone ✓ · Speaker ✓ · round trip \d+ ms · {speed} down · {speed} up$"))
    await expect(found).to_have_attribute("data-state", "ok")
    await waiting.get_by_role("button", name="Admit").click()
    await expect(patient.locator("#lobby-notice")).to_be_hidden()
    # With three in the room, media goes through the server's relay; nobody had to do anything.
    await asyncio.gather(assert_receiving(patient, peers=2), assert_receiving(doctor, peers=2),
                         assert_receiving(specialist, peers=2))
    for page in (doctor, specialist, patient):
        assert await page.evaluate("[window.telemedCall.mode, window.telemedCall.peers.size]") == ["relay", 0]
    await expect(doctor.locator("#lobby-list li")).to_have_count(0)

    # Mute and camera off stop what is sent, and the others see the microphone state.
    await doctor.get_by_role("button", name="Mute").click()
    await doctor.get_by_role("button", name="Turn camera off").click()
    enabled = await doctor.evaluate(
        "() => window.telemedCall.localStream.getTracks().map((t) => [t.kind, t.enabled])")
    assert sorted(enabled) == [["audio", False], ["video", False]]
    await expect(specialist.locator("[data-badge=muted]")).to_have_count(1)
    await doctor.get_by_role("button", name="Unmute").click()
    await expect(specialist.locator("[data-badge=muted]")).to_have_count(0)
    await doctor.get_by_role("button", name="Turn camera on").click()

    # The doctor shares the screen (Chromium's fake 1280x720 capture) in place of the camera: the others
    # receive it, see who is sharing, and their other streams carry on; stopping brings the camera back.
    await doctor.get_by_role("button", name="Share screen").click()
    for page in (specialist, patient):
        await stats_when(page, lambda stats: stats[doctor_id]["video"]["frameWidth"] == 1280)
    await expect(specialist.locator("[data-badge=screen]")).to_have_count(1)
    await asyncio.gather(assert_receiving(patient, peers=2), assert_receiving(specialist, peers=2))
    await doctor.get_by_role("button", name="Stop sharing").click()
    await stats_when(specialist, back_to_camera(doctor_id))
    await expect(specialist.locator("[data-badge=screen]")).to_have_count(0)

    # Chat reaches everyone, the patient included.
    await specialist.locator("#chat-text").fill("ECG attached in the record")
    await specialist.get_by_role("button", name="Send").click()
    for page in (doctor, patient, specialist):
        await expect(page.locator("#chat-lines li")).to_contain_text(["ECG attached in the record"])

    # Hanging up ends the call here and takes the doctor's tile away on the other sides.
    await doctor.get_by_role("button", name="Hang up").click()
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "ended")
    await expect(doctor.get_by_role("link", name="Rejoin")).to_be_visible()
    await expect(specialist.locator("figure.remote")).to_have_count(1)
    await expect(patient.locator("figure.remote")).to_have_count(1)


async def test_a_dropped_connection_resumes_and_media_keeps_flowing(client: TestClient, browser: Browser) -> None:
    """When the specialist's signaling connection drops, the doctor sees them reconnecting and then back; the
    specialist keeps the same seat, the doctor still has one remote tile, and video and audio keep flowing both ways."""
    base = str(client.make_url("")).rstrip("/")
    doctor = await open_consultation(browser, base, "dr.li")
    specialist = await open_consultation(browser, base, "dr.wang")
    await asyncio.gather(assert_receiving(doctor), assert_receiving(specialist))
    seat = await specialist.evaluate("window.telemedCall.self.id")

    await specialist.evaluate("window.telemedCall.signaling.dropConnection()")
    await expect(doctor.locator("[data-badge=reconnecting]")).to_have_count(1)
    await expect(doctor.locator("[data-badge=reconnecting]")).to_have_count(0, timeout=15_000)
    await expect(specialist.locator("#connection-state")).to_have_attribute("data-state", "connected")
    assert await specialist.evaluate("window.telemedCall.self.id") == seat, "the same seat, not a new participant"
    assert await doctor.locator("figure.remote").count() == 1
    await asyncio.gather(assert_receiving(doctor), assert_receiving(specialist))
