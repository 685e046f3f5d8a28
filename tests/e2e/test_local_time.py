"""A patient reads times on their own device's clock, in real Chromium: a phone in Los Angeles, invited by a
hospital that keeps New York time, sees when the room opens in Los Angeles time with its zone's short name
(PST/PDT in English, GMT-8/GMT-7 in Chinese), in each language, while the countdown runs; the clinician's page
keeps the hospital's labelled time whatever their browser's zone.

Screenshots are saved to screenshots/ (not committed) for a person to look at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from server.appkeys import SETTINGS

from ..support.visits import consent, invite
from ..web.test_recording_pages import _set_zone
from ..web.test_room_page import _plan
from .conftest import assert_accessible, pass_identity_check, screenshot
from .test_room_layout import PHONE, signed_in, words

pytestmark = pytest.mark.e2e
BROWSER_ZONE = "America/Los_Angeles"
HOSPITAL_ZONE = "America/New_York"


def _hospital_text(moment: datetime) -> str:
    local = moment.astimezone(ZoneInfo(HOSPITAL_ZONE))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _browser_clock(moment: datetime, locale: str) -> tuple[str, tuple[str, ...]]:
    """The time of day on the browser's clock as ``locale`` writes it, and the zone labels it may carry."""
    local = moment.astimezone(ZoneInfo(BROWSER_ZONE))
    hours = local.utcoffset().total_seconds() / 3600  # type: ignore[union-attr]
    if locale == "en":
        return f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'}", (local.tzname() or "",)
    return f"{local:%H:%M}", (f"GMT{hours:+.0f}", f"UTC{hours:+.0f}", local.tzname() or "")


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_the_patient_reads_the_opening_on_their_phones_clock(client: TestClient, browser: Browser,
                                                                   locale: str) -> None:
    """In English and in Chinese: a patient's phone in Los Angeles shows when the room opens on its own clock, with
    the day and the zone's label, while the countdown runs, though the hospital keeps New York time; a doctor whose
    browser is in the same zone reads the hospital's time; both pages pass axe-core."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    await _set_zone(client, "dr.li", HOSPITAL_ZONE)
    guest = await invite(client)
    await consent(client, guest)
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=6)
    await _plan(client, 1, start)
    opens = start - timedelta(minutes=client.app[SETTINGS].room_opens_minutes_before)

    phone = await browser.new_context(locale=locale, timezone_id=BROWSER_ZONE, **PHONE)
    patient = await phone.new_page()
    errors: list[str] = []
    patient.on("pageerror", lambda error: errors.append(str(error)))
    await pass_identity_check(patient, base, guest)
    await patient.goto(f"{base}/visit/{guest}/room")
    await expect(patient.get_by_role("heading", name=_("The room is not open yet"))).to_be_visible()
    shown = patient.locator("#opens-at")
    await expect(shown).not_to_have_text(_hospital_text(opens))  # rewritten from the server's fallback
    text = await shown.inner_text()
    clock, labels = _browser_clock(opens, locale)
    assert clock in text, f"{text!r} should show {clock} on the phone's clock"
    assert any(label and text.endswith(f" {label}") for label in labels), f"{text!r} should end with one of {labels}"
    assert str(opens.astimezone(ZoneInfo(BROWSER_ZONE)).day) in text, "and the day there"
    assert await shown.get_attribute("title") == BROWSER_ZONE
    assert datetime.fromisoformat(await shown.get_attribute("datetime") or "") == opens
    await expect(patient.locator("#opens-in")).not_to_have_text("…")  # the countdown runs beside it
    assert not errors, errors
    await screenshot(patient, f"local-time-phone-patient-{locale}")
    await assert_accessible(patient)
    await phone.close()

    # The clinician in the same browser zone still reads the hospital's clock: they plan on its wall clock.
    doctor = await signed_in(browser, base, "dr.li", locale, timezone_id=BROWSER_ZONE)
    await doctor.goto(f"{base}/consultations/1")
    await expect(doctor.locator("#opens-at")).to_have_text(_hospital_text(opens))
    await screenshot(doctor, f"local-time-desktop-doctor-{locale}")
    await assert_accessible(doctor)
    await doctor.context.close()
