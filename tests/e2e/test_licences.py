"""Clinicians' licences in real Chromium, in English and in Chinese: an administrator enters a specialist's licence
number and title on the account page, which leaves it unverified; the specialist, logged in on a phone, sees on
their dashboard why they cannot host, be booked or sign; the administrator verifies the licence and the notice
goes. Each page passes axe-core.

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
async def test_an_administrator_verifies_a_licence_the_specialist_waits_for(client: TestClient, browser: Browser,
                                                                            locale: str) -> None:
    """In English and in Chinese: a mistyped licence number is refused and the licence stays verified; a new number
    and title leave it unverified, and the specialist, on a phone, is told they cannot host, be booked or sign until
    it is verified; once the administrator verifies it the notice goes; each page passes axe-core."""
    t = translations(locale).gettext
    base = str(client.make_url("")).rstrip("/")
    admin = await (await _context(browser, locale)).new_page()
    admin.on("pageerror", lambda error: print(f"[admin] page error: {error}"))
    await _log_in(admin, base, locale, "admin", "telemed-demo")

    await admin.goto(f"{base}/admin/users?q=dr.he")
    await admin.locator('tr[data-username="dr.he"] a.button').click()
    licence = admin.locator("#licence")
    await expect(licence.locator("#licence-state")).to_have_text(t("Verified"))
    # A mistyped number is refused beside its field, and nothing changes.
    await licence.get_by_label(t("Licence number")).fill("12345")
    await licence.get_by_role("button", name=t("Save licence")).click()
    await expect(admin.locator("#failure")).to_contain_text(
        t("A practising licence number (执业证书编码) is 15 digits."))
    await expect(admin.locator("#licence-state")).to_have_text(t("Verified"))
    licence = admin.locator("#licence")
    await licence.get_by_label(t("Licence number")).fill("110320000601234")
    await licence.get_by_label(t("Professional title")).select_option(label=t("Chief physician"))
    await licence.get_by_role("button", name=t("Save licence")).click()
    await expect(admin.locator("#licence-state")).to_have_text(t("Not verified"))
    await expect(admin.locator("#licence-unverified")).to_be_visible()
    await checked(admin, f"admin-licence-unverified-{locale}")

    # The specialist, on a phone, is told what the unverified licence keeps from them.
    phone = await browser.new_context(locale=locale, viewport=PHONE)
    specialist = await phone.new_page()
    await _log_in(specialist, base, locale, "dr.he", "telemed-demo")
    notice = specialist.locator("#licence-notice")
    await expect(notice).to_contain_text(t("Your licence has not been verified by an administrator yet; until it is "
                                           "you cannot host consultations, be booked or sign reports."))
    assert await specialist.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scroll"
    await checked(specialist, f"licence-notice-{locale}")

    await admin.get_by_role("button", name=t("Verify licence")).click()
    await expect(admin.locator("#licence-state")).to_have_text(t("Verified"))
    await expect(admin.locator("#licence-verified")).to_contain_text("系统管理员 Administrator")
    await checked(admin, f"admin-licence-verified-{locale}")
    await admin.goto(f"{base}/admin/users?q=dr.he")
    await expect(admin.locator('tr[data-username="dr.he"] .licence-state')).to_have_text(t("Verified"))

    await specialist.reload()
    await expect(specialist.get_by_role("heading", name=t("My consultations"))).to_be_visible()
    await expect(specialist.locator("#licence-notice")).to_have_count(0)
