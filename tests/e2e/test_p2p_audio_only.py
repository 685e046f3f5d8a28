"""Audio only in a call of two, in real Chromium, in English and in Chinese: there is no relay to ask, so the
patient's page asks the doctor's browser, which stops sending its video on that one call. The video bytes
stop arriving (getStats), the sound goes on, the tile says so with the same words as through the relay, and
"Show video" brings frames back, starting with a key frame. The choice carries over when a third person
makes the room relayed, and back when the room is peer to peer again.

Screenshots are saved where TELEMED_TEST_SCREENSHOTS says (not committed) for a person to look at."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, Route, expect

from server.appkeys import HUB, RELAYS
from server.settings import Settings
from signaling.events import RelayLost
from signaling.grants import room_id_for

from ..support.peers import until
from .conftest import checked, screenshot
from .test_room_layout import LOCALES, patient_on_a_phone, signed_in, words

pytestmark = pytest.mark.e2e

# What the page's own connections receive: video bytes (payload only: RTP padding is not counted), frames
# and key frames decoded, and audio packets, summed over its calls (or its relay connection).
RECEIVED = """async () => {
  const call = window.telemedCall;
  const pcs = call.relay ? [call.relay.pc] : [...call.peers.values()].map((p) => p.pc);
  const total = {bytes: 0, frames: 0, keyFrames: 0, audio: 0};
  for (const pc of pcs) {
    (await pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp") return;
      if (r.kind === "video") {
        total.bytes += r.bytesReceived || 0;
        total.frames += r.framesDecoded || 0;
        total.keyFrames += r.keyFramesDecoded || 0;
      } else total.audio += r.packetsReceived || 0;
    });
  }
  return total;
}"""

# Video bytes the page sends on its peer-to-peer calls.
SENT = """async () => {
  let bytes = 0;
  for (const peer of window.telemedCall.peers.values()) {
    (await peer.pc.getStats()).forEach((r) => {
      if (r.type === "outbound-rtp" && r.kind === "video") bytes += r.bytesSent || 0;
    });
  }
  return bytes;
}"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The relay runs on the node's own loop (not in a worker process), where the test reads what it chose."""
    return dataclasses.replace(settings, relay_workers=0)


async def received(page: Page) -> dict[str, int]:
    return await page.evaluate(RECEIVED)


async def video_stalls(page: Page) -> dict[str, int]:
    """Wait until no video bytes arrive and no frame is decoded (what was on its way has landed and been
    decoded), then hold that for two seconds more, while audio keeps arriving. Returns the last figures."""
    before = await received(page)
    for _attempt in range(20):
        await page.wait_for_timeout(1000)
        now = await received(page)
        if (now["bytes"], now["frames"]) == (before["bytes"], before["frames"]):
            break
        before = now
    else:
        raise AssertionError(f"video kept arriving: {before}")
    await page.wait_for_timeout(2000)
    after = await received(page)
    assert (after["bytes"], after["frames"]) == (before["bytes"], before["frames"]), "no video comes"
    assert after["audio"] > before["audio"] + 50, "the sound goes on"
    return after


async def sending_stalls(page: Page) -> None:
    """The page's calls send no video bytes for two seconds (after what was under way has gone)."""
    await page.wait_for_timeout(1000)
    before = await page.evaluate(SENT)
    await page.wait_for_timeout(2000)
    assert await page.evaluate(SENT) == before, "the sender sends no video on that call"


async def frames_come_back(page: Page, since: dict[str, int], *, within_s: float = 5.0) -> None:
    """Video is decoded again within a few seconds, starting with a new key frame."""
    started = await page.evaluate("performance.now()")
    for _attempt in range(int(within_s * 10)):
        now = await received(page)
        if now["frames"] > since["frames"] + 10 and now["keyFrames"] > since["keyFrames"]:
            break
        await page.wait_for_timeout(100)
    else:
        raise AssertionError(f"video did not come back within {within_s} s: {since} -> {now}")
    print(f"video back after {(await page.evaluate('performance.now()')) - started:.0f} ms")


async def _decoding(page: Page) -> dict[str, Any]:
    for _attempt in range(300):
        now = await received(page)
        if now["frames"] > 10:
            return now
        await page.wait_for_timeout(100)
    raise AssertionError(f"no video decoded: {now}")


async def _decoding_more(page: Page, since: dict[str, int]) -> dict[str, int]:
    """More than ten frames decoded since ``since``, within ten seconds."""
    for _attempt in range(100):
        now = await received(page)
        if now["frames"] > since["frames"] + 10:
            return now
        await page.wait_for_timeout(100)
    raise AssertionError(f"no video came: {since} -> {now}")


async def doctor_and_patient(client: TestClient, browser: Browser, locale: str) -> tuple[Page, Page]:
    """The doctor at a desk and the patient on a phone, admitted: two in the room, peer to peer, the
    patient's page decoding the doctor's video."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    doctor = await signed_in(browser, base, "dr.li", locale)
    await doctor.goto(f"{base}/consultations/1")
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "waiting", timeout=20_000)
    patient, _guest = await patient_on_a_phone(browser, base, client, locale)
    await doctor.locator("#lobby-list li").get_by_role("button", name=_("Admit")).click()
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "connected", timeout=30_000)
    assert await patient.evaluate("window.telemedCall.mode") == "p2p"
    await _decoding(patient)
    return doctor, patient


async def relayed_while_the_specialist_is_in(client: TestClient, browser: Browser, patient: Page, locale: str) -> None:
    """The specialist joins (three: relayed) and hangs up again; the room stays relayed, with two."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    specialist = await signed_in(browser, base, "dr.wang", locale)
    await specialist.goto(f"{base}/consultations/1")
    await expect(patient.locator("figure.remote")).to_have_count(2, timeout=30_000)
    assert await patient.evaluate("window.telemedCall.mode") == "relay"
    await specialist.get_by_role("button", name=_("Hang up")).click()
    await expect(patient.locator("figure.remote")).to_have_count(1, timeout=20_000)


async def relay_lost(client: TestClient) -> None:
    """The relay's worker dies (as its node would report it): a room of two goes back to peer to peer."""
    room_id = room_id_for(1)
    room = client.app[HUB].room(room_id)
    assert room is not None and room.mode == "relay"
    await client.app[HUB].submit(room_id, RelayLost(epoch=room.relay_epoch))
    await until(lambda: room.mode == "p2p", seconds=10)


@pytest.mark.parametrize("locale", LOCALES)
async def test_audio_only_in_a_call_of_two_stops_the_video_and_carries_over_the_relay(
        client: TestClient, browser: Browser, locale: str) -> None:
    """The patient (on a phone) and the doctor, peer to peer. The patient chooses audio only: the doctor's
    browser stops sending video on that call, the patient's page receives no video bytes and decodes no
    frames while audio keeps coming, and the doctor's tile says "Audio only, as you chose" with the button
    now "Show video", which brings frames back with a key frame. Chosen again, it holds when the specialist
    joins (relayed: the relay pauses the patient's video) and when the relay is lost and the two are peer
    to peer again; "Show video" then brings the doctor's video back on the new call. For as long as the
    patient takes audio only, the doctor's page marks the patient's tile "gets only your audio", peer to
    peer and through the relay (where the specialist's page says it too, from the relay's "audience").
    A screen the doctor shares reaches the patient all the same, and the mark goes while it does."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    doctor, patient = await doctor_and_patient(client, browser, locale)

    # Audio only, peer to peer: the same control as through the relay.
    await patient.get_by_role("button", name=_("Audio only")).click()
    show_video = patient.get_by_role("button", name=_("Show video"))
    await expect(show_video).to_have_attribute("aria-pressed", "true")
    tile = patient.locator("figure.remote")
    await expect(tile).to_have_attribute("data-video", "paused")
    await expect(tile.locator(".video-note")).to_have_text(_("Audio only, as you chose. The sound goes on."))
    stalled = await video_stalls(patient)
    await sending_stalls(doctor)
    takes_audio_only = doctor.locator("figure.remote [data-badge=audience]")
    await expect(takes_audio_only).to_have_text(_("gets only your audio"))
    await checked(patient, f"room-p2p-audio-only-phone-patient-{locale}")
    await checked(doctor, f"room-p2p-audio-only-desktop-doctor-{locale}")

    # A shared screen is what the patient is there to look at: it comes, audio only or not.
    await doctor.get_by_role("button", name=_("Share screen")).click()
    await expect(tile).to_have_attribute("data-video", "high", timeout=10_000)
    await expect(tile.locator(".video-note")).to_have_count(0)
    await expect(takes_audio_only).to_have_count(0)
    stalled = await _decoding_more(patient, stalled)
    await screenshot(patient, f"room-p2p-audio-only-screen-shared-phone-patient-{locale}")
    await doctor.get_by_role("button", name=_("Stop sharing")).click()
    await expect(tile).to_have_attribute("data-video", "paused", timeout=10_000)
    await expect(takes_audio_only).to_have_count(1)
    stalled = await video_stalls(patient)

    # Video again: frames come back, from a key frame, and the note goes.
    await show_video.click()
    await expect(patient.get_by_role("button", name=_("Audio only"))).to_have_attribute("aria-pressed", "false")
    await expect(tile.locator(".video-note")).to_have_count(0)
    await expect(takes_audio_only).to_have_count(0)
    await frames_come_back(patient, stalled)

    # Chosen again, then a third person: relayed, the relay is asked at once and the tiles keep the note.
    await patient.get_by_role("button", name=_("Audio only")).click()
    await video_stalls(patient)
    specialist = await signed_in(browser, base, "dr.wang", locale)
    await specialist.goto(f"{base}/consultations/1")
    await expect(patient.locator("figure.remote")).to_have_count(2, timeout=30_000)
    await expect(patient.locator("figure.remote .video-note")).to_have_count(2, timeout=20_000)
    assert await patient.evaluate("window.telemedCall.mode") == "relay"
    seat = await patient.evaluate("window.telemedCall.self.id")
    (session,) = client.app[RELAYS].values()
    await until(lambda: bool(session.relay.video_layout(seat))
                and set(session.relay.video_layout(seat).values()) == {"paused"}, seconds=20)
    await video_stalls(patient)
    await screenshot(patient, f"room-relayed-audio-only-kept-phone-patient-{locale}")
    # Through the relay, the others hear it from the relay: one mark each, on the patient's tile.
    for page in (doctor, specialist):
        await expect(page.locator("[data-badge=audience]")).to_have_count(1, timeout=20_000)
        await expect(page.locator(f'figure[data-participant="{seat}"] [data-badge=audience]')).to_have_text(
            _("gets only your audio"))
    await checked(specialist, f"room-relayed-audio-only-desktop-specialist-{locale}")
    # Through the relay too, the doctor's shared screen reaches the patient, and only the doctor's mark goes.
    doctor_tile = patient.locator(f'figure[data-participant="{await doctor.evaluate("window.telemedCall.self.id")}"]')
    await doctor.get_by_role("button", name=_("Share screen")).click()
    await expect(doctor_tile).to_have_attribute("data-video", "high", timeout=15_000)
    await expect(doctor.locator("[data-badge=audience]")).to_have_count(0, timeout=10_000)
    await expect(specialist.locator("[data-badge=audience]")).to_have_count(1)
    await doctor.get_by_role("button", name=_("Stop sharing")).click()
    await expect(doctor_tile).to_have_attribute("data-video", "paused", timeout=15_000)
    await expect(doctor.locator("[data-badge=audience]")).to_have_count(1, timeout=10_000)

    # The specialist leaves and the relay is lost: two again, peer to peer, still audio only.
    await specialist.get_by_role("button", name=_("Hang up")).click()
    await expect(patient.locator("figure.remote")).to_have_count(1, timeout=20_000)
    await relay_lost(client)
    for page in (patient, doctor):
        await expect(page.locator("#connection-state")).to_have_attribute("data-state", "connected", timeout=30_000)
    await expect(tile).to_have_count(1, timeout=20_000)
    await expect(tile).to_have_attribute("data-video", "paused", timeout=20_000)
    await expect(tile.locator(".video-note")).to_have_text(_("Audio only, as you chose. The sound goes on."))
    assert await patient.evaluate("window.telemedCall.mode") == "p2p"
    back = await video_stalls(patient)
    await sending_stalls(doctor)
    await expect(takes_audio_only).to_have_count(1)
    await show_video.click()
    await expect(tile.locator(".video-note")).to_have_count(0)
    await expect(takes_audio_only).to_have_count(0)
    await frames_come_back(patient, back)


async def test_a_page_resuming_into_a_room_back_to_peer_to_peer_leaves_the_relay_and_keeps_audio_only(
        client: TestClient, browser: Browser) -> None:
    """The patient chose audio only in a relayed room of two. Their socket drops and stays away (their room
    token requests are held back) while the relay is lost and the room goes back to peer to peer; they take
    their seat back, and "joined" says p2p. The page once kept its dead relay connection (only "mode" moved
    it back to peer to peer); it leaves the relay, calls the doctor, and the doctor's browser, told again,
    sends it no video until "Show video"."""
    _ = words("en")
    doctor, patient = await doctor_and_patient(client, browser, "en")
    await relayed_while_the_specialist_is_in(client, browser, patient, "en")
    await patient.get_by_role("button", name=_("Audio only")).click()
    await expect(patient.locator("figure.remote .video-note")).to_have_count(1, timeout=20_000)
    seat = await patient.evaluate("window.telemedCall.self.id")

    held = asyncio.Event()

    async def hold(route: Route) -> None:
        await held.wait()
        await route.continue_()
    await patient.route("**/room-token", hold)
    await patient.evaluate("window.telemedCall.signaling.dropConnection()")
    await expect(doctor.locator("[data-badge=reconnecting]")).to_have_count(1, timeout=10_000)
    await relay_lost(client)
    held.set()
    await expect(doctor.locator("[data-badge=reconnecting]")).to_have_count(0, timeout=20_000)
    assert await patient.evaluate("window.telemedCall.self.id") == seat, "the same seat"
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "connected", timeout=30_000)
    assert await patient.evaluate("[window.telemedCall.mode, window.telemedCall.relay, window.telemedCall.peers.size]"
                                  ) == ["p2p", None, 1]
    tile = patient.locator("figure.remote")
    await expect(tile).to_have_attribute("data-video", "paused", timeout=20_000)
    back = await video_stalls(patient)
    await patient.get_by_role("button", name=_("Show video")).click()
    await frames_come_back(patient, back)
