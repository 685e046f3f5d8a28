"""The patient's identity check in real Chromium on a phone (390x844), in English and Chinese, with axe-core:
a wrong answer is explained and a right one leads to consent; five wrong answers lock the link."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from server.appkeys import DATABASE
from server.i18n import translations
from server.models import Patient

from ..support.visits import invite
from .conftest import assert_accessible, screenshot

pytestmark = pytest.mark.e2e

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


async def _with_national_id(client: TestClient, last4: str) -> None:
    """The demo patient's record gets a national ID ending ``last4`` (the demo registers none)."""
    async with client.app[DATABASE].session() as session:
        patient = await session.get(Patient, 1)
        assert patient is not None
        patient.national_id_last4 = last4
        session.add(patient)
        await session.commit()


async def _answer(page: Page, name: str, last4: str) -> None:
    await page.locator("input[name=name]").fill(name)
    await page.locator("input[name=id_last4]").fill(last4)
    await page.locator("form[action$='/identity'] button[type=submit]").click()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_wrong_answer_is_explained_and_a_right_one_leads_to_consent(
        client: TestClient, browser: Browser, locale: str) -> None:
    """The link opens on the identity page; a wrong last four says the details do not match and how many
    tries remain, without saying which part; the name typed on a Chinese keyboard (full-width, spaced) and
    a lower-case x then lead to the consent page. Every state passes axe-core."""
    _ = translations(locale).gettext
    await _with_national_id(client, "123X")
    base = str(client.make_url("")).rstrip("/")
    guest = await invite(client, confirmed=False)
    page = await (await browser.new_context(locale=locale, **PHONE)).new_page()
    await page.goto(f"{base}/visit/{guest}")
    await expect(page.get_by_role("heading", name=_("Confirm who you are"))).to_be_visible()
    await expect(page.get_by_label(_("Full name"))).to_be_visible()
    await expect(page.get_by_label(_("Last four characters of your national ID"))).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, f"visit-identity-{locale}-390x844")

    await _answer(page, "张伟 Zhang Wei", "1234")
    alert = page.get_by_role("alert")
    # one sentence pair, without a stray space between the Chinese sentences
    await expect(alert).to_have_text(translations(locale).ngettext(
        "These details do not match the patient this link was sent to. You can try %(num)s more time before the "
        "link is locked.", "These details do not match the patient this link was sent to. You can try %(num)s "
        "more times before the link is locked.", 4) % {"num": 4})
    await expect(page.get_by_label(_("Last four characters of your national ID"))).to_have_value("")
    await assert_accessible(page)
    await screenshot(page, f"visit-identity-wrong-{locale}-390x844")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"

    await _answer(page, "张伟\u3000ＺＨＡＮＧ wei", "123x")
    await expect(page.get_by_role("heading", name=_("Before your video visit"))).to_be_visible()
    assert page.url == f"{base}/visit/{guest}"
    await assert_accessible(page)
    await page.context.close()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_five_wrong_answers_lock_the_link(client: TestClient, browser: Browser, locale: str) -> None:
    """After the fifth wrong answer the page says, in the patient's language, that the link is locked and
    to contact their clinic; opening the link again says the same, and the right answer no longer helps."""
    _ = translations(locale).gettext
    await _with_national_id(client, "123X")
    base = str(client.make_url("")).rstrip("/")
    guest = await invite(client, confirmed=False)
    page = await (await browser.new_context(locale=locale, **PHONE)).new_page()
    await page.goto(f"{base}/visit/{guest}/identity")
    for _n in range(5):
        await _answer(page, "李四 Li Si", "9876")
    locked = _("This link is locked after too many wrong answers. Please contact your clinic for a new link.")
    await expect(page.get_by_text(locked)).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, f"visit-identity-locked-{locale}-390x844")
    response = await page.goto(f"{base}/visit/{guest}")
    assert response is not None and response.status == 401
    await expect(page.get_by_text(locked)).to_be_visible()
    await expect(page.locator("input[name=name]")).to_have_count(0)
    await page.context.close()
