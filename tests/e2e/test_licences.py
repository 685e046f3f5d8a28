"""Clinicians' licences in real Chromium, in English and in Chinese: an administrator enters a specialist's licence
number and title on the account page, which leaves it unverified; the specialist, logged in on a phone, sees on
their dashboard why they cannot host, be booked or sign; the administrator verifies the licence and the notice
goes; a host in a call whose licence changes loses, then gets back, the host's controls there at once. Each
page passes axe-core.

Set TELEMED_TEST_SCREENSHOTS to a directory to keep a screenshot of each page there (for looking at them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from server.i18n import translations

from ..conftest import login
from ..support.signaling_client import connect, guest_token
from ..support.signaling_client import expect as expect_message
from .conftest import checked, screenshot
from .test_admin_console import PHONE, _context, _log_in
from .test_consultation_call import open_consultation
from .test_session_ended import _in_the_room

pytestmark = pytest.mark.e2e
NEW_LICENCE = "110320000601234"


async def unverified(client: TestClient, username: str) -> Callable[[], Awaitable[None]]:
    """An administrator enters a new licence number for ``username`` (their title kept), which leaves the licence
    unverified; returns how the administrator then verifies it."""
    admin = await login(client, "admin")
    user_id = (await (await client.get("/api/me", headers=await login(client, username))).json())["id"]
    licence = (await (await client.get(f"/api/admin/accounts/{user_id}", headers=admin)).json())["licence"]
    form = {"licence_number": NEW_LICENCE, "professional_title": licence["professional_title"]}
    cleared = await client.put(f"/api/admin/accounts/{user_id}/licence", headers=admin, json=form)
    assert cleared.status == 200, await cleared.text()

    async def verify() -> None:
        verified = await client.post(f"/api/admin/accounts/{user_id}/licence/verify", headers=admin, json=form)
        assert verified.status == 200, await verified.text()
    return verify


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
    await licence.get_by_label(t("Licence number")).fill(NEW_LICENCE)
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


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_licence_changed_during_a_call_changes_the_host_controls(client: TestClient, browser: Browser,
                                                                        locale: str) -> None:
    """Guards what a host sees when an administrator changes their licence during a call: dr.li, in the demo
    consultation's room with dr.wang and the patient waiting in the lobby, is told in her language that she can no
    longer admit, record or remove, and at once the lobby (its names are for hosts), the record button and the
    Remove button on dr.wang's tile go while the call goes on; when the administrator verifies the new licence she
    is told she can again, and they come back. The page
    passes axe-core and is looked at on a 390 px phone."""
    t = translations(locale).gettext
    base = str(client.make_url("")).rstrip("/")
    page = await _in_the_room(browser, base, locale)
    lobby, record = page.locator("#lobby-panel"), page.locator("#toggle-recording")
    message = page.locator("#call-message")
    patient = await connect(client, await guest_token(client))
    await expect_message(patient, "lobby")
    await expect(lobby).to_be_visible()
    await expect(record).to_be_visible()
    wang = await open_consultation(browser, base, "dr.wang")  # his tile on her page has a Remove button
    removes = page.locator("figure.tile.remote button.remove")
    await expect(removes).to_have_count(1, timeout=30_000)

    verify = await unverified(client, "dr.li")
    await expect(message).to_have_text(t("An administrator changed your account: you can no longer admit, record or "
                                         "remove participants in this call."))
    await expect(lobby).to_be_hidden()
    await expect(record).to_be_hidden()
    await expect(removes).to_have_count(0)
    await expect(page.locator("figure.tile.remote")).to_have_count(1)
    await expect(page.locator("#connection-state")).to_have_attribute("data-state", "connected")
    await checked(page, f"room-no-longer-host-{locale}")
    await screenshot(page, f"room-no-longer-host-{locale}", phone=True)

    await verify()
    await expect(message).to_have_text(t("An administrator verified your licence: you can now admit, record and "
                                         "remove participants in this call."))
    await expect(lobby).to_be_visible()
    await expect(record).to_be_visible()
    await expect(removes).to_have_count(1)
    await patient.close()
    await wang.context.close()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_clinician_waiting_for_want_of_a_verified_licence_is_let_in_when_it_is_verified(
        client: TestClient, browser: Browser, locale: str) -> None:
    """Guards the way in for a clinician whose licence is not verified yet: dr.li's room page says in her
    language why she waits in the lobby; the moment an administrator verifies her licence she takes her seat
    without anyone admitting her, the page says she can now admit, record and remove, and the notice that she
    joins as a guest goes."""
    t = translations(locale).gettext
    base = str(client.make_url("")).rstrip("/")
    verify = await unverified(client, "dr.li")
    page = await _in_the_room(browser, base, locale, state="lobby")
    notice = page.locator("#licence-notice")
    await expect(notice).to_be_visible()
    await checked(page, f"room-licence-unverified-{locale}")

    await verify()
    await expect(page.locator("#connection-state")).to_have_attribute("data-state", "waiting")
    await expect(page.locator("#call-message")).to_have_text(t(
        "An administrator verified your licence: you can now admit, record and remove participants in this call."))
    await expect(notice).to_be_hidden()
    await expect(page.locator("#toggle-recording")).to_be_visible()
