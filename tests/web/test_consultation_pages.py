"""Setting up a consultation from the page (the API's model and operation: the same refusals, shown beside
the fields in the reader's language; the start read on the hospital's clock), and the invitation page:
the link, a copy button, its QR code and a message ready to send, in the page's language."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server.appkeys import DATABASE
from server.models import Consent, Consultation, PatientInvitation

from ..conftest import login
from .test_pages import EN, form_login
from .test_patient_pages import ZH, _error_beside

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _local(days: int = 2) -> str:
    return (datetime.now(SHANGHAI) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def _form(**changes: object) -> list[tuple[str, str]]:
    fields: dict = {"title": "多学科会诊 MDT", "patient_id": "1", "planned_start": _local(), "duration_minutes": "45",
                    "participant_ids": ["2", "7"], "invite": "yes", **changes}
    pairs = []
    for name, value in fields.items():
        pairs.extend((name, v) for v in (value if isinstance(value, list) else [value]))
    return pairs


async def _create(client: TestClient, headers: dict[str, str] = EN, **changes: object):
    return await client.post("/consultations/new", data=_form(**changes), headers=headers, allow_redirects=False)


async def test_the_form_offers_the_partner_specialists_and_names_the_clock(client: TestClient) -> None:
    """The new-consultation form offers the partner hospital's specialists, preselects the patient it was opened for,
    and says the start is read on the hospital's clock (Asia/Shanghai, CST)."""
    await form_login(client, "dr.li")
    page = await (await client.get("/consultations/new?patient_id=1", headers=EN)).text()
    for name in ("王芳 Wang Fang", "周杰 Zhou Jie", "何静 He Jing"):
        assert name in page
    assert "(Asia/Shanghai, CST)" in page, "the start is read on the hospital's clock, and says so"
    assert re.search(r'<option value="1" selected>张伟 Zhang Wei', page)


async def test_a_doctor_sets_up_a_multi_party_consultation_and_invites_the_patient(client: TestClient) -> None:
    """A doctor's consultation with two specialists is stored with its start read on the hospital's clock and its
    length, with one invitation, and leads to the invitation page: the whole link to copy, a QR code that is an SVG
    without script, and a message ready to send naming the patient, the doctor, the hospital, the time and the link; for
    a Chinese reader the message and the copy button are in Chinese."""
    await form_login(client, "dr.li")
    start = _local()
    created = await _create(client, planned_start=start)
    assert created.status == 303
    target = created.headers["Location"]
    consultation_id = int(target.split("/")[2])
    assert target == f"/consultations/{consultation_id}/invitations"
    async with client.app[DATABASE].session() as session:
        row = await session.get(Consultation, consultation_id)
        invitations = (await session.exec(select(PatientInvitation).where(
            PatientInvitation.consultation_id == consultation_id))).all()
    assert row is not None and len(invitations) == 1
    assert row.planned_start == datetime.fromisoformat(start).replace(tzinfo=SHANGHAI).astimezone(UTC)
    assert row.planned_end is not None and row.planned_end - row.planned_start == timedelta(minutes=45)

    page = await (await client.get(target, headers=EN)).text()
    link = re.search(r'<input id="link-\d+" class="wide" readonly value="(http://[^"]+/visit/[^"]+)">', page)
    assert link, "the whole link, to copy"
    assert 'data-copy="#link-' in page and 'data-copied="Link copied."' in page
    qr = re.search(r'<img src="(data:image/svg\+xml[^"]+)" alt="QR code of the invitation link"', page)
    assert qr and "<svg" in unquote(qr[1]) and "<script" not in unquote(qr[1])
    message = re.search(r'<textarea id="message-\d+" rows="7" readonly>([^<]+)</textarea>', page)
    assert message
    when = datetime.fromisoformat(start)
    assert message[1].startswith("Hello 张伟 Zhang Wei, this is 李明 Li Ming of 青山县人民医院")
    assert f"{when:%H:%M} (China Standard Time)" in message[1] and link[1] in message[1]
    assert "周杰 Zhou Jie" in page and "王芳 Wang Fang" in page

    chinese = await (await client.get(target, headers=ZH)).text()
    message = re.search(r'<textarea id="message-\d+" rows="7" readonly>([^<]+)</textarea>', chinese)
    assert message and message[1].startswith("张伟 Zhang Wei您好，我是青山县人民医院")
    assert f"{when.year}年{when.month}月{when.day}日" in message[1] and "（中国标准时间）" in message[1]
    assert "复制链接" in chinese and 'data-copied="链接已复制。"' in chinese


async def test_without_the_invitation_the_doctor_goes_back_to_the_dashboard(client: TestClient) -> None:
    """A consultation set up without inviting the patient leads back to the dashboard, which lists it."""
    await form_login(client, "dr.li")
    created = await _create(client, invite="")
    assert created.status == 303 and created.headers["Location"] == "/"
    dashboard = await (await client.get("/", headers=EN)).text()
    assert "多学科会诊 MDT" in dashboard


@pytest.mark.parametrize(("changes", "api", "english", "chinese"), [
    ({"planned_start": "2020-01-01T09:00"}, {"planned_start": "2020-01-01T09:00:00+08:00"},
     "The start must be in the future.", "开始时间必须晚于现在。"),
    ({"planned_start": "soon"}, {"planned_start": "soon"}, "Enter a date and a time.", "请输入日期和时间。"),
    ({"title": ""}, {"title": ""}, "Please fill this in.", "请填写此项。"),
    ({"participant_ids": []}, {"participant_ids": []}, "Choose at least one.", "请至少选择一项。"),
    ({"participant_ids": ["4"]}, {"participant_ids": [4]},  # a coordinator, sent by a tampered form
     "Choose active clinicians of your hospital or of a partner hospital.", "请选择本院或医联体合作医院在职的医生。"),
])
async def test_refusals_are_shown_beside_the_field_and_the_api_refuses_alike(
        client: TestClient, changes: dict, api: dict, english: str, chinese: str) -> None:
    """Each row: a start in the past or unreadable, an empty title, no participant, or a coordinator slipped into a
    tampered form is a 422 with the reason beside the field in English and in Chinese, keeping what was typed and
    writing nothing; the API refuses the same input with a 422 naming that field alone."""
    [field] = changes
    await form_login(client, "dr.li")
    refused = await _create(client, **changes)
    page = await refused.text()
    assert refused.status == 422
    if field == "participant_ids":  # a group of checkboxes: the error heads the fieldset
        assert f'<span class="field-error" id="error-{field}">{english}</span>' in page
    else:
        assert _error_beside(page, field) == english
    assert "多学科会诊" in page or field == "title", "what was typed is kept"
    assert chinese in await (await _create(client, ZH, **changes)).text()
    async with client.app[DATABASE].session() as session:
        assert len((await session.exec(select(Consultation))).all()) == 1, "nothing written"

    body = {"title": "多学科会诊 MDT", "patient_id": 1, "planned_start": _local() + ":00+08:00",
            "participant_ids": [2, 7], **api}
    answer = await client.post("/api/consultations", json=body, headers=await login(client, "dr.li"))
    assert answer.status == 422 and list((await answer.json())["error"]["fields"]) == [field]


@pytest.mark.parametrize("username", ["auditor", "admin"])
async def test_administrators_and_auditors_are_refused(client: TestClient, username: str) -> None:
    """Each row (an auditor, an administrator): the new-consultation form and its post are 403."""
    await form_login(client, username)
    assert (await client.get("/consultations/new", headers=EN)).status == 403
    assert (await _create(client)).status == 403


async def test_a_coordinator_is_not_offered_to_invite(client: TestClient) -> None:
    """A coordinator organises without taking part, so cannot send the patient's link."""
    await form_login(client, "coord.zhao")
    page = await (await client.get("/consultations/new", headers=EN)).text()
    assert 'name="invite"' not in page and "王芳 Wang Fang" in page


async def test_links_are_withdrawn_and_made_again_only_by_participants(client: TestClient) -> None:
    """A participant withdraws the patient's link (the page then says no link works) and makes a new one, the only one
    shown; a doctor who takes no part gets 403 for the invitation page and for making a link."""
    await form_login(client, "dr.li")
    target = (await _create(client)).headers["Location"]
    page = await (await client.get(target, headers=EN)).text()
    invitation = re.search(r'id="invitation-(\d+)"', page)
    assert invitation
    withdrawn = await client.post(f"{target}/{invitation[1]}/revoke", headers=EN, allow_redirects=False)
    assert withdrawn.status == 303
    page = await (await client.get(target, headers=EN)).text()
    assert "No invitation link is working now." in page and 'id="invitation-' not in page
    again = await client.post(target, headers=EN, allow_redirects=False)
    assert again.status == 303 and "#invitation-" in again.headers["Location"]
    assert (await (await client.get(target, headers=EN)).text()).count('class="card invitation"') == 1

    client.session.cookie_jar.clear()
    await form_login(client, "dr.chen")
    assert (await client.get(target, headers=EN)).status == 403
    assert (await client.post(target, headers=EN, allow_redirects=False)).status == 403


async def test_the_room_page_offers_to_copy_the_link_and_points_to_the_qr_code(client: TestClient) -> None:
    """The room page offers to copy the patient's link and links to the invitation page with its QR code; the copy
    script it loads is served and writes to the clipboard."""
    await form_login(client, "dr.li")
    room = await (await client.get("/consultations/1", headers=EN)).text()
    assert 'data-copy="#invite-link"' in room and 'href="/consultations/1/invitations"' in room
    assert 'src="/static/js/copy.js"' in room
    script = await client.get("/static/js/copy.js")
    assert script.status == 200 and "navigator.clipboard.writeText" in await script.text()


async def test_the_form_records_the_patients_consent_to_sharing_with_the_other_hospital(client: TestClient) -> None:
    """The form shows the record-sharing text and a box for the doctor to record the patient's word (in Chinese
    too); ticked, the consultation is set up with the patient's consent to sharing, verbal and named for the doctor,
    so the provincial specialists invited read who it is for; unticked, they do not. A coordinator, not at the
    patient's side, is not offered the box."""
    await form_login(client, "dr.li")
    chinese = await (await client.get("/consultations/new?patient_id=1", headers=ZH)).text()
    assert "患者提供病历知情同意" in chinese and 'name="sharing_consent" value="verbal"' in chinese
    template = re.search(r'name="sharing_template_id" value="(\d+)"', chinese)
    assert template is not None
    consented = await _create(client, invite="", sharing_consent="verbal", sharing_template_id=template.group(1))
    assert consented.status == 303, await consented.text()
    silent = await _create(client, invite="", title="另一次会诊 Another")
    assert silent.status == 303
    async with client.app[DATABASE].session() as session:
        rows = (await session.exec(select(Consultation).order_by(col(Consultation.id)))).all()
        first, second = rows[-2], rows[-1]
        consent = (await session.exec(select(Consent).where(Consent.consultation_id == first.id))).one()
        assert (await session.exec(select(Consent).where(Consent.consultation_id == second.id))).all() == []
    assert (consent.method.value, consent.purpose.value, consent.template_id) == (
        "verbal", "record_sharing", int(template.group(1)))
    wang = await login(client, "dr.wang")
    seen = [await (await client.get(f"/api/consultations/{c.id}", headers=wang)).json() for c in (first, second)]
    assert [s["title"] for s in seen] == ["多学科会诊 MDT", None]
    await form_login(client, "coord.zhao")
    coordinator = await (await client.get("/consultations/new", headers=EN)).text()
    assert "New consultation" in coordinator and 'id="sharing"' not in coordinator, "not at the patient's side"
