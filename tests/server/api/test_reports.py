"""Consultation reports through the REST API: signed by the booked specialist, downloaded as a signed PDF,
verified, acknowledged by the referring doctor, amended into a new version; refusals are 4xx with a message."""

from __future__ import annotations

import hashlib
import json

from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server.appkeys import DATABASE
from server.models import AuditEvent

from ...conftest import login
from .test_referrals import booked_referral

BODY = {"findings": "Exertional angina; ST depression V4-V6.", "diagnosis_code": "I20.8",
        "recommendations": "Coronary angiography."}


async def test_the_report_journey(client: TestClient) -> None:
    """Sign, list, download (the hash matches), verify, acknowledge, amend: each by whom it belongs to."""
    booked, _ = await booked_referral(client)
    referral = booked["id"]  # booking answers with the referral
    wang, li = await login(client, "dr.wang"), await login(client, "dr.li")
    refused = await client.post(f"/api/referrals/{referral}/reports", json=BODY, headers=li)
    assert refused.status == 403 and (await refused.json())["error"]["message"]
    unknown = await client.post(f"/api/referrals/{referral}/reports", json={**BODY, "diagnosis_code": "Q99.99"},
                                headers=wang)
    assert unknown.status == 422 and "diagnosis_code" in (await unknown.json())["error"]["fields"]
    assert (await client.post(f"/api/referrals/{referral}/reports", json={**BODY, "findings": ""},
                              headers=wang)).status == 422

    signed = await client.post(f"/api/referrals/{referral}/reports", json=BODY, headers=wang)
    assert signed.status == 201, await signed.text()
    report = await signed.json()
    assert report["version"] == 1 and report["diagnosis"]["code"] == "I20.8" and report["acknowledged_at"] is None
    assert (await client.post(f"/api/referrals/{referral}/reports", json=BODY, headers=wang)).status == 409
    seen = await (await client.get(f"/api/referrals/{referral}", headers=li)).json()
    assert seen["state"] == "completed"

    listed = await (await client.get(f"/api/referrals/{referral}/reports", headers=li)).json()
    assert [r["id"] for r in listed["reports"]] == [report["id"]]
    assert report["languages"] == ["zh-CN", "en"]  # the record copy in the requesting hospital's language first
    pdf = await client.get(report["url"] + "?locale=zh-CN", headers=li)
    assert pdf.status == 200 and pdf.content_type == "application/pdf"
    assert hashlib.sha256(await pdf.read()).hexdigest() == report["pdf_sha256"]
    english = await client.get(report["url"], headers={**li, "Accept-Language": "en"})
    assert english.status == 200 and "-en.pdf" in english.headers["Content-Disposition"]
    assert (await client.get(report["url"] + "?locale=fr", headers=li)).status == 422
    verified = await (await client.get(report["verification_url"], headers=li)).json()
    assert verified["holds"] and verified["hash_matches"] and verified["signature"]["trusted"]
    assert verified["signer"] == report["signer_subject"] and verified["report"]["version"] == 1

    assert (await client.post(f"/api/reports/{report['id']}/acknowledgement", headers=wang)).status == 403
    acknowledged = await client.post(f"/api/reports/{report['id']}/acknowledgement", headers=li)
    assert acknowledged.status == 200 and (await acknowledged.json())["acknowledged_at"]

    amended = await client.post(f"/api/reports/{report['id']}/amendments", headers=wang,
                                json={**BODY, "diagnosis_code": "I20.9"})
    assert amended.status == 201, await amended.text()
    second = await amended.json()
    assert second["version"] == 2 and second["supersedes_id"] == report["id"]
    listed = await (await client.get(f"/api/referrals/{referral}/reports", headers=li)).json()
    assert [r["version"] for r in listed["reports"]] == [1, 2]
    assert (await client.post(f"/api/reports/{report['id']}/amendments", json=BODY, headers=wang)).status == 409


async def test_outsiders_see_no_report(client: TestClient) -> None:
    """Someone who cannot see the referral cannot list, download or verify its report; a missing one is 404."""
    booked, _ = await booked_referral(client)
    referral = booked["id"]  # booking answers with the referral
    signed = await client.post(f"/api/referrals/{referral}/reports", json=BODY, headers=await login(client, "dr.wang"))
    report = await signed.json()
    chen = await login(client, "dr.chen")
    for path in (f"/api/referrals/{referral}/reports", report["url"], report["verification_url"]):
        assert (await client.get(path, headers=chen)).status == 403, path
    assert (await client.get("/api/reports/999999/verification", headers=chen)).status == 404


async def test_a_withdrawn_sharing_consent_withholds_the_report_and_its_words(client: TestClient) -> None:
    """The report's findings were also copied onto the referral as its opinion: once the patient withdraws
    their consent to sharing, the receiving side reads neither the report nor those words, on the API or
    on the page, while the referring hospital still does."""
    booked, _ = await booked_referral(client)
    referral = booked["id"]
    signed = await client.post(f"/api/referrals/{referral}/reports", json=BODY, headers=await login(client, "dr.wang"))
    assert signed.status == 201, await signed.text()
    li = await login(client, "dr.li")
    consent = (await (await client.get(f"/api/referrals/{referral}", headers=li)).json())["sharing_consent"]
    withdrawn = await client.post(f"/api/consents/{consent['id']}/withdraw", headers=li)
    assert withdrawn.status == 200, await withdrawn.text()
    for username in ("dr.wang", "coord.zhao"):
        seen = await (await client.get(f"/api/referrals/{referral}", headers=await login(client, username))).json()
        assert seen["records_withheld"] and seen["opinion"] is None and seen["recommendations"] is None, username
        assert "ST depression" not in json.dumps(seen), username
        listed = await client.get(f"/api/referrals/{referral}/reports", headers=await login(client, username))
        assert listed.status == 403, username
    own = await (await client.get(f"/api/referrals/{referral}", headers=li)).json()
    assert own["opinion"].startswith("Exertional angina"), "the referring hospital keeps its record"
    listed = await client.get(f"/api/referrals/{referral}/reports", headers=li)
    assert listed.status == 200 and len((await listed.json())["reports"]) == 1
    async with client.app[DATABASE].session() as session:
        viewed = (await session.exec(select(AuditEvent).where(AuditEvent.action == "patient.viewed")
                                     .order_by(col(AuditEvent.id).desc()))).first()
    assert viewed is not None and json.loads(viewed.detail) == {"via": f"referral:{referral}", "reports": 1}, \
        "reading the report's findings through the API is a view of the patient's record, audited"
