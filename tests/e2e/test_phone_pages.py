"""Clinicians' and auditors' pages on a phone (390x844) in real Chromium, in English and in Chinese: each fits the
screen (no page wider than the phone: tables become cards, long options and file inputs shrink) and passes
axe-core; a county doctor sends a draft referral from its page with the patient's consent.

Set TELEMED_TEST_SCREENSHOTS to a directory to keep a screenshot of each page there (for looking at them)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from server.i18n import translations

from ..conftest import login
from .conftest import assert_accessible, screenshot, submit_login

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


async def _referral(client: TestClient, *, submit: bool) -> int:
    """dr.li's referral of the demo patient to the provincial hospital: sent with the patient's consent, or a
    draft saved without it."""
    body = {"patient_id": 1, "specialty": "cardiology", "urgency": "urgent", "reason": "Palpitations at night",
            "target_hospital_id": 1, "question": "Is a Holter recording needed?", "submit": submit}
    response = await client.post("/api/referrals", headers=await login(client, "dr.li"),
                                 json={**body, "sharing_consent": "verbal"} if submit else body)
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


async def _fits(page: Page, what: str) -> None:
    """The page is no wider than the phone; otherwise the failure names the elements that stick out."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        out = await page.evaluate("""(limit) => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > limit + 0.5)
            .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''))
            .slice(0, 8)""", PHONE["width"])
        raise AssertionError(f"{what}: {width}px wide on a {PHONE['width']}px phone; sticking out: {out}")


async def _phone(browser: Browser, client: TestClient, locale: str, username: str) -> Page:
    context = await browser.new_context(locale=locale, viewport=PHONE)
    page = await context.new_page()
    await page.goto(str(client.make_url("/login")))
    await submit_login(page, locale, username, "telemed-demo")
    await page.wait_for_url(str(client.make_url("/")))
    return page


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_the_clinicians_and_auditors_pages_fit_a_phone(client: TestClient, browser: Browser, locale: str) -> None:
    """Guards what overflowed a 390-pixel screen: the home page's consultations (a table wider than the phone),
    the consultations list (a hospital's name squeezed into the label column), the audit trail (a table twice
    the phone's width, a filter as wide as its longest action), the new-referral form (a partner hospital's long
    name pushing every field off the card) and a referral's file input. Each now fits, and passes axe-core; an
    administrator's home page offers the console and no consultations of their own."""
    t = translations(locale).gettext
    referral = await _referral(client, submit=True)
    pages = {"dr.li": ["/", "/referrals/new", f"/referrals/{referral}"], "dr.wang": ["/consultations"],
             "auditor": ["/audit"]}
    for username, paths in pages.items():
        page = await _phone(browser, client, locale, username)
        for path in paths:
            await page.goto(str(client.make_url(path)))
            await screenshot(page, f"phone-{username}{path.replace('/', '-')}-{locale}")
            await _fits(page, f"{username} {path}")
            await assert_accessible(page)
        await page.context.close()
    admin = await _phone(browser, client, locale, "admin")
    await expect(admin.get_by_role("link", name=t("Open the administration console"))).to_be_visible()
    assert t("You have no consultations yet.") not in await admin.content()
    await screenshot(admin, f"phone-admin-home-{locale}")
    await assert_accessible(admin)
    await admin.context.close()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_draft_is_sent_from_its_page(client: TestClient, browser: Browser, locale: str) -> None:
    """Guards sending a draft from the pages on a phone: dr.li opens a draft saved without the patient's consent,
    is refused (the consent named) when she submits without recording it, then ticks it and submits: the
    referral is submitted, with the consent shown, and the form is gone."""
    t = translations(locale).gettext
    draft = await _referral(client, submit=False)
    page = await _phone(browser, client, locale, "dr.li")
    await page.goto(str(client.make_url(f"/referrals/{draft}")))
    form = page.locator("#submit-form")
    await expect(form).to_be_visible()
    await screenshot(page, f"phone-draft-{locale}")
    await assert_accessible(page)
    await form.get_by_role("button", name=t("Submit referral")).click()
    await expect(page.get_by_role("alert")).to_contain_text(t("The patient's consent to sharing their records"))
    await expect(page.locator("#referral-state")).to_have_attribute("data-state", "draft")
    await page.locator("#submit-form input[name=sharing_consent]").check()
    await page.locator("#submit-form").get_by_role("button", name=t("Submit referral")).click()
    await expect(page.locator("#referral-state")).to_have_attribute("data-state", "submitted")
    await expect(page.locator("#sharing-consent")).to_contain_text(
        t("The patient consented to sharing their records with the partner hospital."))
    await expect(page.locator("#submit-form")).to_have_count(0)
    await screenshot(page, f"phone-draft-sent-{locale}")
    await _fits(page, "the sent referral")
    await assert_accessible(page)
    await page.context.close()
