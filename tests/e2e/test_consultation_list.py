"""The consultations list in real Chromium, in English and in Chinese: a coordinator opens it from the top
bar, pages through it, searches by status and by a range of days, is told beside the field when the range is
upside down, and opens nothing they may not; every state of the page passes axe-core.

Set TELEMED_TEST_SCREENSHOTS to a directory to keep a screenshot of each page there (for looking at them)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect
from sqlmodel import select

from server.appkeys import DATABASE
from server.i18n import translations
from server.models import Consultation, ConsultationParticipant, User

from ..server.consultations.test_search import add_consultations
from .conftest import checked

pytestmark = pytest.mark.e2e



@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_coordinator_finds_consultations(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese: a coordinator opens the consultations list from the main navigation, twenty to a
    page, and pages on; a search by status finds only that status; an upside-down day range is refused beside its
    field; one day finds only that day's consultations; of two consultations of a county hospital on another day, the
    one a provincial specialist takes part in is listed, without an Open link (a coordinator joins no room), and the
    county's own one is not; the room of either answers 403 in the browser; each state checked passes axe-core."""
    t = translations(locale).gettext
    await add_consultations(client.app[DATABASE], 45)
    shared, county_only = await _two_county_consultations(client, ELSEWHERE)
    base = str(client.make_url("")).rstrip("/")
    context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.locator("input[name=username]").fill("coord.zhao")
    await page.locator("input[name=password]").fill("telemed-demo")
    await page.get_by_role("button", name=t("Log in")).click()

    main_nav = page.get_by_role("navigation", name=t("Main"))
    await main_nav.get_by_role("link", name=t("Consultations"), exact=True).click()
    await expect(page.get_by_role("heading", name=t("Consultations"), exact=True)).to_be_visible()
    rows = page.locator("#consultation-list tbody tr")
    await expect(rows).to_have_count(20)
    await checked(page, f"consultations-list-{locale}")
    await page.get_by_role("link", name=t("Next")).click()
    await expect(page).to_have_url(re.compile(r"page=2"))
    await expect(page.get_by_role("link", name=t("Previous"))).to_be_visible()

    # By status: every row found has it.
    await page.get_by_label(t("Status")).select_option(label=t("Cancelled"))
    await page.get_by_role("button", name=t("Search")).click()
    await expect(page).to_have_url(re.compile(r"status=cancelled"))
    statuses = await page.locator("#consultation-list tbody td[data-status]").evaluate_all(
        "cells => cells.map(c => c.dataset.status)")
    assert statuses and set(statuses) == {"cancelled"}
    await checked(page, f"consultations-by-status-{locale}")

    # An upside-down range is refused beside the field, in the page's language.
    await page.goto(f"{base}/consultations")
    await page.get_by_label(t("From (day)")).fill("2030-03-05")
    await page.get_by_label(t("Until (day)")).fill("2030-03-04")
    await page.get_by_role("button", name=t("Search")).click()
    await expect(page.locator("#error-until")).to_have_text(t("The last day cannot come before the first."))
    await expect(page.get_by_label(t("Until (day)"))).to_have_attribute("aria-invalid", "true")
    await checked(page, f"consultations-bad-range-{locale}")

    # One day on the hospital's clock: the consultations planned that day, and none else.
    await page.get_by_label(t("From (day)")).fill("2030-03-05")
    await page.get_by_label(t("Until (day)")).fill("2030-03-05")
    await page.get_by_role("button", name=t("Search")).click()
    starts = await page.locator("#consultation-list tbody time").evaluate_all("ts => ts.map(t => t.textContent)")
    assert starts and all(s.startswith("2030-03-05") for s in starts)

    # Nothing they may not open: another county's own consultation is not listed, and no room opens for them.
    await page.get_by_label(t("From (day)")).fill(ELSEWHERE.date().isoformat())
    await page.get_by_label(t("Until (day)")).fill(ELSEWHERE.date().isoformat())
    await page.get_by_role("button", name=t("Search")).click()
    await expect(rows).to_have_count(1)
    assert await rows.evaluate_all("rs => rs.map(r => Number(r.dataset.consultationId))") == [shared]
    await expect(rows.locator("a")).to_have_count(0)
    for consultation_id in (shared, county_only):
        response = await page.goto(f"{base}/consultations/{consultation_id}")
        assert response is not None and response.status == 403, consultation_id
    await context.close()


ELSEWHERE = datetime(2030, 4, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai; add_consultations has none that day


async def _two_county_consultations(client: TestClient, when: datetime) -> tuple[int, int]:
    """Two consultations of the Baihe county hospital at ``when``: one with a provincial specialist taking part,
    so the provincial coordinator sees it, and one with Baihe's own doctor alone, so they do not."""
    async with client.app[DATABASE].session() as session:
        users = {u.username: u for u in (await session.exec(select(User))).all()}
        made = []
        for title, taking_part in (("Shared with the province", ("dr.chen", "dr.wang")),
                                   ("Baihe's own", ("dr.chen",))):
            consultation = Consultation(title=title, hospital_id=users["dr.chen"].hospital_id, planned_start=when,
                                        created_by=users["dr.chen"].id)
            session.add(consultation)
            await session.flush()
            assert consultation.id is not None
            session.add_all([ConsultationParticipant(consultation_id=consultation.id, user_id=users[name].id)
                             for name in taking_part])
            made.append(consultation.id)
        await session.commit()
    return made[0], made[1]
