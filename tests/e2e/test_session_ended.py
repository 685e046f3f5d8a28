"""A clinician in a call whose password an administrator resets, or whose session ends on this browser (it expires,
or is logged out in another tab), in real Chromium, in English and in Chinese: the room page says their session
has ended and why, in their language, and offers the way back (log in again, then the room)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from server.i18n import translations
from server.identity.auth import COOKIE_NAME

from ..conftest import login
from .conftest import checked, screenshot, submit_login

pytestmark = pytest.mark.e2e
TEMPORARY = "temporary-pass-1"


async def _in_the_room(browser: Browser, base: str, locale: str, *, state: str = "waiting") -> Page:
    """dr.li logged in through the form, in the demo consultation's room (alone: waiting for the others; or,
    with ``state`` "lobby", in its lobby)."""
    t = translations(locale).gettext
    page = await (await browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})).new_page()
    page.on("pageerror", lambda error: print(f"[dr.li] page error: {error}"))
    await page.goto(f"{base}/login")
    await submit_login(page, locale, "dr.li", "telemed-demo")
    await expect(page.get_by_role("heading", name=t("My consultations"))).to_be_visible()
    await page.goto(f"{base}/consultations/1")
    await expect(page.locator("#connection-state")).to_have_attribute("data-state", state)
    await expect(page.locator("#session-ended")).to_be_hidden()
    return page


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_reset_password_ends_the_call_with_the_way_back(client: TestClient, browser: Browser,
                                                                locale: str) -> None:
    """Guards what a clinician sees when an administrator resets their password during a call: dr.li's room page
    leaves the call at once, lets go of her camera and microphone, shows nothing more of the call (not its chat),
    and says in her language that her session has ended (not a failed connection, and no endless reconnecting),
    with *Log in again*, which leads to the login page saying why and, past the change of the temporary password,
    back to the room; the page passes axe-core and fits a 390 px phone."""
    t = translations(locale).gettext
    base = str(client.make_url("")).rstrip("/")
    page = await _in_the_room(browser, base, locale)
    state = page.locator("#connection-state")

    me = await client.get("/api/me", headers=await login(client, "dr.li"))
    reset = await client.post(f"/api/admin/accounts/{(await me.json())['id']}/password",
                              json={"password": TEMPORARY}, headers=await login(client, "admin"))
    assert reset.status == 200, await reset.text()

    await expect(state).to_have_attribute("data-state", "session-ended")
    await expect(state).to_have_text(t("Your session has ended"))
    ended = page.locator("#session-ended")
    await expect(ended.get_by_role("heading", name=t("Your session has ended"))).to_be_visible()
    await expect(ended).to_contain_text(t("Your password was reset or changed, or an administrator ended your "
                                          "sessions, so you left the consultation. Log in again to come back to it."))
    for gone in ("#stage", "#side", "#lobby-notice", ".room-head .muted >> nth=0", "#sharing-consent"):
        await expect(page.locator(gone)).to_be_hidden()  # nothing of the consultation but its title
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert await page.evaluate("window.telemedCall.localStream.getTracks().every((t) => t.readyState === 'ended')"), \
        "the camera and microphone are let go"
    await checked(page, f"room-session-ended-{locale}")
    await screenshot(page, f"room-session-ended-{locale}", phone=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    again = ended.get_by_role("link", name=t("Log in again"))
    box = await again.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box

    await again.click()
    await expect(page.get_by_text(t("Your session has ended: your password was changed or reset, or an "
                                    "administrator ended it. Please log in again."))).to_be_visible()
    await submit_login(page, locale, "dr.li", TEMPORARY)
    await expect(page.locator("#forced")).to_be_visible()
    await page.locator("input[name=new_password]").fill("her-own-pass-2")
    await page.locator("input[name=new_password_again]").fill("her-own-pass-2")
    await page.get_by_role("button", name=t("Change password")).click()
    await expect(page).to_have_url(f"{base}/consultations/1")
    await expect(state).to_have_attribute("data-state", "waiting")


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_session_logged_out_elsewhere_ends_the_call_at_its_next_reconnect(client: TestClient, browser: Browser,
                                                                                  locale: str) -> None:
    """Guards a clinician whose session on this browser ended while the call went on (logged out in another tab,
    or expired after a shift): the call itself goes on, but when its connection drops the room token is refused
    (401), and instead of reconnecting for ever the page says in her language that she is no longer logged in,
    lets go of the camera and offers *Log in again*, which leads to the login page and back to the room."""
    t = translations(locale).gettext
    base = str(client.make_url("")).rstrip("/")
    page = await _in_the_room(browser, base, locale)
    state = page.locator("#connection-state")
    [session] = [c for c in await page.context.cookies() if c["name"] == COOKIE_NAME]
    out = await client.post("/api/auth/logout", headers={"Authorization": f"Bearer {session['value']}"})
    assert out.status == 200, await out.text()
    await page.evaluate("window.telemedCall.signaling.dropConnection()")

    await expect(state).to_have_attribute("data-state", "logged-out")
    await expect(state).to_have_text(t("You are no longer logged in"))
    ended = page.locator("#session-ended")
    await expect(ended.locator("#session-ended-logged-out")).to_be_visible()
    await expect(ended.locator("#session-ended-reset")).to_be_hidden()
    await expect(page.locator("#stage")).to_be_hidden()
    assert await page.evaluate("window.telemedCall.localStream.getTracks().every((t) => t.readyState === 'ended')")
    await checked(page, f"room-logged-out-{locale}")

    await ended.get_by_role("link", name=t("Log in again")).click()
    await expect(page.get_by_text(t("Please log in to continue."))).to_be_visible()
    await submit_login(page, locale, "dr.li", "telemed-demo")
    await expect(page).to_have_url(f"{base}/consultations/1")
    await expect(state).to_have_attribute("data-state", "waiting")
