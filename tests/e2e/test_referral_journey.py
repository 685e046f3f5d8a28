"""A referral in real Chromium, through the pages: the county doctor refers, the partner hospital's
coordinator accepts it from the inbox and books a slot, the specialist is notified and writes the
opinion, and the county doctor reads it."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from .test_consultation_call import logged_in

pytestmark = pytest.mark.e2e


async def test_referral_from_request_to_opinion_in_the_browser(client: TestClient, browser: Browser) -> None:
    base = str(client.make_url("")).rstrip("/")

    doctor = await logged_in(browser, base, "dr.li")
    await doctor.get_by_role("link", name="Referrals").click()
    await doctor.get_by_role("link", name="New referral").click()
    await doctor.get_by_label("Specialty wanted").select_option(label="Cardiology")
    await doctor.get_by_label("Urgency").select_option(label="Urgent")
    await doctor.get_by_label("Specialist (optional)").select_option(label="王芳 Wang Fang")
    await doctor.get_by_label("Reason").fill("Chest pain on exertion")
    await doctor.get_by_label("Clinical summary").fill("68-year-old man; ST depression in V4-V6.")
    await doctor.get_by_role("button", name="Submit referral").click()
    await expect(doctor.locator("#referral-state")).to_have_text("Submitted")
    referral_url = doctor.url

    coordinator = await logged_in(browser, base, "coord.zhao")
    await coordinator.get_by_role("link", name="Referrals").click()
    inbox = coordinator.locator("section", has_text="Inbox").locator("tr[data-referral-id]")
    await expect(inbox).to_have_count(1)
    await expect(inbox).to_contain_text("Chest pain on exertion")
    await inbox.get_by_role("link", name="Open").click()
    await coordinator.get_by_role("button", name="Accept").click()
    await expect(coordinator.locator("#referral-state")).to_have_text("Accepted")
    await coordinator.locator("#booking fieldset", has_text="Wang Fang").locator("input[type=radio]").first.check()
    await coordinator.get_by_role("button", name="Book", exact=True).click()
    await expect(coordinator.locator("#referral-state")).to_have_text("Scheduled")
    await expect(coordinator.locator("#appointment")).to_be_visible()

    specialist = await logged_in(browser, base, "dr.wang")
    notice = specialist.locator("#notifications a", has_text="appointment booked")
    await expect(notice).to_have_count(1)
    await notice.click()
    await specialist.get_by_label("Opinion").fill("Stable angina. Start bisoprolol 2.5 mg daily.")
    await specialist.get_by_label("Recommendations").fill("Exercise ECG in four weeks.")
    await specialist.get_by_role("button", name="Send opinion and complete").click()
    await expect(specialist.locator("#referral-state")).to_have_text("Completed")

    await doctor.goto(referral_url)
    await expect(doctor.locator("#opinion")).to_contain_text("Stable angina. Start bisoprolol 2.5 mg daily.")
    await expect(doctor.locator("#opinion")).to_contain_text("Exercise ECG in four weeks.")
    await expect(doctor.locator("#history li")).to_have_count(5)
