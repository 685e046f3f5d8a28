"""The read-only FHIR R4 API under /fhir: what it serves is valid R4 (HL7's JSON schema and the R4 models), its
references resolve within it, its identifiers and extensions live under this installation's own address, and
each read asks the pages' rules and is audited under the patient it concerns."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select
from yarl import URL

from server.appkeys import DATABASE
from server.models import AuditEvent, Consent, ConsentTemplate, Hospital, HospitalLevel, Role, User
from server.settings import Settings

from ...conftest import login
from ..api.test_referrals import act, booked_referral, first_free_slot
from .r4 import valid_r4

PUBLIC = "https://telemed.example.org"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """This installation says where others reach it: identifiers and extensions live under that address."""
    return dataclasses.replace(Settings.load(environ={}, data_dir=tmp_path / "var", port=0), public_url=PUBLIC)


async def fhir_get(client: TestClient, path: str, username: str | None = "dr.li", status: int = 200) -> dict[str, Any]:
    """GET a FHIR path, checked: the status, the media type, and (on success) a valid R4 resource; an error is an
    OperationOutcome."""
    headers = await login(client, username) if username else {}
    response = await client.get(path, headers=headers)
    assert response.status == status, (path, await response.text())
    assert response.content_type == "application/fhir+json", path
    body = await response.json()
    if status >= 400:
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"
    return valid_r4(body)


def references(value: Any) -> Iterator[str]:
    """Every ``reference`` anywhere in a resource."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                yield inner
            else:
                yield from references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from references(inner)


def under_public(value: Any) -> Iterator[tuple[str, str]]:
    """(what, URL) of every identifier system and extension URL in a resource."""
    if isinstance(value, dict):
        if isinstance(value.get("system"), str) and "value" in value and "use" in value:
            yield "identifier", value["system"]
        for key, inner in value.items():
            if key == "extension":
                for extension in inner:
                    if "://" in extension["url"]:  # not a complex extension's part, named by its definition
                        yield "extension", extension["url"]
            yield from under_public(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from under_public(inner)


async def completed_and_moved(client: TestClient) -> dict[str, Any]:
    """A referral booked, moved to another slot (its first booking cancelled), held and completed with an
    opinion; dr.wang also consents to being recorded."""
    referral, known = await booked_referral(client)
    first = referral["appointment"]
    slot = await first_free_slot(client, "coord.zhao", known["dr.wang"])  # the next free one: the first is taken
    moved = await client.put(f"/api/referrals/{referral['id']}/appointment",
                             json={"specialist_id": known["dr.wang"], "starts_at": slot["starts_at"],
                                   "reason": "the specialist is in theatre"},
                             headers=await login(client, "coord.zhao"))
    assert moved.status == 200, await moved.text()
    own = await client.post(f"/api/consultations/{referral['consultation_id']}/recording-consent",
                            json={"given": True}, headers=await login(client, "dr.wang"))
    assert own.status in (200, 201), await own.text()
    assert (await act(client, "dr.wang", referral["id"], "start")).status == 200
    signed = await client.post(f"/api/referrals/{referral['id']}/reports", headers=await login(client, "dr.wang"),
                               json={"findings": "Stable angina.", "diagnosis_code": "I20.8",
                                     "recommendations": "Exercise ECG in 4 weeks."})
    assert signed.status == 201, await signed.text()
    done = await client.get(f"/api/referrals/{referral['id']}", headers=await login(client, "dr.li"))
    assert (await done.json())["state"] == "completed"
    return {**await done.json(), "first_appointment": first, "report": await signed.json()}


async def test_metadata_lists_exactly_what_is_served(client: TestClient) -> None:
    """The CapabilityStatement, open without a token, names every resource type with a read route, and only
    those."""
    statement = await fhir_get(client, "/fhir/metadata", username=None)
    assert statement["fhirVersion"] == "4.0.1" and "application/fhir+json" in statement["format"]
    assert statement["implementation"]["url"] == f"{PUBLIC}/fhir"
    listed = {r["type"] for r in statement["rest"][0]["resource"]}
    served = {route.resource.canonical.split("/")[2] for route in client.app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith("/fhir/")
              and route.resource.canonical != "/fhir/metadata"}
    assert listed == served
    assert {"Patient", "Practitioner", "PractitionerRole", "Organization", "ServiceRequest", "Appointment",
            "Encounter", "Consent", "DiagnosticReport", "Bundle"} <= listed


async def test_everything_about_a_referral_is_valid_and_every_reference_resolves(client: TestClient) -> None:
    """The referral's Bundle holds valid R4 resources; each reference in it is answered by GET /fhir/<reference>
    with that very resource; identifiers and extension URLs are under TELEMED_PUBLIC_URL, and each extension's
    URL answers with its definition."""
    referral = await completed_and_moved(client)
    bundle = await fhir_get(client, f"/fhir/Bundle/referral-{referral['id']}")
    assert bundle["type"] == "collection"
    held = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e for e in bundle["entry"]}
    for reference, entry in held.items():
        assert entry["fullUrl"] == f"{PUBLIC}/fhir/{reference}"
    found = set(references(bundle))
    assert {f"ServiceRequest/{referral['id']}", "Patient/1", f"Encounter/{referral['consultation_id']}",
            f"PractitionerRole/{referral['appointment']['specialist_id']}"} <= found
    for reference in sorted(found):
        assert not reference.startswith(("http", "urn:")), "relative, within this base"
        resource = await fhir_get(client, f"/fhir/{reference}")
        assert f"{resource['resourceType']}/{resource['id']}" == reference
        assert reference in held, f"{reference} is referenced but not in the bundle"
        assert held[reference]["resource"] == resource, "the bundle's entry is the resource its read answers"
    places = list(under_public(bundle))
    assert {what for what, _ in places} == {"identifier", "extension"}
    for what, url in places:
        if url.startswith("http://hl7.org/fhir/5.0/"):
            continue  # R5's virtualService, through HL7's own cross-version extension
        assert url.startswith(f"{PUBLIC}/fhir/"), (what, url)
        if what == "extension":
            definition = await fhir_get(client, URL(url).path, username=None)
            assert definition["resourceType"] == "StructureDefinition" and definition["url"] == url


async def test_the_opinion_is_a_diagnostic_report_with_author_and_time(client: TestClient) -> None:
    """Not a note on the ServiceRequest: a final DiagnosticReport issued at completion, by the specialist."""
    referral = await completed_and_moved(client)
    report = await fhir_get(client, f"/fhir/DiagnosticReport/{referral['id']}")
    specialist = referral["appointment"]["specialist_id"]
    assert report["status"] == "final" and report["conclusion"].startswith("Stable angina.")
    assert [p["reference"] for p in report["performer"]] == [f"PractitionerRole/{specialist}",
                                                              f"Practitioner/{specialist}"]
    assert report["issued"] and report["basedOn"] == [{"reference": f"ServiceRequest/{referral['id']}"}]
    # the signed report: its ICD-10 diagnosis, and its PDF at an address that checks the reader again
    assert report["conclusionCode"][0]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10", "code": "I20.8",
                                                        "display": referral["report"]["diagnosis"]["text"]}
    (form,) = report["presentedForm"]
    assert form["contentType"] == "application/pdf" and form["creation"]
    pdf = await client.get(URL(form["url"]).path, headers=await login(client, "dr.li"))
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF-")
    assert (await client.get(URL(form["url"]).path, headers=await login(client, "dr.chen"))).status in (403, 404)
    role = await fhir_get(client, f"/fhir/PractitionerRole/{specialist}")
    assert role["specialty"][0]["coding"][0]["code"] == "cardiology"


async def test_a_moved_appointment_keeps_its_cancelled_predecessor(client: TestClient) -> None:
    """A moved referral's first booking is still served as a valid R4 Appointment: cancelled, its reason beginning with
    rescheduled, at the time first booked."""
    first = (await completed_and_moved(client))["first_appointment"]
    old = await fhir_get(client, f"/fhir/Appointment/{first['id']}")
    assert old["status"] == "cancelled" and old["cancelationReason"]["text"].startswith("rescheduled: ")
    assert old["start"] == first["starts_at"]


async def test_consents_name_their_text_and_a_clinicians_own_names_them(client: TestClient) -> None:
    """``sourceAttachment`` is the exact template version agreed to, served as a Binary of its text; a
    clinician's own recording consent has them as performer and as the provision's actor."""
    referral = await completed_and_moved(client)
    async with client.app[DATABASE].session() as session:
        own = (await session.exec(select(Consent).where(Consent.consultation_id == referral["consultation_id"],
                                                        Consent.user_id == referral["appointment"]["specialist_id"])
                                  )).one()
        template = await session.get(ConsentTemplate, own.template_id)
    assert template is not None
    consent = await fhir_get(client, f"/fhir/Consent/{own.id}", "dr.wang")
    me = f"Practitioner/{own.user_id}"
    assert [p["reference"] for p in consent["performer"]] == [me]
    assert consent["provision"]["actor"][0]["reference"]["reference"] == me
    attachment = consent["sourceAttachment"]
    assert attachment["url"] == f"{PUBLIC}/fhir/Binary/{template.id}"
    assert f"(v{template.version})" in attachment["title"]
    text = await fhir_get(client, URL(attachment["url"]).path)
    assert base64.b64decode(text["data"]).decode() == template.body


async def test_patients_match_on_an_identifier_and_never_show_the_national_id(client: TestClient) -> None:
    """The patient carries an identifier under this installation's address; the national ID only as the keyed
    hash we hold, and only to the patient's own hospital (with the phone number)."""
    registered = await client.post("/api/patients", json={"name": "测试患者", "sex": "female", "birth_year": 1960,
                                                           "national_id": "11010519491231002X", "phone": "13800000000"},
                                   headers=await login(client, "dr.li"))
    assert registered.status == 201, await registered.text()
    number = (await registered.json())["id"]
    patient = await fhir_get(client, f"/fhir/Patient/{number}")
    systems = {i["system"]: i["value"] for i in patient["identifier"]}
    assert systems[f"{PUBLIC}/fhir/sid/patient"] == str(number)
    assert "11010519491231002X" not in json.dumps(patient) and "1231002X" not in json.dumps(patient)
    assert len(systems[f"{PUBLIC}/fhir/sid/national-id-hmac-sha256"]) == 64
    assert patient["birthDate"] == "1960" and patient["telecom"][0]["value"] == "13800000000"


async def test_another_hospital_reads_nothing_and_refusals_leak_nothing(client: TestClient) -> None:
    """dr.chen (another county's doctor) is refused every patient resource of the referral, with an
    OperationOutcome that names nothing of it; refusals are not audited as reads; the referrer's reads are,
    under the patient."""
    referral = await completed_and_moved(client)
    number, patient = referral["id"], referral["patient"]["id"]
    database = client.app[DATABASE]
    async with database.session() as session:
        before = len((await session.exec(select(AuditEvent).where(AuditEvent.action == "fhir.read"))).all())
    for path, status in [(f"/fhir/ServiceRequest/{number}", 403), (f"/fhir/Bundle/referral-{number}", 403),
                         (f"/fhir/DiagnosticReport/{number}", 403), (f"/fhir/Patient/{patient}", 403),
                         (f"/fhir/Appointment/{referral['appointment']['id']}", 403),
                         (f"/fhir/Encounter/{referral['consultation_id']}", 403),
                         (f"/fhir/Consent/{referral['sharing_consent']['id']}", 403)]:
        outcome = await fhir_get(client, path, "dr.chen", status=status)
        text = json.dumps(outcome, ensure_ascii=False)
        assert "Stable angina" not in text and "Chest pain" not in text and "张" not in text, path
    async with database.session() as session:
        reads = (await session.exec(select(AuditEvent).where(AuditEvent.action == "fhir.read")
                                    .order_by(col(AuditEvent.id)))).all()
    assert len(reads) == before, "a refused read is not a read"
    await fhir_get(client, f"/fhir/ServiceRequest/{number}")
    await fhir_get(client, f"/fhir/Bundle/referral-{number}")
    async with database.session() as session:
        reads = (await session.exec(select(AuditEvent).where(AuditEvent.action == "fhir.read")
                                    .order_by(col(AuditEvent.id)))).all()
    assert [(e.subject, json.loads(e.detail)["resource"]) for e in reads[-2:]] == [
        (f"patient:{patient}", f"ServiceRequest/{number}"), (f"patient:{patient}", f"Bundle/referral-{number}")]
    assert f"DiagnosticReport/{number}" in json.loads(reads[-1].detail)["bundle"]


async def test_without_consent_the_receiving_side_reads_nothing_of_the_patient(client: TestClient) -> None:
    """Once the patient withdraws consent to sharing, the receiving hospital's coordinator is refused the
    referral's patient data (403 records-withheld, as the pages), and the Encounter names no patient."""
    referral, _ = await booked_referral(client)
    withdrawn = await client.post(f"/api/consents/{referral['sharing_consent']['id']}/withdraw",
                                  headers=await login(client, "dr.li"))
    assert withdrawn.status == 200
    for path in (f"/fhir/ServiceRequest/{referral['id']}", f"/fhir/Patient/{referral['patient']['id']}",
                 f"/fhir/Bundle/referral-{referral['id']}"):
        outcome = await fhir_get(client, path, "coord.zhao", status=403)
        assert outcome["issue"][0]["code"] == "forbidden"
    encounter = await fhir_get(client, f"/fhir/Encounter/{referral['consultation_id']}", "dr.wang")
    assert "subject" not in encounter and "reasonCode" not in encounter


async def test_a_token_is_required_and_unknowns_are_not_found(client: TestClient) -> None:
    """Every read but the metadata and the extensions' definitions needs the API's bearer token (401, as an
    OperationOutcome); what does not exist, or is not an id of ours, is a 404 OperationOutcome."""
    outcome = await fhir_get(client, "/fhir/Patient/1", username=None, status=401)
    assert outcome["issue"][0]["code"] == "login"
    for path in ("/fhir/Patient/999999", "/fhir/Patient/abc", "/fhir/Observation/1", "/fhir/Practitioner/999999",
                 "/fhir/StructureDefinition/nothing", "/fhir/Bundle/referral-999999", "/fhir/Binary/999999"):
        outcome = await fhir_get(client, path, status=404)
        assert outcome["issue"][0]["code"] == "not-found", path


async def test_the_directory_stops_at_the_partnerships(client: TestClient) -> None:
    """Clinicians and hospitals outside the caller's partnerships are not theirs to list (404); administrators,
    who run every hospital's accounts, read them."""
    async with client.app[DATABASE].session() as session:
        outside = Hospital(name="Elsewhere County Hospital", level=HospitalLevel.COUNTY, region="Elsewhere")
        session.add(outside)
        await session.flush()
        assert outside.id is not None
        stranger = User(username="dr.out", display_name="Dr Out", password_hash="!", role=Role.COUNTY_DOCTOR,
                        hospital_id=outside.id)
        session.add(stranger)
        await session.commit()
        await session.refresh(stranger)
    for path in (f"/fhir/Organization/{outside.id}", f"/fhir/Practitioner/{stranger.id}",
                 f"/fhir/PractitionerRole/{stranger.id}"):
        outcome = await fhir_get(client, path, status=404)
        assert "Elsewhere" not in json.dumps(outcome) and "Dr Out" not in json.dumps(outcome)
    assert (await fhir_get(client, f"/fhir/Practitioner/{stranger.id}", "admin"))["name"] == [{"text": "Dr Out"}]
    assert (await fhir_get(client, "/fhir/Practitioner/1"))["name"][0]["text"]


async def test_a_practitioner_carries_a_verified_licence_and_title_only(client: TestClient) -> None:
    """A verified clinician's Practitioner (valid R4) has their licence as an MD identifier from when it was
    verified, and their title as a qualification; once the verification is cleared, neither is shown."""
    async with client.app[DATABASE].session() as session:
        wang = (await session.exec(select(User).where(User.username == "dr.wang"))).one()
    found = await fhir_get(client, f"/fhir/Practitioner/{wang.id}")
    (licence,) = [i for i in found["identifier"] if i.get("type", {}).get("coding", [{}])[0].get("code") == "MD"]
    assert licence["value"] == wang.licence_number and licence["system"] == \
        f"{PUBLIC}/fhir/sid/physician-practising-licence"
    assert found["qualification"] == [{"code": {"text": "Chief physician (主任医师)"}}]

    changed = await client.put(f"/api/admin/accounts/{wang.id}/licence", headers=await login(client, "admin"),
                               json={"licence_number": wang.licence_number, "professional_title": "attending"})
    assert changed.status == 200
    found = await fhir_get(client, f"/fhir/Practitioner/{wang.id}")
    assert [i for i in found["identifier"] if "type" in i] == [] and "qualification" not in found
