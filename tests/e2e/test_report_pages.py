"""The consultation report in real Chromium, in English and Chinese: the specialist finds the diagnosis by a word
(the suggestions come from the ICD-10 list as they type), signs the report from the referral page, and the
referring doctor downloads the signed PDF, acknowledges receipt and checks the signature; the pages pass axe and
fit a phone.

Screenshots are saved to screenshots/ (not committed) for a person to look at."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from ..server.api.test_referrals import booked_referral
from .conftest import assert_accessible, screenshot
from .test_room_layout import LOCALES, PHONE, signed_in, words

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_report_is_signed_and_acknowledged_from_the_referral_page(client: TestClient, browser: Browser,
                                                                            locale: str) -> None:
    """In English and in Chinese: the specialist gets ICD-10 suggestions for a word and signs the report from the
    referral page; the referring doctor downloads the signed PDF, acknowledges receipt and sees the signature hold;
    the pages pass axe-core, and the signed report fits a 390 px phone."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    referral, _known = await booked_referral(client)
    address = f"{base}/referrals/{referral['id']}"

    specialist = await signed_in(browser, base, "dr.wang", locale)
    await specialist.goto(address)
    form = specialist.locator("#report-form")
    await form.get_by_label(_("Findings")).fill("Exertional chest pain; ST depression in V4-V6.")
    diagnosis = form.get_by_label(_("Diagnosis (ICD-10 code)"))
    await diagnosis.press_sequentially("angina")
    # The suggestions come from the code list, codes as values and titles beside them.
    await expect(form.locator("datalist option[value='I20.8']")).to_have_count(1)
    await diagnosis.fill("I20.8")
    await form.get_by_label(_("Recommendations")).fill("Coronary angiography.")
    await screenshot(specialist, f"report-form-specialist-{locale}", full_page=True)
    await assert_accessible(specialist)
    await form.get_by_role("button", name=_("Sign the report and complete")).click()
    await expect(specialist.locator("#report-diagnosis")).to_contain_text("I20.8")
    await expect(specialist.locator("#amend")).to_be_visible()

    doctor = await signed_in(browser, base, "dr.li", locale)
    await doctor.goto(address)
    report = doctor.locator("#report")
    await expect(report).to_contain_text("Exertional chest pain")
    async with doctor.expect_download() as download:
        await report.get_by_role("link", name=_("Download the signed PDF")).click()
    assert (await (await download.value).path()).read_bytes().startswith(b"%PDF-")
    await report.get_by_role("button", name=_("Acknowledge receipt")).click()
    await expect(doctor.locator("#report")).to_contain_text(_("Receipt acknowledged"))
    await screenshot(doctor, f"report-signed-doctor-{locale}", full_page=True)
    await assert_accessible(doctor)
    await report.get_by_role("link", name=_("Check the signature")).click()
    await expect(doctor.locator("#verification")).to_have_attribute("data-holds", "true")
    await screenshot(doctor, f"report-verification-doctor-{locale}", full_page=True)
    await assert_accessible(doctor)

    phone = await signed_in(browser, base, "dr.li", locale, **PHONE)
    await phone.goto(address + "#report")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
    await screenshot(phone, f"report-signed-doctor-phone-{locale}", full_page=True)
