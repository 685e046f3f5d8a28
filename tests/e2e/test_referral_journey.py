"""A referral in real Chromium, through the pages: the county doctor refers (with the patient's consent to
sharing their records, and an ECG image attached), the partner hospital's coordinator accepts it from the
inbox and books a slot from the week's calendar, the patient opens the invitation, consents, passes the
device check and waits, the specialist admits them, then signs the report, and the county doctor reads it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from server.settings import Settings

from .conftest import assert_accessible, screenshot
from .test_consultation_call import assert_receiving, logged_in, patient_arrives

pytestmark = pytest.mark.e2e
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The first free slot may be days away: let its room open now, as a clinic setting could.
    return replace(settings, room_opens_minutes_before=14 * 24 * 60)


async def test_referral_from_request_to_opinion_in_the_browser(client: TestClient, browser: Browser) -> None:
    """A referral through the pages: the county doctor refers with the patient's agreement and attaches an ECG; the
    coordinator accepts it from the inbox and books the specialist asked for at her first free slot (in CST); the
    patient invited from the room waits and the specialist admits them; withdrawing the invitation puts the patient
    out at once, told why; the specialist signs the report and the county doctor reads it."""
    base = str(client.make_url("")).rstrip("/")

    doctor = await logged_in(browser, base, "dr.li")
    await doctor.get_by_role("link", name="Referrals").click()
    await doctor.get_by_role("link", name="New referral").click()
    await doctor.get_by_label("Specialty wanted").select_option(label="Cardiology")
    await doctor.get_by_label("Urgency").select_option(label="Urgent")
    await doctor.get_by_label("Specialist (optional)").select_option(label="王芳 Wang Fang")
    await doctor.get_by_label("Reason").fill("Chest pain on exertion")
    await doctor.get_by_label("Question for the specialist").fill("Is coronary angiography needed?")
    await doctor.get_by_label("Clinical summary").fill("68-year-old man; ST depression in V4-V6.")
    await doctor.get_by_label("I read this text to the patient and they agreed.").check()
    await screenshot(doctor, "referral-new-en")
    await doctor.get_by_role("button", name="Submit referral").click()
    await expect(doctor.locator("#referral-state")).to_have_text("Submitted")
    referral_url = doctor.url
    await doctor.get_by_label("Attach a test result or image").set_input_files(
        files=[{"name": "心电图 ECG.png", "mimeType": "image/png", "buffer": PNG}])
    await doctor.get_by_role("button", name="Attach", exact=True).click()
    await expect(doctor.locator("#attachments li")).to_contain_text("心电图 ECG.png")

    coordinator = await logged_in(browser, base, "coord.zhao")
    await coordinator.get_by_role("link", name="Referrals").click()
    inbox = coordinator.locator("section", has_text="Inbox").locator("tr[data-referral-id]")
    await expect(inbox).to_have_count(1)
    await expect(inbox).to_contain_text("Chest pain on exertion")
    await expect(inbox).to_contain_text("青山县人民医院 Qingshan County People's Hospital")
    await expect(inbox).to_contain_text("李明 Li Ming")
    await assert_accessible(coordinator)
    await inbox.get_by_role("link", name="Open").click()
    await assert_accessible(coordinator)
    await coordinator.get_by_role("button", name="Accept").click()
    await expect(coordinator.locator("#referral-state")).to_have_text("Accepted")
    # The calendar: Wang Fang, asked for by name, is its first row; her first free slot books the referral.
    wang = coordinator.locator("#booking tbody tr").first
    await expect(wang).to_contain_text("王芳 Wang Fang")
    await expect(wang).to_contain_text("Asked for by the referring doctor")
    await assert_accessible(coordinator)
    slot = wang.locator("button.slot.free").first
    when = await slot.get_attribute("data-starts-at")
    chosen = (await slot.inner_text()).split(",")[0].strip()
    await slot.click()
    await expect(coordinator.locator("#referral-state")).to_have_text("Scheduled")
    await expect(coordinator.locator("#appointment time")).to_have_attribute("datetime", str(when))
    await expect(coordinator.locator("#appointment")).to_contain_text(f"{chosen} CST")
    await screenshot(coordinator, "referral-journey-booked-en")
    await expect(coordinator.locator("#attachments a", has_text="心电图 ECG.png")).to_be_visible()

    # The county doctor opens the consultation's room and sends the patient the invitation.
    await doctor.goto(referral_url)
    await doctor.locator("#appointment").get_by_role("link", name="Consultation room").click()
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "waiting")
    await doctor.get_by_role("button", name="Invite the patient").click()
    await expect(doctor.locator("#invite-result")).to_be_visible()
    patient = await patient_arrives(browser, await doctor.locator("#invite-link").input_value())
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "lobby")
    await expect(patient.get_by_role("heading", name="Please wait")).to_be_visible()

    # The specialist follows the notification, enters the room and admits the patient.
    specialist = await logged_in(browser, base, "dr.wang")
    notice = specialist.locator("#notifications a", has_text="appointment booked")
    await expect(notice).to_have_count(1)
    await notice.click()
    referral_page = specialist.url
    await specialist.locator("#appointment").get_by_role("link", name="Consultation room").click()
    waiting = specialist.locator("#lobby-list li")
    await expect(waiting).to_contain_text("张伟 Zhang Wei")
    await waiting.get_by_role("button", name="Admit").click()
    await expect(patient.locator("#lobby-notice")).to_be_hidden()
    await assert_receiving(patient, peers=2)

    # The doctor withdraws the invitation: the patient leaves the call at once and is told why.
    await doctor.get_by_role("button", name="Withdraw the invitation").click()
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "invitation-revoked")
    await expect(patient.locator("#connection-state")).to_have_text(
        "Your invitation to this consultation was withdrawn.")
    await expect(doctor.locator("figure.remote")).to_have_count(1)  # the specialist stays

    await specialist.goto(referral_page)
    await specialist.get_by_label("Findings").fill("Stable angina. Start bisoprolol 2.5 mg daily.")
    await specialist.get_by_label("Diagnosis (ICD-10 code)").fill("I20.8")
    await specialist.get_by_label("Recommendations").fill("Exercise ECG in four weeks.")
    await specialist.get_by_role("button", name="Sign the report and complete").click()
    await expect(specialist.locator("#referral-state")).to_have_text("Completed")

    await doctor.goto(referral_url)
    await expect(doctor.locator("#report")).to_contain_text("Stable angina. Start bisoprolol 2.5 mg daily.")
    await expect(doctor.locator("#report")).to_contain_text("Exercise ECG in four weeks.")
    await expect(doctor.locator("#report-diagnosis")).to_contain_text("I20.8")
    await expect(doctor.locator("#history li")).to_have_count(5)
