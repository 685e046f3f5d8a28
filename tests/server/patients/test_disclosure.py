"""Nothing derived from a referral's clinical text reaches the receiving hospital once the patient withdraws
their consent to sharing their records: not the consultation booked for it (whose title was the reason), on
any route that shows a consultation, referral, patient, FHIR resource, notification or calendar entry."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.consent import records as consents
from server.consent.records import Consenter, How, Scope
from server.consultations import service as consultations
from server.models import (
    AuditEvent,
    ChatLine,
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    ConsentTemplate,
    Recording,
    RecordingStatus,
    Role,
    User,
    utcnow,
)
from server.permissions import Principal

from ...conftest import login
from ...support.signaling_client import connect, expect, room_token, signaling_path
from ..api.test_referrals import booked_referral, open_room_now

REASON = "Chest pain on exertion"
SUMMARY = "ST depression"
PATIENT = "Zhang Wei"


async def _seen(client: TestClient, username: str, referral: dict) -> dict[str, str]:
    """Every route that can show something of this referral, as ``username`` reads it."""
    headers = await login(client, username)
    consultation = referral["consultation_id"]
    paths = [f"/api/consultations/{consultation}", "/api/consultations", f"/api/consultations/{consultation}/fhir",
             f"/api/referrals/{referral['id']}", "/api/referrals", "/api/notifications", "/",
             f"/referrals/{referral['id']}", "/referrals"]
    if username != "coord.zhao":  # coordinators do not sit in the room
        paths.append(f"/consultations/{consultation}")
    seen = {}
    for path in paths:
        response = await client.get(path, headers=headers)
        assert response.status == 200, (path, response.status, await response.text())
        seen[path] = await response.text()
    # the demo's own consultation (no referral, the patient present) is listed too: look at this one only
    listed = json.loads(seen["/api/consultations"])["consultations"]
    seen["/api/consultations"] = json.dumps([c for c in listed if c["id"] == consultation], ensure_ascii=False)
    feed = await (await client.get("/api/calendar", headers=headers)).json()
    seen["calendar"] = await (await client.get("/" + feed["url"].split("/", 3)[3])).text()
    return seen


@pytest.mark.parametrize("username", ["dr.wang", "coord.zhao"])
async def test_a_withdrawal_hides_the_reason_on_every_route(client: TestClient, username: str) -> None:
    """Each row: once the patient withdraws consent to sharing, the receiving hospital's specialist or coordinator
    finds the referral's reason, the summary and the patient's name on none of the routes that show the referral or
    its consultation (API, pages, notifications, calendar feed), where the reason showed before; the consultation is
    either not listed or listed with its records withheld and no title."""
    referral, _ = await booked_referral(client)
    before = await _seen(client, username, referral)
    assert REASON in before[f"/api/consultations/{referral['consultation_id']}"], "shown while consent stands"

    consent = referral["sharing_consent"]["id"]
    withdrawn = await client.post(f"/api/consents/{consent}/withdraw", headers=await login(client, "dr.li"))
    assert withdrawn.status == 200

    after = await _seen(client, username, referral)
    leaks = {path: word for path, text in after.items() for word in (REASON, SUMMARY, PATIENT) if word in text}
    assert not leaks, f"clinical text reached the partner hospital after the withdrawal: {leaks}"
    mine = json.loads(after["/api/consultations"])
    assert not mine or (mine[0]["records_withheld"] is True and mine[0]["title"] is None)


async def test_the_referring_hospital_keeps_its_own_record(client: TestClient) -> None:
    """After the patient withdraws consent to sharing (the withdrawal succeeds, and the partner's specialist no
    longer reads the reason), the referring county doctor still reads the reason on their own hospital's
    consultation: the withdrawal hides the record from the partner, not from the hospital that holds it."""
    referral, _ = await booked_referral(client)
    consent = referral["sharing_consent"]["id"]
    withdrawn = await client.post(f"/api/consents/{consent}/withdraw", headers=await login(client, "dr.li"))
    assert withdrawn.status == 200, await withdrawn.text()
    path = f"/api/consultations/{referral['consultation_id']}"
    partner = await client.get(path, headers=await login(client, "dr.wang"))
    assert partner.status == 200 and REASON not in await partner.text(), "the withdrawal took effect"
    own = await client.get(path, headers=await login(client, "dr.li"))
    assert own.status == 200 and REASON in await own.text()


async def test_a_list_of_consultations_is_disclosed_with_a_constant_number_of_queries(client: TestClient) -> None:
    """``disclosed`` asks the database twice whatever the number of consultations (no query per row)."""
    statements: list[str] = []
    database = client.app[DATABASE]
    async with database.session() as session:
        views = [await consultations.load(session, 1)] * 50
        def count(*args: object) -> None:
            statements.append(str(args[2]))
        sa.event.listen(database.engine.sync_engine, "before_cursor_execute", count)
        try:
            shown = await consultations.disclosed(session, Principal(99, Role.SPECIALIST, 1), views)
        finally:
            sa.event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert len(shown) == 50 and len(statements) <= 2


async def _seat_the_patient(client: TestClient, consultation_id: int) -> None:
    """What a video visit leaves in a consultation the patient joined: their video consent (from their browser),
    a chat line of theirs, and a recording that names them among its participants."""
    async with client.app[DATABASE].session() as session:
        template = (await session.exec(select(ConsentTemplate).where(
            ConsentTemplate.purpose == ConsentPurpose.VIDEO))).first()
        assert template is not None and template.id is not None
        session.add(Consent(purpose=ConsentPurpose.VIDEO, template_id=template.id, subject=ConsentSubject.PATIENT,
                            identity="patient:1", patient_id=1, name="张伟 Zhang Wei", consultation_id=consultation_id,
                            method=ConsentMethod.CLICKED, ip="203.0.113.9", user_agent="PatientPhone/1.0"))
        session.add(ChatLine(consultation_id=consultation_id, session="s1", seq=1, participant_id="p-patient",
                             name="张伟 Zhang Wei", text="My chest hurts when I climb stairs", sent_at=utcnow()))
        session.add(Recording(consultation_id=consultation_id, file="x.webm", status=RecordingStatus.READY,
                              started_by="user:1", tracks=json.dumps(
                                  [{"participant_id": "p-patient", "kind": kind, "codec": codec}
                                   for kind, codec in (("audio", "opus"), ("video", "VP8"))]),
                              participants=json.dumps(
                                  [{"participant_id": "p-patient", "identity": "patient:1", "name": "张伟 Zhang Wei",
                                    "role": "patient"}], ensure_ascii=False)))
        await session.commit()


async def test_a_withdrawal_hides_the_patient_in_the_consultations_consents_chat_and_recordings(
        client: TestClient) -> None:
    """Guards the consultation's own records on the partner's side: while sharing stands the partner's specialist
    reads the patient's name in the consents list, the chat and the recordings; once the patient withdraws, the
    consents list keeps the patient's consent (what, when) without their name, identity, address or browser (and so
    does the answer when the specialist withdraws that consent on the patient's word), the
    chat is withheld (none of it, ``records_withheld``), and the recordings list, page and player are refused
    403 ``records-withheld``; the referring doctor still reads all of it."""
    referral, _ = await booked_referral(client)
    consultation = referral["consultation_id"]
    await _seat_the_patient(client, consultation)
    paths = {"consents": f"/api/consultations/{consultation}/consents",
             "chat": f"/api/consultations/{consultation}/chat",
             "recordings": f"/api/consultations/{consultation}/recordings",
             "recordings page": f"/consultations/{consultation}/recordings"}

    async def read(username: str) -> dict[str, tuple[int, str]]:
        headers = await login(client, username)
        answers = {name: await client.get(path, headers=headers) for name, path in paths.items()}
        return {name: (answer.status, await answer.text()) for name, answer in answers.items()}

    before = await read("dr.wang")
    assert all(status == 200 and PATIENT in text for status, text in before.values()), {
        name: (status, PATIENT in text) for name, (status, text) in before.items()}

    consent = referral["sharing_consent"]["id"]
    assert (await client.post(f"/api/consents/{consent}/withdraw", headers=await login(client, "dr.li"))).status == 200

    after = await read("dr.wang")
    status, text = after["consents"]
    patients = [c for c in json.loads(text)["consents"] if c["subject"] == "patient"]
    assert status == 200 and [c["purpose"] for c in patients] == ["video"]
    assert patients[0]["name"] == "" and patients[0]["identity"] == "patient"
    assert patients[0]["ip"] is None and patients[0]["user_agent"] is None
    assert PATIENT not in text and "203.0.113.9" not in text and "patient:1" not in text
    withdrawn = await client.post(f"/api/consents/{patients[0]['id']}/withdraw",  # on the patient's word, in the call
                                  headers=await login(client, "dr.wang"))
    assert withdrawn.status == 200 and PATIENT not in await withdrawn.text(), "answered as the caller may see it"
    status, text = after["chat"]
    assert status == 200 and json.loads(text) == {"chat": [], "records_withheld": True}
    for name in ("recordings", "recordings page"):
        status, text = after[name]
        assert status == 403 and PATIENT not in text, name
    assert json.loads(after["recordings"][1])["error"]["code"] == "records-withheld"

    own = await read("dr.li")
    assert all(status == 200 and PATIENT in text for status, text in own.values()), {
        name: (status, PATIENT in text) for name, (status, text) in own.items()}


async def test_the_room_shows_the_partner_no_earlier_chat_once_the_patient_withdraws(client: TestClient) -> None:
    """Guards the chat in the room, as the API guards it: while sharing stands, the partner's specialist joining the
    consultation's room is shown what was said before; after the patient withdraws, joining again shows him none of it
    in ``joined``, though lines said after he came reach him; the referring doctor still sees it all."""
    referral, _ = await booked_referral(client)
    consultation = referral["consultation_id"]
    await open_room_now(client, consultation)
    path = signaling_path(consultation)
    li = await connect(client, await room_token(client, "dr.li", consultation), url=path)
    await expect(li, "joined")
    await li.send_json({"type": "chat", "text": "Zhang Wei's ECG is attached"})
    await expect(li, "chat")

    async def chat_shown(username: str) -> list[str]:
        ws = await connect(client, await room_token(client, username, consultation), url=path)
        lines = [line["text"] for line in (await expect(ws, "joined"))["chat"]]
        await ws.send_json({"type": "leave"})
        await expect(li, "participant-joined")
        await expect(li, "participant-left")
        return lines

    assert await chat_shown("dr.wang") == ["Zhang Wei's ECG is attached"]
    consent = referral["sharing_consent"]["id"]
    assert (await client.post(f"/api/consents/{consent}/withdraw", headers=await login(client, "dr.li"))).status == 200
    wang = await connect(client, await room_token(client, "dr.wang", consultation), url=path)
    assert (await expect(wang, "joined"))["chat"] == []
    await expect(li, "participant-joined")
    await li.send_json({"type": "chat", "text": "Can you see the trace?"})
    assert (await expect(wang, "chat"))["text"] == "Can you see the trace?"
    own = await connect(client, await room_token(client, "dr.li", consultation), url=path)  # dr.li, another device
    assert [line["text"] for line in (await expect(own, "joined"))["chat"]] == [
        "Zhang Wei's ECG is attached", "Can you see the trace?"]


async def test_sharing_given_again_on_the_patients_page_is_one_consent_and_one_withdrawal_ends_it(
        client: TestClient) -> None:
    """Guards one standing sharing consent per referral: the patient agreeing on their visit page (the consultation's
    scope, with the referral) to the text the doctor already recorded for them is the same consent, not a second
    one; and a withdrawal ends it, so the partner's specialist no longer reads the reason."""
    referral, _ = await booked_referral(client)
    database = client.app[DATABASE]
    recorded = referral["sharing_consent"]
    async with database.session() as session:
        template = await session.get(ConsentTemplate, recorded["template_id"])
    assert template is not None
    patient = Consenter(ConsentSubject.PATIENT, recorded["identity"], recorded["name"], patient_id=1)
    scope = Scope(consultation_id=referral["consultation_id"], referral_id=referral["id"])
    again = await consents.give(database, None, template, patient, scope, How(ConsentMethod.CLICKED))
    assert again.id == recorded["id"], "the same consent, not a second record of it"
    withdrawn = await client.post(f"/api/consents/{recorded['id']}/withdraw", headers=await login(client, "dr.li"))
    assert withdrawn.status == 200
    async with database.session() as session:
        assert await consents.standing(session, ConsentPurpose.RECORD_SHARING, referral_id=referral["id"]) is None
    partner = await client.get(f"/api/consultations/{referral['consultation_id']}",
                               headers=await login(client, "dr.wang"))
    assert partner.status == 200 and REASON not in await partner.text()


async def _direct(client: TestClient, **extra: object) -> int:
    """A consultation dr.li sets up without a referral, with dr.wang of the provincial hospital and the demo
    patient, its title naming the patient (as titles often do)."""
    start = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    wang = await _user_id(client, "dr.wang")
    created = await client.post("/api/consultations", headers=await login(client, "dr.li"), json={
        "title": f"Follow-up for {PATIENT}", "planned_start": start, "participant_ids": [wang], "patient_id": 1,
        **extra})
    assert created.status == 201, await created.text()
    return (await created.json())["id"]


async def _user_id(client: TestClient, username: str) -> int:
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return user.id


async def _partner_reads(client: TestClient, consultation: int) -> dict[str, str]:
    """What the partner hospital's specialist and coordinator read of this consultation: it, its FHIR Encounter,
    its row in the lists (the dashboard's and the consultations page's), and what a search by the patient's name
    finds of it (the demo's own consultation, shared with consent, names the same patient: left out)."""
    seen = {}
    for username in ("dr.wang", "coord.zhao"):
        headers = await login(client, username)
        for path in (f"/api/consultations/{consultation}", f"/api/consultations/{consultation}/fhir",
                     f"/api/consultations?q={PATIENT.split()[0]}", "/consultations", "/"):
            answer = await client.get(path, headers=headers)
            assert answer.status == 200, (username, path, answer.status)
            text = await answer.text()
            if path.startswith("/api/consultations?"):
                text = json.dumps([c for c in json.loads(text)["consultations"] if c["id"] == consultation])
            elif not path.startswith("/api/"):
                row = re.search(rf'<tr data-consultation-id="{consultation}">.*?</tr>', text, re.S)
                text = row.group(0) if row else ""
            seen[f"{username} {path}"] = text
    return seen


async def test_a_consultation_set_up_with_another_hospital_shows_its_patient_there_only_with_consent(
        client: TestClient) -> None:
    """Guards disclosure without a referral: a consultation the county doctor sets up with a provincial specialist
    shows the partner hospital (the specialist, its coordinator) neither the patient nor the title that names them, on
    any route, until the doctor records the patient's consent to sharing (verbal, on the consultation); then both
    show, and once it is withdrawn (by the patient's own hospital, not the partner's specialist) they are hidden
    again. The county doctor always reads their own."""
    consultation = await _direct(client)
    hidden = await _partner_reads(client, consultation)
    leaks = [where for where, text in hidden.items() if PATIENT in text]
    assert not leaks, f"the patient reached the partner hospital without consent: {leaks}"
    shown = json.loads(hidden[f"dr.wang /api/consultations/{consultation}"])
    assert shown["records_withheld"] is True and shown["title"] is None
    own = await client.get(f"/api/consultations/{consultation}", headers=await login(client, "dr.li"))
    assert PATIENT in await own.text()

    recorded = await client.post(f"/api/consultations/{consultation}/consents", json={"purpose": "record_sharing"},
                                 headers=await login(client, "dr.li"))
    assert recorded.status == 201, await recorded.text()
    sharing = await recorded.json()
    assert (sharing["consultation_id"], sharing["referral_id"], sharing["method"]) == (consultation, None, "verbal")
    now = await _partner_reads(client, consultation)
    assert PATIENT in now[f"dr.wang /api/consultations/{consultation}"]
    assert PATIENT in now[f"coord.zhao /api/consultations?q={PATIENT.split()[0]}"]

    partner = await client.post(f"/api/consents/{sharing['id']}/withdraw", headers=await login(client, "dr.wang"))
    assert partner.status == 403, "the patient's word is recorded by their own hospital"
    withdrawn = await client.post(f"/api/consents/{sharing['id']}/withdraw", headers=await login(client, "dr.li"))
    assert withdrawn.status == 200
    again = await _partner_reads(client, consultation)
    assert not [where for where, text in again.items() if PATIENT in text]


async def test_the_consent_recorded_as_the_consultation_is_set_up_shares_it_at_once(client: TestClient) -> None:
    """``sharing_consent: "verbal"`` on a new consultation records the patient's consent in the same step, named for
    the doctor and audited: the partner's specialist reads the patient and the title straight away. Refused, with
    nothing set up: without a patient, or with nobody of another hospital, 422 on ``sharing_consent``; a text that
    does not exist, 422 on ``sharing_template_id``; a coordinator, who is not at the patient's side, 403."""
    consultation = await _direct(client, sharing_consent="verbal")
    partner = await client.get(f"/api/consultations/{consultation}", headers=await login(client, "dr.wang"))
    assert PATIENT in await partner.text()
    async with client.app[DATABASE].session() as session:
        [row] = (await session.exec(select(Consent).where(Consent.consultation_id == consultation))).all()
        entries = (await session.exec(select(AuditEvent).where(AuditEvent.subject == f"consent:{row.id}"))).all()
    assert (row.purpose, row.method, row.recorded_by, row.referral_id) == (
        ConsentPurpose.RECORD_SHARING, ConsentMethod.VERBAL, await _user_id(client, "dr.li"), None)
    assert [e.action for e in entries] == ["consent.given"]
    refused = await client.post("/api/consultations", headers=await login(client, "dr.li"), json={
        "title": "Case discussion", "planned_start": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "participant_ids": [await _user_id(client, "dr.wang")], "sharing_consent": "verbal"})
    assert refused.status == 422 and list((await refused.json())["error"]["fields"]) == ["sharing_consent"]
    li = await _user_id(client, "dr.li")
    for extra, status, field in (({"participant_ids": [li]}, 422, "sharing_consent"),
                                 ({"sharing_template_id": 99999}, 422, "sharing_template_id")):
        answer = await client.post("/api/consultations", headers=await login(client, "dr.li"), json={
            "title": "Follow-up", "planned_start": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "participant_ids": [await _user_id(client, "dr.wang")], "patient_id": 1, "sharing_consent": "verbal",
            **extra})
        assert answer.status == status and list((await answer.json())["error"]["fields"]) == [field], extra
    async with client.app[DATABASE].session() as session:  # a coordinator of the patient's own hospital
        zhao = (await session.exec(select(User).where(User.username == "coord.zhao"))).one()
        doctor = await session.get(User, li)
        assert doctor is not None
        session.add(User(username="coord.sun", display_name="Sun", role=Role.COORDINATOR,
                         hospital_id=doctor.hospital_id, password_hash=zhao.password_hash))
        await session.commit()
    coordinator = await client.post("/api/consultations", headers=await login(client, "coord.sun"), json={
        "title": "Follow-up", "planned_start": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "participant_ids": [await _user_id(client, "dr.wang")], "patient_id": 1, "sharing_consent": "verbal"})
    assert coordinator.status == 403, await coordinator.text()
    async with client.app[DATABASE].session() as session:
        assert len((await session.exec(select(Consent).where(Consent.consultation_id > consultation))).all()) == 0


async def test_a_booked_referrals_consultation_takes_no_consent_to_sharing_of_its_own(client: TestClient) -> None:
    """Guards one sharing consent per record: in a consultation booked for a referral, the patient's consent to
    sharing is the referral's, so recording one on the consultation is 400 `wrong-scope`."""
    referral, _ = await booked_referral(client)
    wrong = await client.post(f"/api/consultations/{referral['consultation_id']}/consents",
                              json={"purpose": "record_sharing"}, headers=await login(client, "dr.li"))
    assert wrong.status == 400 and (await wrong.json())["error"]["code"] == "wrong-scope"
