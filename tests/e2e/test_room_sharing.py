"""The patient's consent to sharing their record, in the room of the demo consultation (set up without a referral,
with the partner's specialist taking part), in real Chromium, in English and in Chinese: the patient's doctor
records its withdrawal and then the consent again from beside the call, and the call goes on (the card is sent
without leaving the page). Screenshots are saved for a person to look at."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from .conftest import assert_accessible, screenshot
from .test_room_layout import LOCALES, signed_in, words

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_doctor_records_the_withdrawal_and_the_consent_again_without_leaving_the_call(
        client: TestClient, browser: Browser, locale: str) -> None:
    """Guards the doctor's sharing card: dr.li, waiting in the open room, sees the patient's consent in his language
    and presses *Record the patient's withdrawal*; the card then says the partner sees nothing of the patient and
    offers the text and the button to record the consent, which brings back the first state; the page was never
    left (the call's state and a mark set on the page survive), and the room passes axe-core in both states."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    doctor = await signed_in(browser, base, "dr.li", locale)
    await doctor.goto(f"{base}/consultations/1")
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "waiting", timeout=20_000)
    await doctor.evaluate("window.stillThisPage = true")
    card = doctor.locator("#sharing-consent")
    consented = _("The patient consented on %(time)s to sharing their record with the other hospitals taking part.")
    await expect(card).to_contain_text(consented.split("%(time)s")[0].strip())
    await screenshot(doctor, f"room-sharing-given-{locale}")
    await assert_accessible(doctor)

    await card.get_by_role("button", name=_("Record the patient's withdrawal")).click()
    await expect(card).to_contain_text(_("The patient has not consented to sharing their record: the other hospitals "
                                         "taking part see neither who they are nor the consultation's title."))
    await expect(card.locator("details summary")).to_be_visible()
    await screenshot(doctor, f"room-sharing-withdrawn-{locale}")
    await screenshot(doctor, f"room-sharing-withdrawn-{locale}", phone=True)
    await assert_accessible(doctor)

    await card.get_by_role("button", name=_("The patient agrees, having heard this text: record their consent")).click()
    await expect(card).to_contain_text(consented.split("%(time)s")[0].strip())
    assert await doctor.evaluate("window.stillThisPage === true"), "the card was sent without leaving the call"
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "waiting")
