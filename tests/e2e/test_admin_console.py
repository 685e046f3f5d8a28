"""The administrator's console in real Chromium, in English and in Chinese: the administrator creates a hospital
in its time zone, a partnership led by it, and an account there; resets the account's password, which the new
user logs in with; disables the account, which throws the user out, and enables it again. Every console page
passes axe-core (no serious or critical violation), and the account list works on a 390x844 phone screen.

Set TELEMED_TEST_SCREENSHOTS to a directory to keep a screenshot of each page there (for looking at them)."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, BrowserContext, Page, expect

from server.i18n import translations

from .conftest import checked, submit_login

pytestmark = pytest.mark.e2e
QINGSHAN = "青山县人民医院 Qingshan County People's Hospital"
PHONE = {"width": 390, "height": 844}


async def _context(browser: Browser, locale: str) -> BrowserContext:
    return await browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})


async def _log_in(page: Page, base: str, locale: str, username: str, password: str, *,
                  then_change_to: str | None = None) -> None:
    """Log in; with a temporary password, set ``then_change_to`` first, as every page then asks."""
    t = translations(locale).gettext
    await page.goto(f"{base}/login")
    await submit_login(page, locale, username, password)
    if then_change_to:
        await expect(page.locator("#forced")).to_be_visible()
        await page.locator("input[name=new_password]").fill(then_change_to)
        await page.locator("input[name=new_password_again]").fill(then_change_to)
        await page.get_by_role("button", name=t("Change password")).click()
    await expect(page).to_have_url(f"{base}/")  # the home page (an administrator's has no consultations)


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_an_administrator_runs_the_console(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese: an administrator creates a hospital in its own time zone with a department, a
    partnership it leads, and an account there whose generated password logs in; resetting the password ends the
    user's session, disabling the account throws them out and enabling it lets them back in; every console page
    checked passes axe-core, and the account list and form fit a 390 px phone."""
    t = translations(locale).gettext

    base = str(client.make_url("")).rstrip("/")
    hospital = f"高山县医院 Gaoshan County Hospital {locale}"
    username = f"dr.gao-{locale.lower()}"
    admin = await (await _context(browser, locale)).new_page()
    admin.on("pageerror", lambda error: print(f"[admin] page error: {error}"))
    await _log_in(admin, base, locale, "admin", "telemed-demo")

    await admin.get_by_role("link", name=t("Administration"), exact=True).click()
    await expect(admin.get_by_role("heading", name=t("Administration"), exact=True)).to_be_visible()
    await expect(admin.locator("#counts li")).to_have_count(7)
    await checked(admin, f"admin-overview-{locale}")

    # A hospital in its own time zone, with a department.
    nav = admin.get_by_role("navigation", name=t("Administration"))
    await nav.get_by_role("link", name=t("Hospitals")).click()
    await checked(admin, f"admin-hospitals-{locale}")
    form = admin.locator("#new-hospital")
    await form.get_by_label(t("Name")).fill(hospital)
    await form.get_by_label(t("Level")).select_option(label=t("County hospital"))
    await form.get_by_label(t("Region")).fill("西川省高山县 Gaoshan County")
    await form.get_by_label(t("Time zone")).fill("Asia/Urumqi")
    await form.get_by_role("button", name=t("Create hospital")).click()
    await expect(admin.locator("#done")).to_have_text(t("The hospital was created."))
    await expect(admin.locator("#hospital-form input[name=timezone]")).to_have_value("Asia/Urumqi")
    department = admin.locator("#new-department")
    await department.get_by_label(t("Name")).fill("全科 General Practice")
    await department.get_by_role("button", name=t("Add department")).click()
    await expect(admin.locator("#done")).to_have_text(t("The department was added."))
    await checked(admin, f"admin-hospital-{locale}")

    await nav.get_by_role("link", name=t("Specialties")).click()
    await expect(admin.locator("#specialties li")).to_have_count(4)
    await checked(admin, f"admin-specialties-{locale}")

    # A partnership that the new hospital leads, with Qingshan as a member.
    await nav.get_by_role("link", name=t("Partnerships")).click()
    form = admin.locator("#new-partnership")
    await form.get_by_label(t("Name")).fill(f"高山医联体 Gaoshan Partnership {locale}")
    await form.get_by_label(t("Lead hospital")).select_option(label=hospital)
    await form.get_by_role("checkbox", name=QINGSHAN).check()
    await expect(form.get_by_role("checkbox", name=QINGSHAN)).to_be_checked()
    await checked(admin, f"admin-partnerships-{locale}")
    await form.get_by_role("button", name=t("Create partnership")).click()
    await expect(admin.locator("#done")).to_have_text(t("The partnership was created."))
    await expect(admin.locator("#members")).to_contain_text(QINGSHAN)
    await expect(admin.locator("#members")).to_contain_text(hospital)
    await checked(admin, f"admin-partnership-{locale}")

    # An account at the new hospital, with a password generated and shown once.
    await nav.get_by_role("link", name=t("Accounts")).click()
    await checked(admin, f"admin-users-{locale}")
    await admin.get_by_role("link", name=t("New account")).click()
    form = admin.locator("#new-account")
    await form.get_by_label(t("Username")).fill(username)
    await form.get_by_label(t("Full name")).fill("高远 Gao Yuan")
    await form.get_by_label(t("Role")).select_option(label=t("County doctor"))
    await form.get_by_label(t("Hospital")).select_option(label=hospital)
    await form.get_by_label(t("Department (optional)")).select_option(label="全科 General Practice")
    await checked(admin, f"admin-user-new-{locale}")
    await form.get_by_role("button", name=t("Create account")).click()
    await expect(admin.locator("#done")).to_have_text(t("The account was created."))
    first_password = await admin.locator("#generated-password output").inner_text()
    assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", first_password)

    # The user logs in; the administrator resets the password; the old session ends, the new password works.
    user_context = await _context(browser, locale)
    user = await user_context.new_page()
    await _log_in(user, base, locale, username, first_password, then_change_to="gao-own-password-1")
    await admin.locator("#reset-password").get_by_role("button", name=t("Reset password")).click()
    await expect(admin.locator("#done")).to_have_text(t("The password was changed; the account's sessions have ended."))
    password = await admin.locator("#generated-password output").inner_text()
    assert password != first_password
    await checked(admin, f"admin-user-password-{locale}")
    await user.reload()
    await expect(user).to_have_url(re.compile(r"/login\?"))
    await expect(user.locator(".notice")).to_have_text(
        t("Your session has ended: your password was changed or reset, or an administrator ended it. "
          "Please log in again."))
    password, temporary = "gao-own-password-2", password
    await _log_in(user, base, locale, username, temporary, then_change_to=password)

    # Disabled from the list: the user is thrown out; enabled again: they log in with the same password.
    await nav.get_by_role("link", name=t("Accounts")).click()
    await admin.get_by_role("searchbox", name=t("Search")).fill("gao")
    await admin.get_by_role("button", name=t("Search"), exact=True).click()
    row = admin.locator(f'tr[data-username="{username}"]')
    await expect(admin.locator("#accounts tbody tr")).to_have_count(1)
    await row.get_by_role("button", name=f"{t('Disable')} {username}").click()
    await expect(admin.locator("#done")).to_have_text(t("The account was disabled; its sessions have ended."))
    await expect(row.locator(".badge.status-disabled")).to_have_text(t("Disabled"))
    await user.reload()
    await expect(user).to_have_url(re.compile(r"/login\?"))
    await row.get_by_role("link", name=username, exact=True).click()
    await expect(admin.locator("#account-status")).to_have_text(t("Disabled"))
    await checked(admin, f"admin-user-disabled-{locale}")
    await admin.get_by_role("button", name=t("Enable account")).click()
    await expect(admin.locator("#account-status")).to_have_text(t("Active"))
    await _log_in(user, base, locale, username, password)

    # The same list on a phone: rows become cards, nothing runs off the screen.
    await admin.set_viewport_size(PHONE)
    await admin.goto(f"{base}/admin/users")
    await expect(admin.locator("#accounts tbody tr").first).to_be_visible()
    await checked(admin, f"admin-users-phone-{locale}")
    assert await admin.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await admin.goto(f"{base}/admin/users/new")
    await checked(admin, f"admin-user-new-phone-{locale}")
    assert await admin.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await user_context.close()
