"""The older FHIR R4 exports under /api, checked against HL7's R4 (4.0.1) JSON schema and the SMART on FHIR
models (``r4.valid_r4``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fhirclient.models.fhirabstractbase import FHIRValidationError

from server.appkeys import DATABASE
from server.audit import trail as audit

from ...conftest import login
from ..api.test_referrals import act, booked_referral, create, ids
from .r4 import model, valid_r4


async def _export(client: TestClient, path: str, username: str = "dr.li") -> dict[str, Any]:
    response = await client.get(path, headers=await login(client, username))
    assert response.status == 200, await response.text()
    assert response.content_type == "application/fhir+json"
    return valid_r4(await response.json())


async def _completed_referral(client: TestClient) -> dict[str, Any]:
    referral, _ = await booked_referral(client)
    assert (await act(client, "dr.wang", referral["id"], "start")).status == 200
    signed = await client.post(f"/api/referrals/{referral['id']}/reports", headers=await login(client, "dr.wang"),
                               json={"findings": "Stable angina.", "diagnosis_code": "I20.8",
                                     "recommendations": "Exercise ECG in 4 weeks."})
    assert signed.status == 201, await signed.text()  # signing the report completes the referral
    done = await client.get(f"/api/referrals/{referral['id']}", headers=await login(client, "dr.wang"))
    return await done.json()


async def test_a_completed_referral_exports_as_valid_r4(client: TestClient) -> None:
    """A completed referral's older /api exports are valid R4: the ServiceRequest completed and urgent, with its
    patient, requester and encounter and without the specialist's opinion; the Appointment fulfilled, with its virtual
    address and its participants accepted; the Encounter finished and virtual, from the start to the opinion, based on
    the request; the sharing Consent active, for the request, naming who recorded it. Each export is audited under the
    patient, in order."""
    referral = await _completed_referral(client)
    number, consultation = referral["id"], referral["consultation_id"]

    request = await _export(client, f"/api/referrals/{number}/fhir")
    assert (request["status"], request["intent"], request["priority"]) == ("completed", "order", "urgent")
    assert request["subject"]["reference"] == "Patient/1" and request["requester"]["reference"] == "Practitioner/1"
    assert "Stable angina" not in json.dumps(request), "the opinion is a DiagnosticReport, not a note"
    assert request["encounter"] == {"reference": f"Encounter/{consultation}"}

    appointment = await _export(client, f"/api/referrals/{number}/appointment/fhir", "coord.zhao")
    assert appointment["status"] == "fulfilled" and appointment["minutesDuration"] == 30
    assert appointment["start"] == referral["appointment"]["starts_at"]
    virtual = {e["url"]: e for e in appointment["extension"][0]["extension"]}
    assert virtual["addressUrl"]["valueUrl"].endswith(f"/consultations/{consultation}")
    assert {p["status"] for p in appointment["participant"]} == {"accepted"}

    encounter = await _export(client, f"/api/consultations/{consultation}/fhir", "dr.wang")
    assert encounter["status"] == "finished"
    assert encounter["class"] == {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR",
                                  "display": "virtual"}
    assert encounter["period"]["start"] <= encounter["period"]["end"], "from the start action to the opinion"
    assert encounter["basedOn"] == [{"reference": f"ServiceRequest/{number}"}]

    consent = await _export(client, f"/api/consents/{referral['sharing_consent']['id']}/fhir")
    assert consent["status"] == "active" and consent["scope"]["coding"][0]["code"] == "patient-privacy"
    assert consent["provision"]["data"][0]["reference"]["reference"] == f"ServiceRequest/{number}"
    recorded_by = [e for e in consent["extension"]
                   if e["url"].endswith("/fhir/StructureDefinition/consent-recorded-by")]
    assert recorded_by[0]["valueReference"]["reference"] == "Practitioner/1"

    exports = [(e.subject, json.loads(e.detail)["resource"]) for e in await audit.trail(client.app[DATABASE])
               if e.action == "fhir.exported"]
    patient = f"patient:{referral['patient']['id']}"
    assert exports == [(patient, f"ServiceRequest/{number}"),
                       (patient, f"Appointment/{referral['appointment']['id']}"),
                       (patient, f"Encounter/{consultation}"),
                       (patient, f"Consent/{referral['sharing_consent']['id']}")]


async def test_a_withdrawn_consent_exports_inactive_and_withholds_the_referral(client: TestClient) -> None:
    """Once the patient's consent to share records is withdrawn (by the referring doctor), the Consent exports inactive
    with its period ended, and the referral's export is refused: 403 records-withheld for the receiving coordinator, 403
    for a doctor of another county hospital."""
    known = await ids(client)
    referral = await create(client, known)
    consent_id = referral["sharing_consent"]["id"]
    withdrawn = await client.post(f"/api/consents/{consent_id}/withdraw", headers=await login(client, "dr.li"))
    assert withdrawn.status == 200
    consent = await _export(client, f"/api/consents/{consent_id}/fhir")
    assert consent["status"] == "inactive" and "end" in consent["provision"]["period"]
    refused = await client.get(f"/api/referrals/{referral['id']}/fhir", headers=await login(client, "coord.zhao"))
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "records-withheld"
    assert (await client.get(f"/api/referrals/{referral['id']}/fhir",
                             headers=await login(client, "dr.chen"))).status == 403


async def test_a_patients_clicked_recording_consent_exports_with_its_text(client: TestClient) -> None:
    """A patient's clicked consent to recording exports with the action collect, the consent text (version 1) as its
    source attachment, and the method, clicked, as its extension."""
    from ...support.visits import consent, invite

    given = await consent(client, await invite(client), "recording")
    exported = await _export(client, f"/api/consents/{given['id']}/fhir", "dr.wang")
    assert exported["provision"]["action"][0]["coding"][0]["code"] == "collect"
    assert exported["sourceAttachment"]["title"].endswith("(v1)")
    assert [e["valueCode"] for e in exported["extension"]] == ["clicked"]


def test_the_checker_refuses_what_r4_does_not_define() -> None:
    """Both checks refuse: an element R4 does not define (the schema), a missing required element (the model)."""
    with pytest.raises(AssertionError, match="virtual"):
        valid_r4({"resourceType": "Encounter", "status": "finished", "class": {"code": "VR"}, "virtual": True})
    with pytest.raises(AssertionError, match="not one of"):
        valid_r4({"resourceType": "Encounter", "status": "over", "class": {"code": "VR"}})
    with pytest.raises(AssertionError, match="'scope' is a required property"):
        valid_r4({"resourceType": "Consent", "status": "active"})
    with pytest.raises(FHIRValidationError):  # the model's own check, behind the schema's
        model("Consent")({"resourceType": "Consent", "status": "active"}, strict=True)


async def test_the_service_request_carries_the_consultation_request(client: TestClient) -> None:
    """The request's working diagnosis is a second reason, coded in ICD-10 where the doctor picked a code; the
    question, history and results are notes, each labelled in both languages; valid R4."""
    referral = await create(client, await ids(client), working_diagnosis="不稳定型心绞痛？", diagnosis_code="I20.0",
                            history="高血压十年。", results="心电图：V4-V6 ST 段压低。")
    request = await _export(client, f"/api/referrals/{referral['id']}/fhir")
    assert request["reasonCode"][0] == {"text": "Chest pain on exertion, ECG changes"}
    assert request["reasonCode"][1] == {"text": "不稳定型心绞痛？",
                                        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I20.0"}]}
    notes = [n["text"] for n in request["note"]]
    assert notes == ["68-year-old man; ST depression in V4-V6.",
                     "Question for the specialist / 会诊目的及要求: Is there myocardial ischaemia?",
                     "Relevant history / 相关病史: 高血压十年。",
                     "Relevant results / 相关检查结果: 心电图：V4-V6 ST 段压低。"]
