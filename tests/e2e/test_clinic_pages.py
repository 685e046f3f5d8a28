"""The clinic's pages in real Chromium, in English and in Chinese: a county doctor registers a patient,
finds them by national ID, sets up a consultation with two specialists of the partner hospital and invites
the patient (the QR code loads under the CSP, the link is copied to the clipboard with a visible
confirmation); a specialist edits their weekly hours and time off; and opening a notification lowers the
unread count in the top bar. Screenshots of each page go to screenshots/ (not committed) for a person to look at."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient
from babel.dates import get_day_names
from playwright.async_api import Browser, Page, expect

from server.i18n import translations

from ..conftest import login
from .conftest import screenshot

pytestmark = pytest.mark.e2e
NATIONAL_ID = "11010519491231002X"
PHONE = {"width": 390, "height": 844}


async def _logged_in(browser: Browser, base: str, username: str, locale: str,
                     t: Callable[[str], str]) -> Page:
    context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[{username}] page error: {error}"))
    await page.goto(f"{base}/login")
    await page.get_by_label(t("Username")).fill(username)
    await page.get_by_label(t("Password")).fill("telemed-demo")
    await page.get_by_role("button", name=t("Log in")).click()
    await expect(page.get_by_role("heading", name=t("My consultations"))).to_be_visible()
    return page


async def _refer_to_wang(client: TestClient, reason: str) -> None:
    """A referral from dr.li naming dr.wang, which notifies him."""
    response = await client.post("/api/referrals", headers=await login(client, "dr.li"), json={
        "patient_id": 1, "specialty": "cardiology", "urgency": "urgent", "reason": reason,
        "target_hospital_id": 1, "target_specialist_id": 2, "question": "Is this cardiac syncope?",
        "sharing_consent": "verbal"})
    assert response.status == 201, await response.text()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_clinic_pages(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese: a county doctor is told of a missing field beside it, registers a patient and finds
    them by national ID typed in lower case; sets up a consultation with two specialists and invites the patient, the
    QR code loading under the CSP and the link copied to the clipboard; a specialist adds weekly hours and time off;
    opening a notification lowers the unread count and marking all read clears it."""
    base = str(client.make_url("")).rstrip("/")
    t = translations(locale).gettext

    # A county doctor registers a patient and finds them again by national ID.
    doctor = await _logged_in(browser, base, "dr.li", locale, t)
    nav = doctor.locator("nav.topbar-links")
    await nav.get_by_role("link", name=t("Patients"), exact=True).click()
    await screenshot(doctor, f"patients-{locale}")
    await doctor.get_by_role("link", name=t("Register a patient")).click()
    await doctor.get_by_role("button", name=t("Register")).click()  # nothing filled in: told beside the field
    await expect(doctor.locator("#error-name")).to_have_text(t("Please fill this in."))
    await screenshot(doctor, f"patient-new-errors-{locale}")
    await doctor.get_by_label(t("Full name")).first.fill("王秀英 Wang Xiuying")
    await doctor.get_by_label(t("Sex")).select_option(label=t("Female"))
    await doctor.get_by_label(t("Year of birth")).fill("1949")
    await doctor.get_by_label(t("Phone")).fill("138 0000 0000")
    await doctor.get_by_label(t("National ID (optional)")).fill(NATIONAL_ID)
    await doctor.get_by_role("button", name=t("Register")).click()
    await expect(doctor.locator("#patient-name")).to_have_text("王秀英 Wang Xiuying")
    chart = doctor.url

    await nav.get_by_role("link", name=t("Patients"), exact=True).click()
    await doctor.get_by_label(t("National ID"), exact=True).fill(NATIONAL_ID.lower())
    await doctor.get_by_role("button", name=t("Find by ID")).click()
    found = doctor.locator("#patient-list li")
    await expect(found).to_have_count(1)
    await screenshot(doctor, f"patients-found-{locale}")
    await found.get_by_role("link", name="王秀英 Wang Xiuying").click()
    assert doctor.url == chart
    await screenshot(doctor, f"patient-{locale}")

    # ... sets up a consultation with two specialists of the partner hospital and invites the patient.
    await doctor.get_by_role("link", name=t("Set up a consultation")).click()
    await doctor.get_by_label(t("Title")).fill("多学科会诊 MDT")
    await doctor.get_by_label("王芳 Wang Fang").check()
    await doctor.get_by_label("周杰 Zhou Jie").check()
    await doctor.get_by_label(t("Duration")).select_option(label=t("%(minutes)s minutes") % {"minutes": 60})
    await expect(doctor.locator("input[name=invite]")).to_be_checked()
    await screenshot(doctor, f"consultation-new-{locale}")
    await screenshot(doctor, f"consultation-new-{locale}", phone=True)
    await doctor.get_by_role("button", name=t("Set up the consultation")).click()
    await expect(doctor.get_by_role("heading", name=t("Invite the patient"))).to_be_visible()
    qr = doctor.get_by_role("img", name=t("QR code of the invitation link"))
    await expect(qr).to_be_visible()
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the data: QR code loads under the CSP"
    link = await doctor.locator("input[id^=link-]").input_value()
    assert "/visit/" in link
    message = await doctor.locator("textarea[id^=message-]").input_value()
    assert link in message and "王秀英 Wang Xiuying" in message
    await doctor.get_by_role("button", name=t("Copy link")).click()
    await expect(doctor.locator("[id$=-copied][data-state=copied]").first).to_have_text(t("Link copied."))
    assert await doctor.evaluate("navigator.clipboard.readText()") == link
    await screenshot(doctor, f"invitations-{locale}")
    await screenshot(doctor, f"invitations-{locale}", phone=True)

    # A specialist keeps their hours: Sunday morning added, and a week of time off.
    await _refer_to_wang(client, "Palpitations")
    await _refer_to_wang(client, "Syncope")
    specialist = await _logged_in(browser, base, "dr.wang", locale, t)
    await specialist.locator("nav.topbar-links").get_by_role("link", name=t("Clinic hours")).click()
    sunday = get_day_names("wide", locale=locale.replace("-", "_"))[6]
    await specialist.get_by_label(t("%(day)s, new period from") % {"day": sunday}).fill("09:00")
    await specialist.get_by_label(t("%(day)s, new period until") % {"day": sunday}).fill("11:30")
    await specialist.get_by_role("button", name=t("Save the weekly hours")).click()
    await expect(specialist.get_by_text(t("The weekly hours are saved."))).to_be_visible()
    await expect(specialist.locator("fieldset[data-weekday='6'] input[name='start-6-0']")).to_have_value("09:00")
    await specialist.get_by_label(t("First day")).fill("2030-05-03")
    await specialist.get_by_label(t("Last day")).fill("2030-05-07")
    await specialist.get_by_label(t("Note (optional)")).fill("学术会议 congress")
    await specialist.get_by_role("button", name=t("Add time off")).click()
    await expect(specialist.locator("#time-off-list li")).to_have_count(1)
    await screenshot(specialist, f"hours-{locale}")
    await screenshot(specialist, f"hours-{locale}", phone=True)

    # ... and opens a notification: the count in the top bar drops, then "mark all read" clears it.
    count = specialist.locator("#unread-count")
    await expect(count).to_have_attribute("data-count", "2")
    await specialist.locator("#nav-notifications").click()
    await screenshot(specialist, f"notifications-{locale}")
    await specialist.locator("#notifications li.unread a").first.click()
    await expect(specialist.locator("#referral-state")).to_be_visible()
    await expect(count).to_have_attribute("data-count", "1")
    await specialist.locator("#nav-notifications").click()
    await specialist.get_by_role("button", name=t("Mark all read")).click()
    await expect(count).to_have_count(0)
    await expect(specialist.locator("#notifications li.unread")).to_have_count(0)
