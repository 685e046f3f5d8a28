"""The patient's device check, in real Chromium on a phone, in English and in Chinese: what the patient can tap
works as soon as it is offered, whatever the checks still running.

Screenshots are saved where TELEMED_TEST_SCREENSHOTS says (not committed) for a person to look at."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from .conftest import checked
from .test_room_layout import LOCALES, patient_on_a_phone, words

pytestmark = pytest.mark.e2e

# The page's microphone check listens through an AnalyserNode: while window.telemedQuiet is true it hears
# silence, as from a microphone in a quiet room, so the check is still listening (for up to 8 s).
QUIET_MICROPHONE = """
window.telemedQuiet = true;
const listen = AnalyserNode.prototype.getFloatTimeDomainData;
AnalyserNode.prototype.getFloatTimeDomainData = function (samples) {
  listen.call(this, samples);
  if (window.telemedQuiet) samples.fill(0);
};
"""


# The browser's prompt for the camera and microphone refused once (the patient tapped "Block"), then allowed.
REFUSED_ONCE = """
let refused = false;
const open = MediaDevices.prototype.getUserMedia;
MediaDevices.prototype.getUserMedia = function (constraints) {
  if (!refused) {
    refused = true;
    return Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
  }
  return open.call(this, constraints);
};
"""


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_test_sound_answers_while_the_microphone_is_still_being_checked(client: TestClient,
                                                                                 browser: Browser,
                                                                                 locale: str) -> None:
    """Guards the early tap: "Play a test sound" is offered as soon as the camera and microphone are open, and
    once it answered only after both checks had finished (the microphone's waits for a sound, up to 8 s), so a
    patient's first tap did nothing. Here the microphone is quiet while the patient taps: the question comes;
    "No" is said at once to have failed; "Yes" then marks the speaker, and the summary says nothing yet (it
    once said some checks had failed while they were still running); when the room makes a sound the
    microphone passes and all is well."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    patient, _guest = await patient_on_a_phone(browser, base, client, locale, page="check")
    await patient.add_init_script(QUIET_MICROPHONE)
    await patient.reload()
    await patient.get_by_role("button", name=_("Start the check")).click()
    play = patient.get_by_role("button", name=_("Play a test sound"))
    await expect(play).to_be_enabled(timeout=10_000)
    await play.click()
    summary = patient.locator("#check-summary")
    await patient.get_by_role("button", name=_("No")).click()  # a failure is said at once, checks running or not
    await expect(summary).to_have_text(_("Some checks did not pass. You can still join; the doctor may be able "
                                         "to help."))
    await patient.get_by_role("button", name=_("Yes")).click()  # (they heard it after all)
    await expect(patient.locator("#check-speaker")).to_have_attribute("data-state", "ok")
    microphone = patient.locator("#check-microphone")
    assert await microphone.get_attribute("data-state") != "ok"  # still listening: the tap came first
    await expect(patient.locator("#to-room")).to_have_attribute("aria-disabled", "true")
    await expect(summary).to_have_text("")  # not "some checks did not pass": none has failed

    await patient.evaluate("window.telemedQuiet = false")
    await expect(microphone).to_have_attribute("data-state", "ok", timeout=10_000)
    await expect(patient.locator("#to-room")).to_have_attribute("aria-disabled", "false", timeout=10_000)
    await expect(summary).to_have_text(_("Everything works. You can go to the waiting room."))
    await checked(patient, f"check-early-tap-phone-{locale}")
    await patient.context.close()


@pytest.mark.parametrize("locale", LOCALES)
async def test_trying_again_after_refusing_the_camera_starts_the_camera_and_microphone_afresh(
        client: TestClient, browser: Browser, locale: str) -> None:
    """Guards the second try: a patient who refused the camera and microphone (the browser's prompt) is told why
    once, on the camera's row, and that the checks did not pass; when they start the check again and allow
    them, the two rows are running again, not still marked refused, and the summary says nothing until they
    pass (it once went on saying some checks did not pass)."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    patient, _guest = await patient_on_a_phone(browser, base, client, locale, page="check")
    await patient.add_init_script(REFUSED_ONCE + QUIET_MICROPHONE)
    await patient.reload()
    start = patient.get_by_role("button", name=_("Start the check"))
    await start.click()
    camera, microphone = patient.locator("#check-camera"), patient.locator("#check-microphone")
    await expect(camera).to_have_attribute("data-state", "failed")
    await expect(microphone).to_have_attribute("data-state", "failed")
    denied = _("The browser was not allowed to use the camera and microphone. Allow them in the address bar, "
               "then start again.")
    await expect(camera.locator(".result")).to_contain_text(denied)
    await expect(microphone.locator(".result")).not_to_contain_text(denied)  # said once, for both
    summary = patient.locator("#check-summary")
    await expect(summary).to_have_text(_("Some checks did not pass. You can still join; the doctor may be able "
                                         "to help."))
    await checked(patient, f"check-refused-phone-{locale}")

    await start.click()  # allowed this time; the room is quiet, so the microphone is still listening
    await expect(camera).to_have_attribute("data-state", "ok", timeout=10_000)
    assert await microphone.get_attribute("data-state") == "waiting"
    await patient.get_by_role("button", name=_("Play a test sound")).click()
    await patient.get_by_role("button", name=_("Yes")).click()
    await expect(summary).to_have_text("")
    await patient.evaluate("window.telemedQuiet = false")
    await expect(microphone).to_have_attribute("data-state", "ok", timeout=10_000)
    await expect(summary).to_have_text(_("Everything works. You can go to the waiting room."))
    await patient.context.close()
