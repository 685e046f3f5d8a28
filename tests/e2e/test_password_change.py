"""A temporary password in real Chromium, in English and in Chinese: the administrator resets a doctor's
password from the console; the doctor logs in with it and is taken to set their own before anything else
(a short one refused beside the field), then reaches the dashboard; later they change it again from the top
bar, which asks for the current one. Every page passes axe-core.

Set TELEMED_TEST_SCREENSHOTS to a directory to keep a screenshot of each page there (for looking at them)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from server.i18n import translations

from .conftest import checked, submit_login

pytestmark = pytest.mark.e2e



async def _log_in(page: Page, base: str, locale: str, username: str, password: str) -> None:
    await page.goto(f"{base}/login")
    await submit_login(page, locale, username, password)


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_reset_login_forced_change_dashboard(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese: a doctor logging in with the password an administrator reset must first set their
    own, and another page leads back there; a too-short one is refused beside the field; the new one goes on to the
    page asked for on the way, and the dashboard opens; a later change asks for the current password; each page
    passes axe-core."""
    t = translations(locale).gettext
    base = str(client.make_url("")).rstrip("/")
    admin = await (await browser.new_context(locale=locale)).new_page()
    await _log_in(admin, base, locale, "admin", "telemed-demo")
    await admin.goto(f"{base}/admin/users/1")  # dr.li
    await admin.locator("#reset-password").get_by_role("button", name=t("Reset password")).click()
    temporary = await admin.locator("#generated-password output").inner_text()

    doctor = await (await browser.new_context(locale=locale)).new_page()
    await _log_in(doctor, base, locale, "dr.li", temporary)
    await expect(doctor.get_by_role("heading", name=t("Change your password"))).to_be_visible()
    await expect(doctor.locator("#forced")).to_be_visible()
    await expect(doctor.locator("input[name=current_password]")).to_have_count(0)
    await checked(doctor, f"password-forced-{locale}")
    await doctor.goto(f"{base}/patients")  # any other page leads back here
    await expect(doctor.locator("#forced")).to_be_visible()

    # Too short: refused beside the field (the browser's own check is set aside to reach the server's).
    await doctor.locator("#password-form").evaluate("form => form.noValidate = true")
    await doctor.get_by_label(t("New password"), exact=True).fill("short")
    await doctor.get_by_label(t("New password again")).fill("short")
    await doctor.get_by_role("button", name=t("Change password")).click()
    await expect(doctor.locator("#error-new_password")).to_have_text(t("At least %(n)s characters.") % {"n": 10})
    await checked(doctor, f"password-too-short-{locale}")

    # (the field's name now carries its refusal too)
    await doctor.locator("input[name=new_password]").fill("li-own-password-1")
    await doctor.locator("input[name=new_password_again]").fill("li-own-password-1")
    await doctor.get_by_role("button", name=t("Change password")).click()
    await expect(doctor).to_have_url(f"{base}/patients")  # the page asked for on the way
    await doctor.goto(f"{base}/")
    await expect(doctor.get_by_role("heading", name=t("My consultations"))).to_be_visible()
    await checked(doctor, f"password-dashboard-{locale}")

    # Later, of their own accord: the current password is asked for.
    await doctor.get_by_role("link", name=t("Change password")).click()
    await doctor.get_by_label(t("Current password")).fill("li-own-password-1")
    await doctor.get_by_label(t("New password"), exact=True).fill("li-own-password-2")
    await doctor.get_by_label(t("New password again")).fill("li-own-password-2")
    await doctor.get_by_role("button", name=t("Change password")).click()
    await expect(doctor.locator("#changed")).to_have_text(
        t("Your password has been changed. Your sessions on other devices have ended."))
    await checked(doctor, f"password-changed-{locale}")
