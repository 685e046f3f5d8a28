"""Patients: the national ID only as a keyed hash and its last four, matching by it, who sees a record,
every view audited, and records shared with the partner hospital only while the patient consents."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.audit import trail as audit
from server.models import Patient
from server.patients.records import normalise_national_id

from ...conftest import login

NATIONAL_ID = "11010519491231002X"  # the standard's own example, with a valid check character


def test_national_ids_are_checked_by_their_check_character() -> None:
    """A national ID is trimmed and its check character upper-cased; a wrong check character, too few digits or a letter
    other than X at the end is refused with the reason."""
    assert normalise_national_id(" 11010519491231002x ") == NATIONAL_ID
    for bad, why in [("110105194912310021", "check character"), ("1101051949123100", "17 digits"),
                     ("11010519491231002Y", "17 digits")]:
        with pytest.raises(ValueError, match=why):
            normalise_national_id(bad)


async def _register(client: TestClient, username: str = "dr.li", **fields: object) -> tuple[int, dict]:
    body = {"name": "王秀英 Wang Xiuying", "sex": "female", "birth_year": 1949, "phone": "138 0000 0000",
            "national_id": NATIONAL_ID, **fields}
    response = await client.post("/api/patients", json=body, headers=await login(client, username))
    return response.status, await response.json()


async def test_the_national_id_is_kept_only_as_a_hash_and_matches_once(client: TestClient) -> None:
    """The national ID is stored only as a hash and shown only by its last four; the same ID again at the same hospital,
    under another name, is 409 `duplicate-patient` naming the record, while another hospital keeps its own; a search by
    the ID finds the record and is audited without the ID in it."""
    status, patient = await _register(client)
    assert status == 201 and patient["national_id_last4"] == "002X" and "national_id" not in patient
    async with client.app[DATABASE].session() as session:
        row = await session.get(Patient, patient["id"])
    assert NATIONAL_ID not in json.dumps(row.model_dump(mode="json")), "the ID itself is never stored"
    assert row.national_id_hash and len(row.national_id_hash) == 64

    status, again = await _register(client, name="another spelling", national_id=NATIONAL_ID.lower())
    assert (status, again["error"]["code"], again["error"]["patient_id"]) == (409, "duplicate-patient", patient["id"])
    status, elsewhere = await _register(client, "dr.chen")
    assert status == 201, "another hospital keeps its own record of the same person"

    found = await client.get(f"/api/patients?national_id={NATIONAL_ID}", headers=await login(client, "dr.li"))
    assert [p["id"] for p in (await found.json())["patients"]] == [patient["id"]]
    searches = [e for e in await audit.trail(client.app[DATABASE]) if e.action == "patient.searched"]
    assert len(searches) == 1 and NATIONAL_ID not in searches[0].detail


@pytest.mark.parametrize(("fields", "field"), [({"national_id": "110105194912310021"}, "national_id"),
                                               ({"birth_year": 1850}, "birth_year"),
                                               ({"phone": "call me"}, "phone"), ({"name": ""}, "name")])
async def test_bad_patient_fields_are_named_and_nothing_is_written(client: TestClient, fields: dict,
                                                                   field: str) -> None:
    """Each row, a national ID with a wrong check character, an impossible birth year, a phone that is not a number or
    an empty name: 422 naming that field, and no patient is added."""
    status, body = await _register(client, **fields)
    assert status == 422 and field in body["error"]["fields"]
    async with client.app[DATABASE].session() as session:
        assert len((await session.exec(select(Patient))).all()) == 1, "only the demo patient"


@pytest.mark.parametrize("username", ["admin", "auditor"])
async def test_administrators_and_auditors_see_no_health_records(client: TestClient, username: str) -> None:
    """Each row, an administrator or an auditor: registering a patient and reading a patient's record are both refused
    403."""
    assert (await _register(client, username))[0] == 403
    response = await client.get("/api/patients/1", headers=await login(client, username))
    assert response.status == 403


async def _refer(client: TestClient) -> dict:
    response = await client.post("/api/referrals", headers=await login(client, "dr.li"), json={
        "patient_id": 1, "specialty": "cardiology", "urgency": "urgent", "reason": "Syncope at rest",
        "summary": "Holter: pauses of 3 s.", "target_hospital_id": 1, "question": "Is this cardiac syncope?",
        "sharing_consent": "verbal"})
    assert response.status == 201, await response.text()
    return await response.json()


async def test_records_reach_the_partner_hospital_only_while_the_patient_consents(client: TestClient) -> None:
    """With the patient's verbal consent the partner's coordinator reads the referral and the record (without the phone)
    and another county's doctor does not; only the referring doctor withdraws the consent, once; after that the partner
    sees neither patient nor clinical text, while the referring hospital keeps its record; every view of the record is
    audited, and only those."""
    referral = await _refer(client)
    consent = referral["sharing_consent"]
    assert (consent["method"], consent["recorded_by"], consent["purpose"]) == ("verbal", 1, "record_sharing")
    coordinator = await login(client, "coord.zhao")
    seen = await (await client.get(f"/api/referrals/{referral['id']}", headers=coordinator)).json()
    assert seen["summary"] == "Holter: pauses of 3 s." and seen["patient"]["name"] == "张伟 Zhang Wei"
    record = await client.get("/api/patients/1", headers=coordinator)
    assert record.status == 200 and "phone" not in await record.json(), "the phone stays at the patient's hospital"
    outsider = await client.get("/api/patients/1", headers=await login(client, "dr.chen"))
    assert outsider.status == 403

    refused = await client.post(f"/api/consents/{consent['id']}/withdraw", headers=coordinator)
    assert refused.status == 403
    withdrawn = await client.post(f"/api/consents/{consent['id']}/withdraw", headers=await login(client, "dr.li"))
    assert withdrawn.status == 200 and withdrawn.content_type == "application/json"
    again = await client.post(f"/api/consents/{consent['id']}/withdraw", headers=await login(client, "dr.li"))
    assert again.status == 409

    hidden = await (await client.get(f"/api/referrals/{referral['id']}", headers=coordinator)).json()
    assert hidden["records_withheld"] is True
    assert hidden["patient"] is None and hidden["summary"] is None and hidden["reason"] is None
    listed = await (await client.get("/api/referrals", headers=coordinator)).json()
    assert listed["referrals"][0]["patient"] is None
    assert (await client.get("/api/patients/1", headers=coordinator)).status == 403
    own = await (await client.get(f"/api/referrals/{referral['id']}", headers=await login(client, "dr.li"))).json()
    assert own["summary"] == "Holter: pauses of 3 s.", "the referring hospital keeps its own record"

    views = [(e.actor, json.loads(e.detail)["via"]) for e in await audit.trail(client.app[DATABASE])
             if e.action == "patient.viewed"]
    assert views == [("user:4", f"referral:{referral['id']}"), ("user:4", "api"),
                     ("user:1", f"referral:{referral['id']}")], "every view with the record, and only those"


async def test_a_referral_is_not_sent_without_the_patients_consent(client: TestClient) -> None:
    """A referral sent without the patient's consent to sharing is 422 naming `sharing_consent`; a draft needs none, but
    submitting it without consent is the same 422 and it stays a draft."""
    doctor = await login(client, "dr.li")
    body = {"patient_id": 1, "specialty": "cardiology", "urgency": "routine", "reason": "Review",
            "question": "Is the murmur significant?", "target_hospital_id": 1}
    refused = await client.post("/api/referrals", json=body, headers=doctor)
    assert refused.status == 422 and "sharing_consent" in (await refused.json())["error"]["fields"]
    draft = await client.post("/api/referrals", json={**body, "submit": False}, headers=doctor)
    assert draft.status == 201, "a draft shares nothing and needs no consent yet"
    number = (await draft.json())["id"]
    submit = await client.post(f"/api/referrals/{number}/actions", json={"action": "submit"}, headers=doctor)
    assert submit.status == 422 and list((await submit.json())["error"]["fields"]) == ["sharing_consent"]
    assert (await (await client.get(f"/api/referrals/{number}", headers=doctor)).json())["state"] == "draft"


async def test_a_doctor_records_the_patients_verbal_consent_in_the_consultation(client: TestClient) -> None:
    """A participating doctor records the patient's verbal consent to recording, as given by the patient and recorded by
    the doctor, and it is listed beside the demo's consent to sharing; a doctor outside the consultation is refused 403,
    and consent to record sharing, which already stands, is the same consent recorded again (the demo's consultation
    has no referral, and a specialist of another hospital takes part)."""
    doctor = await login(client, "dr.li")
    given = await client.post("/api/consultations/1/consents", json={"purpose": "recording"}, headers=doctor)
    body = await given.json()
    assert given.status == 201 and (body["method"], body["recorded_by"], body["identity"]) == (
        "verbal", 1, "patient:1")
    outsider = await client.post("/api/consultations/1/consents", json={"purpose": "video"},
                                 headers=await login(client, "dr.chen"))
    assert outsider.status == 403
    listed = await (await client.get("/api/consultations/1/consents", headers=doctor)).json()
    assert [c["purpose"] for c in listed["consents"]] == ["record_sharing", "recording"]
    sharing = await client.post("/api/consultations/1/consents", json={"purpose": "record_sharing"},
                                headers={**doctor, "Accept-Language": "zh-CN"})  # the language it was read in
    assert sharing.status == 201 and (await sharing.json())["id"] == listed["consents"][0]["id"]


async def test_the_list_is_searched_by_name_and_paged(client: TestClient) -> None:
    """A search by name ignores case and pages by twenty: 21 matches are two pages, the second holding the last one."""
    headers = await login(client, "dr.li")
    for n in range(21):
        response = await client.post("/api/patients", json={"name": f"Liu {n:02d}"}, headers=headers)
        assert response.status == 201
    first = await (await client.get("/api/patients?name=liu", headers=headers)).json()
    assert (len(first["patients"]), first["total"], first["pages"], first["page"]) == (20, 21, 2, 1)
    second = await (await client.get("/api/patients?name=liu&page=2", headers=headers)).json()
    assert [p["name"] for p in second["patients"]] == ["Liu 20"]


@pytest.mark.parametrize(("query", "field"), [("page=0", "page"), ("page=x", "page"),
                                              ("national_id=123", "national_id")])
async def test_a_bad_search_is_named(client: TestClient, query: str, field: str) -> None:
    """Each row, a page 0, a page that is not a number or a partial national ID: 422 naming that parameter."""
    response = await client.get(f"/api/patients?{query}", headers=await login(client, "dr.li"))
    assert response.status == 422 and field in (await response.json())["error"]["fields"]
