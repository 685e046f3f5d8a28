"""The consultation request's pages: the new referral form takes the request's fields and names a wrong one
beside it; the request page lays it out for the receiving side on their clock, linked from the referral,
printable, audited, and withholding the patient once consent is withdrawn; the PDF is the same request; a
draft's request is rewritten on its own form."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.models import AuditEvent, Hospital

from ..support.pdf import pdf_text
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}
FORM = {"patient_id": "1", "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": "1",
        "reason": "胸痛三天", "question": "是否需要冠脉造影？", "working_diagnosis": "不稳定型心绞痛",
        "diagnosis_code": "I20.0", "history": "高血压十年。", "results": "心电图：ST段压低。", "summary": "68岁男性。",
        "title_wanted": "associate_chief", "sharing_consent": "verbal"}


async def _referral(client: TestClient, **changes: str) -> str:
    await form_login(client, "dr.li")
    sent = await client.post("/referrals/new", data={**FORM, **changes}, headers=EN, allow_redirects=False)
    assert sent.status == 303, await sent.text()
    return sent.headers["Location"]


async def test_the_form_names_a_missing_question_and_a_bad_code_beside_them(client: TestClient) -> None:
    """A new referral without a question for the specialist and with an unknown diagnosis code is a 422 with a Chinese
    reason beside each field, each marked invalid, and the request as typed is kept (its history, the title wanted)."""
    await form_login(client, "dr.li")
    refused = await client.post("/referrals/new", data={**FORM, "question": "", "diagnosis_code": "X99.99"},
                                headers=ZH, allow_redirects=False)
    text = await refused.text()
    assert refused.status == 422
    for field in ("question", "diagnosis_code"):
        beside = re.search(rf'<span class="field-error" id="error-{field}">([^<]+)</span>', text)
        assert beside and re.search(r"[\u4e00-\u9fff]", beside[1]), field
        assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', text, re.S), field
    assert "高血压十年。" in text and 'value="associate_chief" selected' in text, "the input is kept"


async def test_the_receiving_side_reads_the_request_laid_out_on_its_clock(client: TestClient) -> None:
    """The coordinator opens the request from the referral page: each field under its heading, the title
    wanted, the consent given, the time in their hospital's zone (moved to Urumqi here), and the read audited."""
    referral = await _referral(client)
    async with client.app[DATABASE].session() as session:
        provincial = await session.get(Hospital, 1)
        assert provincial is not None
        provincial.timezone = "Asia/Urumqi"
        session.add(provincial)
        await session.commit()
    await form_login(client, "coord.zhao")
    page = await (await client.get(referral, headers=EN)).text()
    assert f'href="{referral}/request"' in page and f'href="{referral}/request.pdf"' in page
    assert "request/edit" not in page, "only the referrer edits, and only a draft"
    shown = await client.get(f"{referral}/request", headers=EN)
    text = await shown.text()
    assert shown.status == 200
    for value in ("是否需要冠脉造影？", "不稳定型心绞痛", "I20.0", "高血压十年。", "心电图：ST段压低。", "68岁男性。",
                  "Associate chief physician", "李明 Li Ming", "青山县人民医院", "Question for the specialist"):
        assert value in text, value
    assert 'data-status="given"' in text and "(Asia/Urumqi)" in text
    assert re.search(r'id="requested-at">\d{4}-\d\d-\d\d \d\d:\d\d [^<]+<', text)
    async with client.app[DATABASE].session() as session:
        viewed = (await session.exec(select(AuditEvent.detail).where(AuditEvent.action == "patient.viewed"))).all()
    assert any('"request-page"' in d for d in viewed)
    pdf = await client.get(f"{referral}/request.pdf", headers=ZH)
    assert pdf.status == 200 and pdf.content_type == "application/pdf"
    words = pdf_text(await pdf.read())
    assert all(v in words for v in ("会诊申请单", "是否需要冠脉造影？", "副主任医师"))


async def test_the_request_withholds_the_patient_once_consent_is_withdrawn(client: TestClient) -> None:
    """Once the patient's consent to sharing is withdrawn, the receiving coordinator's request page
    says the records are withheld and shows neither the patient's name nor the question, history or
    reason; the PDF has neither the name nor the question."""
    referral = await _referral(client)
    withdrawn = await client.post(f"{referral}/sharing-consent/withdraw", headers=EN, allow_redirects=False)
    assert withdrawn.status == 303
    await form_login(client, "coord.zhao")
    text = await (await client.get(f"{referral}/request", headers=EN)).text()
    assert 'id="records-withheld"' in text and 'data-status="withdrawn"' in text
    for value in ("是否需要冠脉造影？", "张伟", "高血压十年。", "胸痛三天"):
        assert value not in text, value
    pdf = pdf_text(await (await client.get(f"{referral}/request.pdf", headers=ZH)).read())
    assert "张伟" not in pdf and "是否需要冠脉造影？" not in pdf


async def test_outsiders_are_refused_the_request_page_and_pdf(client: TestClient) -> None:
    """A doctor of another county hospital gets 403 for a referral's request page, its PDF and its edit form."""
    referral = await _referral(client)
    await form_login(client, "dr.chen")
    for path in (f"{referral}/request", f"{referral}/request.pdf", f"{referral}/request/edit"):
        assert (await client.get(path, headers=EN)).status == 403, path


async def test_a_draft_request_is_rewritten_on_its_form(client: TestClient) -> None:
    """The referrer's draft links to its edit form; a bad code is named beside its field; saved, the
    referral page shows the question."""
    draft = await _referral(client, question="", submit="draft")
    page = await (await client.get(draft, headers=EN)).text()
    assert f'href="{draft}/request/edit"' in page
    form = await (await client.get(f"{draft}/request/edit", headers=EN)).text()
    assert "胸痛三天" in form and 'value="associate_chief" selected' in form
    values = {k: FORM[k] for k in ("reason", "working_diagnosis", "history", "results", "summary", "title_wanted")}
    refused = await client.post(f"{draft}/request/edit", data={**values, "question": "新的问题？",
                                                                "diagnosis_code": "nope"}, headers=EN)
    assert refused.status == 422 and 'id="error-diagnosis_code"' in await refused.text()
    saved = await client.post(f"{draft}/request/edit", headers=EN, allow_redirects=False,
                              data={**values, "question": "新的问题？", "diagnosis_code": "I10"})
    assert saved.status == 303
    assert "新的问题？" in await (await client.get(draft, headers=EN)).text()


def test_the_request_prints_without_the_page_around_it() -> None:
    """The print rules hide the top bar and the page's tools, so the paper shows only the form."""
    from web import STATIC_DIR
    css = (STATIC_DIR / "css" / "app.css").read_text()
    printing = css[css.index("@media print"):]
    assert ".topbar" in printing and ".request-tools" in printing
