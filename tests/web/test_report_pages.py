"""The referral page's report: the booked specialist signs it from the page (the same model and service as the
API), the signed versions are listed with their download, the referring doctor acknowledges receipt, and an
amendment adds a version; in English and Chinese."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE, REPORTS
from server.models import ConsultationReport

from ..server.api.test_referrals import booked_referral
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}
REPORT = {"findings": "Stable angina.", "diagnosis_code": "I20.8", "recommendations": "Exercise ECG in four weeks."}


async def _as(client: TestClient, username: str) -> None:
    client.session.cookie_jar.clear()
    await form_login(client, username)


async def test_sign_acknowledge_and_amend_from_the_referral_page(client: TestClient) -> None:
    """Each step by whom it belongs to, each answered by the page: the form, the versions, the buttons."""
    booked, _ = await booked_referral(client)
    referral = booked["id"]
    await _as(client, "dr.wang")
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    assert 'id="report-form"' in page and "data-icd10" in page and "diagnosis-picker.js" in page
    bad = await client.post(f"/referrals/{referral}/report", headers=EN, allow_redirects=False,
                            data={**REPORT, "diagnosis_code": "nope"})
    assert bad.status == 422 and 'id="error-diagnosis_code"' in await bad.text() and "diagnosis_code:" not in \
        await bad.text(), "the refusal is said beside the field, not by its code name"
    assert "Stable angina.</textarea>" in await bad.text(), "what was written is kept"
    signed = await client.post(f"/referrals/{referral}/report", headers=EN, allow_redirects=False, data=REPORT)
    assert signed.status == 303 and signed.headers["Location"] == f"/referrals/{referral}#report"
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    assert 'id="report"' in page and "Version 1" in page and "Download the signed PDF" in page
    assert 'id="report-form"' not in page and 'id="amend"' in page
    assert "Not yet acknowledged by the referring doctor" in page

    await _as(client, "dr.li")
    page = await (await client.get(f"/referrals/{referral}", headers=ZH)).text()
    assert "会诊报告" in page and "确认收到" in page and 'id="amend"' not in page
    report_id = re.findall(r'id="report-(\d+)"', page)[0]
    acknowledged = await client.post(f"/referrals/{referral}/reports/{report_id}/acknowledge", headers=ZH,
                                     allow_redirects=False)
    assert acknowledged.status == 303
    page = await (await client.get(f"/referrals/{referral}", headers=ZH)).text()
    assert "已确认收到" in page

    await _as(client, "dr.wang")
    amended = await client.post(f"/referrals/{referral}/report", headers=EN, allow_redirects=False,
                                data={**REPORT, "diagnosis_code": "I20.9", "amends": report_id})
    assert amended.status == 303
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    assert "Version 2" in page and "Version 1" in page and "I20.9" in page
    refused = await client.post(f"/referrals/{referral}/report", headers=EN, allow_redirects=False,
                                data={**REPORT, "amends": report_id})
    assert refused.status == 409 and "amend the latest" in await refused.text()


async def test_the_verification_page_says_whether_the_report_holds(client: TestClient) -> None:
    """In words, in the reader's language: a stored report holds; once its file is swapped for another
    version's (validly signed, but not the one recorded), it does not, and the page says which check failed."""
    booked, _ = await booked_referral(client)
    referral = booked["id"]
    await _as(client, "dr.wang")
    assert (await client.post(f"/referrals/{referral}/report", headers=EN, data=REPORT)).status == 200
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    first = re.findall(r'id="report-(\d+)"', page)[0]
    await client.post(f"/referrals/{referral}/report", headers=EN, data={**REPORT, "amends": first})
    address = f"/referrals/{referral}/reports/{first}/verification"
    assert address in page
    await _as(client, "dr.li")  # the referring doctor checks what they received
    holds = await (await client.get(address, headers=ZH)).text()
    assert 'data-holds="true"' in holds and "报告有效" in holds and "Telemed demo report signing" in holds

    tools = client.app[REPORTS]
    async with client.app[DATABASE].session() as session:
        rows = {r.version: r for r in (await session.exec(select(ConsultationReport))).all()}
    assert rows[1].locale == "zh-CN"  # the record copy, in the requesting hospital's language
    (tools.root / rows[1].file).write_bytes((tools.root / rows[2].file).read_bytes())
    broken = await (await client.get(address, headers=ZH)).text()
    assert 'data-holds="false"' in broken and "请勿依据此文件" in broken
    assert re.search(r"SHA-256 与审计日志记录一致</dt><dd>未通过", broken)
    english = await (await client.get(address, headers=EN)).text()
    assert 'data-holds="true"' in english, "the English rendition was not touched"
    assert (await client.get(f"/referrals/{referral}/reports/999/verification", headers=EN)).status == 404


async def test_a_report_named_under_another_referral_is_not_found(client: TestClient) -> None:
    """The forms name a report under its referral's address: a report of another referral there is 404, not
    acknowledged or amended under the wrong referral's page."""
    booked, _ = await booked_referral(client)
    referral = booked["id"]
    await _as(client, "dr.wang")
    assert (await client.post(f"/referrals/{referral}/report", headers=EN, allow_redirects=False,
                              data=REPORT)).status == 303
    async with client.app[DATABASE].session() as session:
        report = (await session.exec(select(ConsultationReport))).one()
    amended = await client.post(f"/referrals/{referral + 1}/report", headers=EN, allow_redirects=False,
                                data={**REPORT, "amends": str(report.id)})
    assert amended.status == 404
    await _as(client, "dr.li")
    acknowledged = await client.post(f"/referrals/{referral + 1}/reports/{report.id}/acknowledge", headers=EN,
                                     allow_redirects=False)
    assert acknowledged.status == 404
    async with client.app[DATABASE].session() as session:
        assert (await session.get(ConsultationReport, report.id)).acknowledged_at is None
        assert len((await session.exec(select(ConsultationReport))).all()) == 1
