"""FHIR R4 exports, checked against the R4 (4.0.1) definitions by the SMART on FHIR models: required
elements, types, no unknown elements, and the codes each element's value set allows."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fhirclient.models.appointment import Appointment
from fhirclient.models.consent import Consent
from fhirclient.models.encounter import Encounter
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.servicerequest import ServiceRequest

from server.appkeys import DATABASE
from server.audit import trail as audit

from ...conftest import login
from ..api.test_referrals import act, booked_referral, create, ids

MODELS = {"ServiceRequest": ServiceRequest, "Appointment": Appointment, "Consent": Consent, "Encounter": Encounter}


def valid_r4(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, if the R4 model takes all of it (raises FHIRValidationError otherwise)."""
    model = MODELS[resource["resourceType"]](resource, strict=True)
    assert model.as_json() == resource, "every element survives the R4 model: nothing was dropped or retyped"
    return resource


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
    referral = await _completed_referral(client)
    number, consultation = referral["id"], referral["consultation_id"]

    request = await _export(client, f"/api/referrals/{number}/fhir")
    assert (request["status"], request["intent"], request["priority"]) == ("completed", "order", "urgent")
    assert request["subject"]["reference"] == "Patient/1" and request["requester"]["reference"] == "Practitioner/1"
    assert any(n["text"].startswith("Opinion: Stable angina") for n in request["note"])

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
    assert encounter["basedOn"] == [{"reference": f"ServiceRequest/referral-{number}"}]

    consent = await _export(client, f"/api/consents/{referral['sharing_consent']['id']}/fhir")
    assert consent["status"] == "active" and consent["scope"]["coding"][0]["code"] == "patient-privacy"
    assert consent["provision"]["data"][0]["reference"]["reference"] == f"ServiceRequest/referral-{number}"
    recorded_by = [e for e in consent["extension"] if e["url"].endswith("recorded-by")]
    assert recorded_by[0]["valueReference"]["reference"] == "Practitioner/1"

    exports = [e.subject for e in await audit.trail(client.app[DATABASE]) if e.action == "fhir.exported"]
    assert exports == [f"ServiceRequest/referral-{number}", f"Appointment/appointment-{referral['appointment']['id']}",
                       f"Encounter/consultation-{consultation}", f"Consent/consent-{referral['sharing_consent']['id']}"]


async def test_a_withdrawn_consent_exports_inactive_and_withholds_the_referral(client: TestClient) -> None:
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
    from ...support.visits import consent, invite

    given = await consent(client, await invite(client), "recording")
    exported = await _export(client, f"/api/consents/{given['id']}/fhir", "dr.wang")
    assert exported["provision"]["action"][0]["coding"][0]["code"] == "collect"
    assert exported["sourceAttachment"]["title"].endswith("(v1)")
    assert [e["valueCode"] for e in exported["extension"]] == ["clicked"]


def test_the_checker_refuses_what_r4_does_not_define() -> None:
    with pytest.raises(FHIRValidationError):
        valid_r4({"resourceType": "Encounter", "status": "finished", "class": {"code": "VR"}, "virtual": True})
    with pytest.raises(FHIRValidationError):
        valid_r4({"resourceType": "Consent", "status": "active"})  # scope and category are required
