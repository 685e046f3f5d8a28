"""The consultation request in real Chromium, in English and Chinese: the county doctor fills in the request's
fields on the new referral form (the ICD-10 code suggested as they type) and sends it; the receiving
coordinator, on a phone, and the specialist asked for open the request from the referral page, read each field
under its heading, print it (only the form is printed) and download its PDF; every page passes axe.

Screenshots are saved to screenshots/ (not committed) for a person to look at."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from .conftest import assert_accessible, screenshot
from .test_room_layout import LOCALES, PHONE, signed_in, words

pytestmark = pytest.mark.e2e

QUESTION = "是否需要冠脉造影？能否在县医院继续药物治疗？"
HISTORY = "高血压十年，规律服用氨氯地平；吸烟四十年。"
RESULTS = "心电图：V4-V6 导联 ST 段压低 0.1 mV。肌钙蛋白 I 阴性。"


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_request_is_sent_and_read_as_the_paper_form(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese: the county doctor fills in and sends the request, an ICD-10 code suggested as they
    type; the coordinator on a phone and the specialist read every field under its heading within their screen's
    width, print without the top bar and tools, and download the request as a PDF; each page passes axe-core."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")

    doctor = await signed_in(browser, base, "dr.li", locale)
    await doctor.goto(f"{base}/referrals/new")
    form = doctor.locator("form.stacked")
    await form.get_by_label(_("Specialist (optional)")).select_option(label="王芳 Wang Fang")
    await form.get_by_label(_("Reason"), exact=True).fill("活动后胸痛三天")
    await form.get_by_label(_("Question for the specialist")).fill(QUESTION)
    await form.get_by_label(_("Working diagnosis")).fill("不稳定型心绞痛")
    code = form.get_by_label(_("ICD-10 code (optional)"))
    await code.press_sequentially("I20")
    await expect(form.locator("datalist option[value='I20.0']")).to_have_count(1)
    await code.fill("I20.0")
    await form.get_by_label(_("Relevant history")).fill(HISTORY)
    await form.get_by_label(_("Relevant results (examinations and tests)")).fill(RESULTS)
    await form.get_by_label(_("Professional title wanted")).select_option("associate_chief")
    await form.locator("input[name=sharing_consent]").check()
    await screenshot(doctor, f"request-form-doctor-{locale}", full_page=True)
    await assert_accessible(doctor)
    await form.get_by_role("button", name=_("Submit referral")).click()
    await expect(doctor.locator("#referral-state")).to_have_attribute("data-state", "submitted")
    await expect(doctor.locator("#referral-question")).to_have_text(QUESTION)
    referral = doctor.url.rstrip("/").rsplit("/", 1)[1]

    for username, options in (("coord.zhao", PHONE), ("dr.wang", {})):
        reader = await signed_in(browser, base, username, locale, **options)
        await reader.goto(f"{base}/referrals/{referral}")
        await reader.get_by_role("link", name=_("Consultation request"), exact=True).click()
        await expect(reader.locator("h1")).to_have_text(_("Consultation request"))
        await expect(reader.locator("#request-question")).to_contain_text(QUESTION)
        await expect(reader.locator("#request-history")).to_contain_text(HISTORY)
        await expect(reader.locator("#request-results")).to_contain_text(RESULTS)
        await expect(reader.locator("#request-diagnosis")).to_contain_text("I20.0")
        await expect(reader.locator("#title-wanted")).to_have_text(_("Associate chief physician"))
        await expect(reader.locator("#request-consent")).to_have_attribute("data-status", "given")
        await expect(reader.locator("#requesting-doctor")).to_have_text("李明 Li Ming")
        await expect(reader.locator("#print-request")).to_be_visible()
        width = await reader.evaluate("document.documentElement.scrollWidth")
        assert width <= (390 if options else 1280), f"{username}: the request fits the screen ({width}px)"
        await screenshot(reader, f"request-page-{username}-{locale}", full_page=True)
        await assert_accessible(reader)
        await reader.emulate_media(media="print")
        await expect(reader.locator(".topbar")).to_be_hidden()
        await expect(reader.locator(".request-tools")).to_be_hidden()
        await expect(reader.locator("#request-question")).to_be_visible()
        await screenshot(reader, f"request-print-{username}-{locale}", full_page=True)
        await reader.emulate_media(media="screen")
        pdf = await reader.context.request.get(f"{base}/referrals/{referral}/request.pdf")
        assert pdf.ok and (await pdf.body()).startswith(b"%PDF-")
