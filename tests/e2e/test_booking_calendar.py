"""The coordinator books from the week's calendar in real Chromium, in English and in Chinese, on a desktop
and on a 390x844 phone: the inbox names who sent each referral, once; the referral's calendar shows the
week's days, its specialists, free and booked slots on the hospital's clock with the zone named; the next
week is a link away; a slot chosen at 08:00 is the appointment at 08:00 CST. axe-core checks the inbox, the
referral and its calendar. Screenshots go to screenshots/ (not committed) for a person to look at."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from server.i18n import translations
from server.scheduling.slots import week_of
from web.clock import day_and_month, weekday

from ..conftest import login
from .conftest import assert_accessible, screenshot
from .test_clinic_pages import PHONE

pytestmark = pytest.mark.e2e
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _refer(client: TestClient, reason: str, urgency: str) -> int:
    response = await client.post("/api/referrals", headers=await login(client, "dr.li"), json={
        "patient_id": 1, "specialty": "cardiology", "urgency": urgency, "reason": reason,
        "target_hospital_id": 1, "question": "Is this cardiac syncope?", "sharing_consent": "verbal"})
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


async def _booked_elsewhere(client: TestClient, monday_iso: str) -> None:
    """Another accepted referral booked at 09:00 on Monday with Wang Fang: a booked slot to see."""
    referral = await _refer(client, "心悸 Palpitations", "routine")
    headers = await login(client, "coord.zhao")
    assert (await client.post(f"/api/referrals/{referral}/actions", json={"action": "accept"},
                              headers=headers)).status == 200
    starts = datetime.fromisoformat(f"{monday_iso}T09:00").replace(tzinfo=SHANGHAI)
    response = await client.post(f"/api/referrals/{referral}/appointment", headers=headers,
                                 json={"specialist_id": 2, "starts_at": starts.isoformat()})
    assert response.status == 201, await response.text()


async def _coordinator(browser: Browser, base: str, locale: str, t: Callable[[str], str], *,
                       phone: bool = False) -> Page:
    viewport = PHONE if phone else {"width": 1280, "height": 900}
    context = await browser.new_context(locale=locale, viewport=viewport, is_mobile=phone, has_touch=phone)
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[coord.zhao] page error: {error}"))
    await page.goto(f"{base}/login")
    await page.get_by_label(t("Username")).fill("coord.zhao")
    await page.get_by_label(t("Password")).fill("telemed-demo")
    await page.get_by_role("button", name=t("Log in")).click()
    await expect(page.get_by_role("heading", name=t("My consultations"))).to_be_visible()
    return page


@pytest.mark.parametrize(("locale", "phone"), [("en", False), ("zh-CN", False), ("zh-CN", True)],
                         ids=["en", "zh-CN", "zh-CN-390x844"])
async def test_the_coordinator_books_from_the_week_calendar(client: TestClient, browser: Browser, locale: str,
                                                           phone: bool) -> None:
    """In English, in Chinese, and in Chinese on a 390x844 phone: the inbox shows the referral once, with its
    hospital, doctor, urgency and a CST time, in cells wide enough for Chinese; the calendar names its zone and shows
    next week's booked 09:00 with no button; the free 08:00 chosen is the appointment at 08:00 CST; moving it asks
    for a reason first, then Zhou Jie's 10:00 chosen is the appointment; cancelling asks for confirmation; every page
    passes axe-core."""
    base = str(client.make_url("")).rstrip("/")
    t = translations(locale).gettext
    monday = week_of(datetime.now(SHANGHAI).date()) + timedelta(weeks=1)
    await _booked_elsewhere(client, monday.isoformat())
    referral = await _refer(client, "劳力性胸痛 Chest pain on exertion", "urgent")

    # The inbox: the referral once, with the hospital and the doctor who sent it and when it came.
    page = await _coordinator(browser, base, locale, t, phone=phone)
    await page.get_by_role("link", name=t("Referrals"), exact=True).click()
    rows = page.locator(f"tr[data-referral-id='{referral}']")
    await expect(rows).to_have_count(1)
    inbox_row = page.locator("#inbox").locator(f"tr[data-referral-id='{referral}']")
    await expect(inbox_row).to_contain_text("青山县人民医院 Qingshan County People's Hospital")
    await expect(inbox_row).to_contain_text("李明 Li Ming")
    await expect(inbox_row).to_contain_text(t("Urgent"))
    await expect(inbox_row.locator("td.when")).to_contain_text("CST")
    # Chinese cells keep their words: no column is squeezed to a character a line
    for cell in ("td.from .hospital", "td.reason", "td.when", "td[data-state]"):
        box = await inbox_row.locator(cell).first.bounding_box()
        assert box is not None and box["width"] > 60, (cell, box)
    await assert_accessible(page)
    await screenshot(page, f"referral-inbox-{locale}{'-390x844' if phone else ''}")

    # The referral: accepted, then the calendar of the week's slots.
    open_referral = translations(locale).pgettext("open a referral", "Open")
    await inbox_row.get_by_role("link", name=re.compile(open_referral)).click()
    await page.get_by_role("button", name=t("Accept")).click()
    await expect(page.locator("#referral-state")).to_have_text(t("Accepted"))
    calendar = page.locator("#booking")
    await expect(calendar.locator("#calendar-zone")).to_have_text(
        t("Times in %(zone)s (%(short)s).") % {"zone": "Asia/Shanghai", "short": "CST"})
    await expect(calendar.locator("#booking-referral")).to_contain_text("劳力性胸痛 Chest pain on exertion")
    await expect(calendar.locator("#booking-referral")).to_contain_text(t("Urgent"))
    await expect(calendar.locator("#booking-referral")).to_contain_text("李明 Li Ming")
    await assert_accessible(page)
    await screenshot(page, f"referral-calendar-{locale}{'-390x844' if phone else ''}")

    # The next week, a link away, has Monday's 09:00 with Wang Fang booked and 08:00 free.
    if not await calendar.locator(f"table[data-week='{monday}']").count():
        await calendar.get_by_role("link", name=t("Next week ›")).click()
    table = calendar.locator(f"table[data-week='{monday}']")
    await expect(table).to_be_visible()
    if not phone:
        heads = table.locator("thead th[data-day]")
        await expect(heads).to_have_count(7)
        await expect(heads.first).to_contain_text(weekday(monday, locale))
        await expect(heads.first).to_contain_text(day_and_month(monday, locale))
    wang = table.locator("tr", has_text="王芳 Wang Fang")
    monday_cell = wang.locator(f"td[data-day='{monday}']")
    await expect(monday_cell.locator(".slot.booked")).to_have_text(re.compile("^09:00"))
    assert await monday_cell.locator(".slot.booked button").count() == 0
    await assert_accessible(page)
    await screenshot(page, f"referral-calendar-next-week-{locale}{'-390x844' if phone else ''}")

    await monday_cell.get_by_role("button", name=re.compile("^08:00")).click()
    await expect(page.locator("#referral-state")).to_have_text(t("Scheduled"))
    await expect(page.locator("#appointment")).to_contain_text(f"{monday} 08:00 CST")
    await expect(page.locator("#appointment")).not_to_contain_text("UTC")
    await expect(page.locator("#booking")).to_be_hidden()  # behind "Move the appointment" now
    await assert_accessible(page)
    await screenshot(page, f"referral-booked-{locale}{'-390x844' if phone else ''}")

    # Moving it: the calendar behind a quiet button, a reason first (the browser asks for it), then a slot.
    await page.locator("#move summary").click()
    move = page.locator("#move")
    await expect(move.get_by_label(t("Why it moves (both sides are told)"))).to_be_visible()
    if not await move.locator(f"table[data-week='{monday}']").count():
        await move.get_by_role("link", name=t("Next week ›")).click()  # the page comes back with it open
    await assert_accessible(page)
    await screenshot(page, f"referral-move-{locale}{'-390x844' if phone else ''}")
    zhou_monday = move.locator("tr", has_text="周杰 Zhou Jie").locator(f"td[data-day='{monday}']")
    await zhou_monday.get_by_role("button", name=re.compile("^10:00")).click()  # no reason yet: not sent
    reason = move.get_by_label(t("Why it moves (both sides are told)"))
    assert await reason.evaluate("field => field.validity.valueMissing")
    await expect(page.locator("#appointment")).to_contain_text(f"{monday} 08:00 CST")
    await move.get_by_label(t("Why it moves (both sides are told)")).fill("王医生外出开会 Dr Wang is away")
    await zhou_monday.get_by_role("button", name=re.compile("^10:00")).click()
    await expect(page.locator("#appointment")).to_contain_text(f"{monday} 10:00 CST")
    await expect(page.locator("#appointment")).to_contain_text("周杰 Zhou Jie")
    await screenshot(page, f"referral-moved-{locale}{'-390x844' if phone else ''}")

    # Cancel is a quiet button that opens a confirmation, not the page's loudest element.
    await page.locator("#cancel summary").click()
    confirm = page.get_by_role("button", name=t("Yes, cancel the referral"))
    await expect(confirm).to_be_visible()
    await expect(page.locator("#cancel").get_by_label(t("Reason"))).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, f"referral-cancel-confirm-{locale}{'-390x844' if phone else ''}")
