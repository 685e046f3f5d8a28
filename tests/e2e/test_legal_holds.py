"""Legal holds in real Chromium, in English and in Chinese: an auditor places a hold on a patient from the
holds page, the patient's doctor sees it on the chart (on a phone-sized screen too), and the auditor releases it.
Every page passes axe-core.

Set TELEMED_TEST_SCREENSHOTS to a directory to keep a screenshot of each page there (for looking at them)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from server.i18n import translations

from .conftest import checked
from .test_admin_console import PHONE, _context, _log_in

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_an_auditor_places_and_releases_a_hold_the_doctor_sees(client: TestClient, browser: Browser,
                                                                     locale: str) -> None:
    """In English and in Chinese: an auditor places a legal hold on a patient (nothing is placed until its number is
    given); the patient's doctor, on a phone, sees the hold on the chart but not the auditor's reason; once the
    auditor releases it, the chart no longer shows it; each page passes axe-core."""
    t = translations(locale).gettext

    base = str(client.make_url("")).rstrip("/")
    auditor = await (await _context(browser, locale)).new_page()
    await _log_in(auditor, base, locale, "auditor", "telemed-demo")
    await auditor.get_by_role("link", name=t("Legal holds")).click()
    await expect(auditor.get_by_role("heading", name=t("Legal holds"), exact=True)).to_be_visible()
    await expect(auditor.locator("#empty")).to_be_visible()
    await checked(auditor, f"holds-empty-{locale}")

    form = auditor.locator("#new-hold")
    await form.get_by_label(t("A patient")).check()
    await form.get_by_role("button", name=t("Place the hold")).click()  # nothing typed: the browser asks first
    await expect(auditor.locator("#empty")).to_be_visible()
    await form.get_by_label(t("Its number")).fill("1")
    await form.get_by_label(t("Reason")).fill("医疗纠纷投诉 Complaint 2026-17")
    await form.get_by_role("button", name=t("Place the hold")).click()
    await expect(auditor.locator("#done")).to_have_text(t("The legal hold was placed."))
    row = auditor.locator("#holds tbody tr").first
    await expect(row).to_have_attribute("data-active", "true")
    await expect(row).to_contain_text(t("Patient #%(number)s") % {"number": 1})
    await checked(auditor, f"holds-standing-{locale}")

    doctor_context = await browser.new_context(locale=locale, viewport=PHONE)
    doctor = await doctor_context.new_page()
    await _log_in(doctor, base, locale, "dr.li", "telemed-demo")
    await doctor.goto(f"{base}/patients/1")
    await expect(doctor.locator("#legal-hold")).to_contain_text(t("Under legal hold"))
    await expect(doctor.locator("#legal-hold")).not_to_contain_text("Complaint")
    await checked(doctor, f"chart-held-phone-{locale}")

    await row.get_by_label(t("Why it is released")).fill("已结案 Closed")
    await row.get_by_role("button", name=t("Release")).click()
    await expect(auditor.locator("#done")).to_have_text(t("The legal hold was released."))
    await expect(auditor.locator("#holds tbody tr").first).to_have_attribute("data-active", "false")
    await checked(auditor, f"holds-released-{locale}")

    await doctor.reload()
    await expect(doctor.get_by_role("heading", name="张伟 Zhang Wei")).to_be_visible()
    await expect(doctor.locator("#legal-hold")).to_have_count(0)
