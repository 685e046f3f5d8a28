"""The patient's consent to sharing their record, in the room of a consultation set up without a referral: their
own doctor sees whether it stands and records it, or its withdrawal, on the patient's word (the API's
``record_verbal`` and ``withdraw_as`` behind both buttons); the partner's specialist is shown neither button, is
refused the posts, and sees the patient and the title only while the consent stands."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server.appkeys import DATABASE
from server.models import AuditEvent, Consent, ConsentMethod, ConsentPurpose, User

from ..server.api.test_referrals import booked_referral
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}
PATIENT = "Zhang Wei"
TITLE = "Chest pain follow-up"


async def _page(client: TestClient, username: str, headers: dict[str, str] = EN) -> str:
    client.session.cookie_jar.clear()
    await form_login(client, username)
    response = await client.get("/consultations/1", headers=headers)
    assert response.status == 200, username
    return await response.text()


async def _standing(client: TestClient) -> list[Consent]:
    async with client.app[DATABASE].session() as session:
        return list((await session.exec(select(Consent).where(
            Consent.consultation_id == 1, Consent.purpose == ConsentPurpose.RECORD_SHARING,
            col(Consent.withdrawn_at).is_(None)))).all())


async def test_the_patients_doctor_withdraws_and_records_sharing_from_the_room(client: TestClient) -> None:
    """Guards the doctor's screen for a consultation's sharing consent: dr.li (the patient's hospital) sees the demo
    patient's consent with when it was given on his hospital's clock (CST) and a button to record its withdrawal;
    pressing it ends the consent (audited, by dr.li), and dr.wang's room then shows neither the patient nor the title;
    dr.li's room then offers the current consent text and a button that records the patient's verbal consent, named
    to dr.li, after which dr.wang sees the patient again."""
    [demo] = await _standing(client)
    page = await _page(client, "dr.li")
    assert 'id="sharing-consent"' in page and "The patient consented on" in page
    assert re.search(r'<time datetime="[^"]+" title="Asia/Shanghai">\d{4}-\d\d-\d\d \d\d:\d\d CST</time>', page)
    assert 'action="/consultations/1/sharing-consent/withdraw"' in page
    assert PATIENT in await _page(client, "dr.wang")

    await _page(client, "dr.li")
    withdrawn = await client.post("/consultations/1/sharing-consent/withdraw", headers=EN, allow_redirects=False)
    assert withdrawn.status == 303 and withdrawn.headers["Location"] == "/consultations/1#sharing-consent"
    assert await _standing(client) == []
    async with client.app[DATABASE].session() as session:
        entry = (await session.exec(select(AuditEvent).where(AuditEvent.action == "consent.withdrawn")
                                    .order_by(col(AuditEvent.id).desc()))).first()
    async with client.app[DATABASE].session() as session:
        li = (await session.exec(select(User).where(User.username == "dr.li"))).one()
    assert entry is not None and entry.subject == f"consent:{demo.id}" and entry.actor == f"user:{li.id}"
    partner = await _page(client, "dr.wang")
    assert PATIENT not in partner and TITLE not in partner

    page = await _page(client, "dr.li")
    assert "The patient has not consented to sharing their record" in page
    template = re.search(r'name="template_id" value="(\d+)"', page)
    assert template is not None and 'action="/consultations/1/sharing-consent"' in page
    recorded = await client.post("/consultations/1/sharing-consent", data={"template_id": template[1]}, headers=EN,
                                 allow_redirects=False)
    assert recorded.status == 303
    [again] = await _standing(client)
    assert again.method is ConsentMethod.VERBAL and again.template_id == int(template[1])
    assert again.id != demo.id and again.recorded_by == li.id
    partner = await _page(client, "dr.wang")
    assert PATIENT in partner and TITLE in partner


async def test_the_partner_sees_no_sharing_buttons_and_is_refused_the_posts(client: TestClient) -> None:
    """Guards who may speak for the patient: dr.wang, of the partner hospital, is shown no sharing card; his
    withdrawal and his recording are refused 403 with the reason on the room page, and the consent stands as it was."""
    [demo] = await _standing(client)
    page = await _page(client, "dr.wang")
    assert 'id="sharing-consent"' not in page and "/sharing-consent" not in page
    refused = await client.post("/consultations/1/sharing-consent/withdraw", headers=EN, allow_redirects=False)
    assert refused.status == 403
    assert 'id="sharing-error"' in await refused.text()
    recorded = await client.post("/consultations/1/sharing-consent", data={}, headers=EN, allow_redirects=False)
    assert recorded.status == 403
    assert [c.id for c in await _standing(client)] == [demo.id]


async def test_a_bad_text_or_a_stale_withdrawal_is_a_clear_error_and_changes_nothing(client: TestClient) -> None:
    """Guards bad input on the two posts: a text id that is not a number is a 422 naming the consent text, one that
    does not exist a 404 saying so; withdrawing twice (a page left open) is a 409 saying it was already withdrawn, in
    Chinese for a Chinese reader; nothing is recorded by any of them."""
    [demo] = await _standing(client)
    await _page(client, "dr.li")
    for template_id, status, said in (("abc", 422, "Consent text: "), ("999999", 404, 'id="sharing-error"')):
        response = await client.post("/consultations/1/sharing-consent", data={"template_id": template_id},
                                     headers=EN, allow_redirects=False)
        text = await response.text()
        assert response.status == status and said in text, (template_id, text)
        assert text.split('id="sharing-error">', 1)[1].split("<", 1)[0].strip()
    assert [c.id for c in await _standing(client)] == [demo.id]
    first = await client.post("/consultations/1/sharing-consent/withdraw", headers=EN, allow_redirects=False)
    assert first.status == 303
    stale = await client.post("/consultations/1/sharing-consent/withdraw", headers=ZH, allow_redirects=False)
    assert stale.status == 409
    assert "此同意已被撤回。" in await stale.text()
    assert await _standing(client) == []


async def test_the_sharing_card_reads_in_chinese(client: TestClient) -> None:
    """Guards the reader's language: dr.li's room in Chinese words the standing consent and its button from the
    catalog, with no English sentence of the card left."""
    page = await _page(client, "dr.li", ZH)
    card = page.split('id="sharing-consent"', 1)[1].split("</div>", 1)[0]
    assert "The patient consented" not in card and "Record the patient" not in card
    assert re.search(r"[\u4e00-\u9fff]", card)


async def test_a_referrals_consultation_takes_its_sharing_consent_on_the_referral(client: TestClient) -> None:
    """Guards the scope of the room's card: in a consultation booked for a referral, the referring doctor's room shows
    no sharing card, and both posts are refused 400 with the reason (it is recorded on the referral), while the
    referral's consent stands."""
    referral, _ = await booked_referral(client)
    consultation = referral["consultation_id"]
    client.session.cookie_jar.clear()
    await form_login(client, "dr.li")
    page = await (await client.get(f"/consultations/{consultation}", headers=EN)).text()
    assert 'id="sharing-consent"' not in page
    for path in ("sharing-consent", "sharing-consent/withdraw"):
        refused = await client.post(f"/consultations/{consultation}/{path}", headers=EN, allow_redirects=False)
        assert refused.status == 400 and "recorded on the referral" in await refused.text(), path
    async with client.app[DATABASE].session() as session:
        consent = await session.get(Consent, referral["sharing_consent"]["id"])
    assert consent is not None and consent.withdrawn_at is None
