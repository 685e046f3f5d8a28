"""Recording in real Chromium: three participants in relay mode give consent, the doctor records, and
the finished recording plays in the browser."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from .test_consultation_call import assert_receiving, open_consultation, patient_arrives

pytestmark = pytest.mark.e2e

PLAY_RECORDING = """
async () => {
  const list = await (await fetch(window.roomConfigRecordingsUrl ?? "", {credentials: "same-origin"})).json();
  const recording = list.recordings.find((r) => r.status === "ready");
  if (!recording) return {error: "no ready recording", list};
  const video = document.createElement("video");
  video.muted = true;
  video.src = recording.media_url;
  document.body.append(video);
  await video.play();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const seekable = video.seekable.length ? video.seekable.end(0) : 0;
  return {currentTime: video.currentTime, width: video.videoWidth, duration: recording.duration,
          tracks: recording.tracks.length, seekable, decoded: video.getVideoPlaybackQuality().totalVideoFrames};
}
"""


async def play_a_ready_recording(page: Page, recordings_url: str) -> dict[str, Any]:
    """What the page's browser plays of the first ready recording at ``recordings_url`` (the listing), once
    there is one (trying for ten seconds)."""
    await page.evaluate(f"window.roomConfigRecordingsUrl = '{recordings_url}'")
    played = None
    for _ in range(40):
        played = await page.evaluate(PLAY_RECORDING)
        if "error" not in played:
            break
        await asyncio.sleep(0.25)
    assert played is not None and "error" not in played, played
    return played


async def test_doctor_records_with_everyones_consent_and_the_recording_plays(client: TestClient,
                                                                            browser: Browser) -> None:
    """Three in the room: the doctor's first attempt to record is refused for want of consent; once all three
    consent, everyone sees the recording indicator until the doctor stops it, and the finished recording (six tracks,
    3 to 6 s) plays and seeks in the browser."""
    base = str(client.make_url("")).rstrip("/")
    doctor = await open_consultation(browser, base, "dr.li")
    specialist = await open_consultation(browser, base, "dr.wang")
    await doctor.get_by_role("button", name="Invite the patient").click()
    await expect(doctor.locator("#invite-result")).to_be_visible()
    patient = await patient_arrives(browser, await doctor.locator("#invite-link").input_value())
    await doctor.locator("#lobby-list li").get_by_role("button", name="Admit").click()
    pages = (doctor, specialist, patient)
    await asyncio.gather(*(assert_receiving(page, peers=2) for page in pages))

    # Nobody has consented yet: the doctor's attempt is refused and says why.
    record = doctor.get_by_role("button", name="Start recording")
    await record.click()
    await expect(doctor.locator("#recording-message")).to_contain_text("consent")
    for page in pages:
        await page.locator("#recording-consent").check()
    await expect(doctor.locator("[data-badge=no-consent]")).to_have_count(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await record.click()
    for page in pages:
        await expect(page.locator("#recording-indicator")).to_be_visible()
    await asyncio.sleep(4)
    await doctor.get_by_role("button", name="Stop recording").click()
    for page in pages:
        await expect(page.locator("#recording-indicator")).to_be_hidden()
    recorded = loop.time() - started  # at most: from the click to start to everyone seeing it stopped

    played = await play_a_ready_recording(doctor, "/api/consultations/1/recordings")
    assert played["tracks"] == 6 and 3 <= played["duration"] <= recorded + 1, (played, recorded)
    # Decoded pictures, not a frame rate: three browsers on a busy 2-core machine send their cameras at a few
    # frames a second (the relay and recorder keep what they get; tests/media checks recorded frame rates).
    assert played["width"] > 0 and played["currentTime"] > 0.5 and played["decoded"] >= 3, played
    assert played["seekable"] > 3, played


async def test_a_patient_beside_the_doctor_consents_through_them(client: TestClient, browser: Browser) -> None:
    """The patient has no device of their own: recording waits for their consent, which the doctor records
    on their word from the room, and then the recording starts."""
    base = str(client.make_url("")).rstrip("/")
    doctor = await open_consultation(browser, base, "dr.li")
    specialist = await open_consultation(browser, base, "dr.wang")
    await asyncio.gather(assert_receiving(doctor), assert_receiving(specialist))
    for page in (doctor, specialist):
        await page.locator("#recording-consent").check()
    await expect(doctor.locator("[data-badge=no-consent]")).to_have_count(0)
    record = doctor.get_by_role("button", name="Start recording")
    await record.click()
    await expect(doctor.locator("#recording-message")).to_contain_text("the patient")
    await doctor.get_by_role("button", name="The patient beside me agrees to recording").click()
    await expect(doctor.locator("#recording-message")).to_contain_text("with you named as the doctor")
    await record.click()
    for page in (doctor, specialist):
        await expect(page.locator("#recording-indicator")).to_be_visible()
    await doctor.get_by_role("button", name="Stop recording").click()
