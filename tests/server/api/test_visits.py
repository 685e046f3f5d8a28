"""Patient invitations and consents over the API: who may invite, what the link opens, what it needs."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server.appkeys import DATABASE, KEYS, SETTINGS
from server.audit import trail as audit
from server.consultations.room_window import RoomWindow
from server.models import AuditEvent, Consent, ConsentTemplate, Consultation, PatientInvitation, User, utcnow
from server.patients.invitations import invitation_token
from server.settings import Settings

from ...conftest import _start, login
from ...support.signaling_client import connect, expect, expect_closed, receive, room_token
from ...support.visits import DEMO_PATIENT, consent, invite, patient_room_token


async def _room_token(client: TestClient, guest: str) -> tuple[int, dict]:
    response = await client.post("/api/guest/room-token", json={"guest": guest})
    return response.status, await response.json()


async def test_the_video_consent_opens_the_waiting_room_and_nothing_else(client: TestClient) -> None:
    """Without the video consent the patient gets no room token (403 `consent-required`); the consent is kept as clicked
    by the patient, with the text's version, the address and the browser; the room token then names the patient, lets
    them admit nobody and carries no consent to recording."""
    guest = await invite(client)
    status, body = await _room_token(client, guest)
    assert (status, body["error"]["code"]) == (403, "consent-required")

    given = await consent(client, guest, "video")
    assert (given["purpose"], given["method"], given["subject"]) == ("video", "clicked", "patient")
    assert given["identity"] == "patient:1" and given["version"] == 1 and given["ip"] == "127.0.0.1"
    assert given["user_agent"], "where the consent came from is kept"
    status, body = await _room_token(client, guest)
    assert status == 200
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == "patient:1" and claims["grants"]["admit"] is False
    assert claims["consent_id"] is None, "agreeing to the video is not agreeing to be recorded"


async def test_each_purpose_is_its_own_consent_and_withdrawal_ends_it(client: TestClient) -> None:
    """The patient is offered the video (required) and recording (optional) consents, and record sharing (optional:
    a specialist of another hospital takes part in the demo's consultation, and the demo's doctor recorded the
    patient's word for it); each is a consent of its own, agreeing twice is one consent, and withdrawing recording
    leaves video standing; a second withdrawal is 409 `no-consent`, and the trail holds each giving and withdrawal
    once."""
    guest = await invite(client)
    listed = await (await client.post("/api/guest/consents/list", json={"guest": guest})).json()
    assert [c["purpose"] for c in listed["consents"]] == ["video", "recording", "record_sharing"]
    assert [c["required"] for c in listed["consents"]] == [True, False, False]
    assert [c["consent"] is not None for c in listed["consents"]] == [False, False, True]
    video = await consent(client, guest, "video")
    recording = await consent(client, guest, "recording")
    assert video["id"] != recording["id"]
    again = await consent(client, guest, "recording")
    assert again["id"] == recording["id"], "agreeing twice to the same text is one consent"

    withdrawn = await consent(client, guest, "recording", given=False)
    assert withdrawn["withdrawn_at"] and withdrawn["withdrawn_by"] == "patient:1"
    response = await client.post("/api/guest/consents", json={"guest": guest, "purpose": "recording",
                                                               "given": False})
    assert (response.status, (await response.json())["error"]["code"]) == (409, "no-consent")
    status, _ = await _room_token(client, guest)
    assert status == 200, "the video consent still stands"

    actions = [(e.action, json.loads(e.detail)["purpose"]) for e in await audit.trail(client.app[DATABASE], 1)
               if e.action.startswith("consent.")]
    assert actions == [("consent.given", "record_sharing"),  # the demo's, seeded
                       ("consent.given", "video"), ("consent.given", "recording"), ("consent.withdrawn", "recording")]


@pytest.mark.parametrize("body", [
    {"purpose": "video", "given": "yes"},
    {"purpose": "everything", "given": True},
    {"given": True},
])
async def test_bad_consent_answers_say_what_is_wrong_and_record_nothing(client: TestClient, body: dict) -> None:
    """Each row, a `given` that is not a boolean, an unknown purpose or none: 422 naming fields, and no consent is
    recorded."""
    guest = await invite(client)
    async with client.app[DATABASE].session() as session:
        kept = (await session.exec(select(Consent))).all()  # the demo's: the patient's consent to sharing
    response = await client.post("/api/guest/consents", json={"guest": guest, **body})
    assert response.status == 422
    assert (await response.json())["error"]["fields"]
    async with client.app[DATABASE].session() as session:
        assert (await session.exec(select(Consent))).all() == kept


async def test_consenting_to_an_outdated_text_is_refused(client: TestClient) -> None:
    """Agreeing to a consent text since replaced by a newer version is refused 409 `consent-text-changed`, so a patient
    never consents to words that are no longer in force."""
    guest = await invite(client)
    async with client.app[DATABASE].session() as session:
        shown = (await session.exec(select(ConsentTemplate).where(ConsentTemplate.purpose == "video",
                                                                  ConsentTemplate.locale == "en"))).one()
        session.add(ConsentTemplate(purpose=shown.purpose, version=2, locale="en", title="New", body="Newer text.",
                                    sha256="0" * 64))
        await session.commit()
    response = await client.post("/api/guest/consents", json={"guest": guest, "purpose": "video", "given": True,
                                                               "template_id": shown.id},
                                 headers={"Accept-Language": "en"})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "consent-text-changed"


async def test_only_participants_invite_and_only_a_patient_can_be_invited(client: TestClient) -> None:
    """Another county's doctor, a coordinator and an auditor cannot invite a patient into the consultation (403); a
    consultation with no patient has nobody to invite (409 `no-patient`)."""
    for username, status in [("dr.chen", 403), ("coord.zhao", 403), ("auditor", 403)]:
        response = await client.post("/api/consultations/1/invitations", json={},
                                     headers=await login(client, username))
        assert response.status == status, username
    created = await client.post("/api/consultations", headers=await login(client, "dr.li"), json={
        "title": "Case conference", "planned_start": (utcnow() + timedelta(minutes=5)).isoformat(),
        "participant_ids": [2]})
    number = (await created.json())["id"]
    response = await client.post(f"/api/consultations/{number}/invitations", json={},
                                 headers=await login(client, "dr.li"))
    assert (response.status, (await response.json())["error"]["code"]) == (409, "no-patient")


async def test_a_revoked_link_stops_at_once_and_only_participants_revoke(client: TestClient) -> None:
    """A doctor outside the consultation cannot revoke the link (403) and it keeps working; once a participant revokes
    it, it opens neither the room (401 `link-revoked`) nor the consents, and is listed as inactive; an unknown
    invitation is 404."""
    guest = await invite(client)
    await consent(client, guest)
    async with client.app[DATABASE].session() as session:
        invitation = (await session.exec(select(PatientInvitation))).one()
    outsider = await client.delete(f"/api/invitations/{invitation.id}", headers=await login(client, "dr.chen"))
    assert outsider.status == 403
    assert (await _room_token(client, guest))[0] == 200
    revoked = await client.delete(f"/api/invitations/{invitation.id}", headers=await login(client, "dr.wang"))
    assert revoked.status == 200 and (await revoked.json())["active"] is False
    status, body = await _room_token(client, guest)
    assert (status, body["error"]["code"]) == (401, "link-revoked")
    consents_page = await client.post("/api/guest/consents", json={"guest": guest, "purpose": "recording",
                                                                    "given": True})
    assert consents_page.status == 401
    listed = await client.get("/api/consultations/1/invitations", headers=await login(client, "dr.li"))
    assert [i["active"] for i in (await listed.json())["invitations"]] == [False]
    assert (await client.delete("/api/invitations/999", headers=await login(client, "dr.li"))).status == 404


async def test_a_link_expires_and_cannot_be_stretched(client: TestClient) -> None:
    """An invitation link expires when the room stops letting people in; a link past its expiry is 401 `token-expired`,
    and one altered by hand is 401."""
    guest = await invite(client)
    async with client.app[DATABASE].session() as session:
        invitation = (await session.exec(select(PatientInvitation))).one()
        consultation = await session.get(Consultation, 1)
    assert invitation.expires_at == RoomWindow.of(consultation, client.app[SETTINGS]).closes, \
        "the link expires when the room stops letting people in"
    invitation.created_at -= timedelta(days=3)
    invitation.expires_at = invitation.created_at + timedelta(hours=1)
    expired = invitation_token(client.app[KEYS], "telemed", invitation)
    status, body = await _room_token(client, expired)
    assert (status, body["error"]["code"]) == (401, "token-expired")
    forged = guest[:-4] + ("AAAA" if not guest.endswith("AAAA") else "BBBB")
    assert (await _room_token(client, forged))[0] == 401


@pytest.mark.parametrize(("shift", "code"), [(timedelta(hours=2), "room-not-open"),
                                             (timedelta(hours=-3), "room-closed")])
async def test_the_room_opens_shortly_before_the_start_and_closes_after_the_end(
        client: TestClient, shift: timedelta, code: str) -> None:
    """Each row, a consultation two hours ahead or started three hours ago: the patient and the doctor alike get 409,
    `room-not-open` or `room-closed`."""
    guest = await invite(client)
    await consent(client, guest)
    async with client.app[DATABASE].session() as session:
        consultation = await session.get(Consultation, 1)
        consultation.planned_start = utcnow() + shift
        session.add(consultation)
        await session.commit()
    status, body = await _room_token(client, guest)
    assert (status, body["error"]["code"]) == (409, code)
    clinician = await client.post("/api/consultations/1/room-token", headers=await login(client, "dr.li"))
    assert clinician.status == 409 and (await clinician.json())["error"]["code"] == code


async def test_invitations_are_audited(client: TestClient) -> None:
    """Inviting a patient leaves one `invitation.created` entry in the audit trail: by the inviting doctor, on the
    consultation, naming the invitation the link opens and its patient."""
    guest = await invite(client)
    number = jwt.decode(guest, options={"verify_signature": False})["inv"]
    async with client.app[DATABASE].session() as session:
        li = (await session.exec(select(User).where(User.username == "dr.li"))).one()
        invitation = await session.get(PatientInvitation, number)
        entries = (await session.exec(select(AuditEvent).where(AuditEvent.action == "invitation.created")
                                      .order_by(col(AuditEvent.id)))).all()
    assert invitation is not None
    assert [(e.actor, e.consultation_id, e.subject) for e in entries] == [(f"user:{li.id}", 1, f"invitation:{number}")]
    assert json.loads(entries[0].detail)["patient"] == invitation.patient_id


async def _admitted_patient(client: TestClient) -> tuple[Any, Any, str]:
    """dr.li in the room, and the invited patient admitted: (li's socket, the patient's socket, the link)."""
    li = await connect(client, await room_token(client, "dr.li"))
    await expect(li, "joined")
    guest = await invite(client)
    patient = await connect(client, await patient_room_token(client, guest=guest))
    lobby = await expect(patient, "lobby")
    await li.send_json({"type": "admit", "participant_id": lobby["self"]["id"]})
    await expect(patient, "joined")
    return li, patient, guest


@pytest.mark.parametrize("how", ["revoke", "withdraw"])
async def test_a_patient_in_the_call_leaves_it_at_once(client: TestClient, how: str) -> None:
    """Revoking the invitation, or the patient withdrawing the video consent, ends their part in the call."""
    li, patient, guest = await _admitted_patient(client)
    if how == "revoke":
        listed = await client.get("/api/consultations/1/invitations", headers=await login(client, "dr.li"))
        number = (await listed.json())["invitations"][0]["id"]
        assert (await client.delete(f"/api/invitations/{number}", headers=await login(client, "dr.li"))).status == 200
        reason = "invitation-revoked"
    else:
        await consent(client, guest, "video", given=False)
        reason = "consent-withdrawn"
    assert (await expect(patient, "removed"))["message"]
    await expect_closed(patient, 4403)
    seen = await receive(li)
    while seen["type"] in ("lobby-update", "participant-joined"):  # from the admission, before the leaving
        seen = await receive(li)
    assert (seen["type"], seen["reason"]) == ("participant-left", reason)
    await li.close()


async def test_the_admitting_doctor_sees_what_the_patients_device_check_found(client: TestClient) -> None:
    """The doctor in the room sees the patient's device check findings in the lobby; the same patient coming back by
    another link without the check replaces their first place and arrives with no findings."""
    li = await connect(client, await room_token(client, "dr.li"))
    await expect(li, "joined")
    guest = await invite(client)
    await consent(client, guest)
    found = {"camera": True, "microphone": False, "speaker": None, "rtt_ms": 48, "down_kbps": 240, "up_kbps": 1800}
    answer = await client.post("/api/guest/room-token", json={"guest": guest, "device_check": found})
    assert answer.status == 200, await answer.text()
    patient = await connect(client, (await answer.json())["token"])
    await expect(patient, "lobby")
    waiting = (await expect(li, "lobby-update"))["waiting"]
    assert [w["device_check"] for w in waiting] == [found]
    # The same patient coming back by another link, having skipped the check, takes their one place in the
    # lobby (the first socket is replaced) and arrives without findings; the doctor sees that too.
    skipped = await connect(client, await patient_room_token(client))
    await expect(skipped, "lobby")
    assert (await expect(patient, "error"))["code"] == "replaced"
    waiting = (await expect(li, "lobby-update"))["waiting"]
    while len(waiting) != 1:
        waiting = (await expect(li, "lobby-update"))["waiting"]
    assert [w["device_check"] for w in waiting] == [None]
    for ws in (li, patient, skipped):
        await ws.close()


@pytest.mark.parametrize(("check", "field"), [
    ({"camera": "yes"}, "device_check.camera"),
    ({"rtt_ms": -5}, "device_check.rtt_ms"),
    ({"down_kbps": -1}, "device_check.down_kbps"),
    ({"up_kbps": "fast"}, "device_check.up_kbps"),
    ({"camera": True, "retina": True}, "device_check.retina"),
])
async def test_bad_device_check_findings_are_422_naming_the_field(client: TestClient, check: dict,
                                                                   field: str) -> None:
    """Each row, a camera that is not a boolean, a negative round trip or download speed, an upload speed that is not a
    number, or an unknown finding: the room token is 422 naming that field."""
    guest = await invite(client)
    await consent(client, guest)
    answer = await client.post("/api/guest/room-token", json={"guest": guest, "device_check": check})
    assert answer.status == 422
    assert field in (await answer.json())["error"]["fields"]


async def test_a_device_check_without_bandwidth_still_counts(client: TestClient) -> None:
    """A browser with the check page of before the bandwidth probe sends no ``down_kbps``/``up_kbps``: its
    findings are taken, and the doctor reads the bandwidth as not measured (null)."""
    li = await connect(client, await room_token(client, "dr.li"))
    await expect(li, "joined")
    guest = await invite(client)
    await consent(client, guest)
    older = {"camera": True, "microphone": True, "speaker": True, "rtt_ms": 30}
    answer = await client.post("/api/guest/room-token", json={"guest": guest, "device_check": older})
    assert answer.status == 200, await answer.text()
    patient = await connect(client, (await answer.json())["token"])
    await expect(patient, "lobby")
    waiting = (await expect(li, "lobby-update"))["waiting"]
    assert [w["device_check"] for w in waiting] == [older | {"down_kbps": None, "up_kbps": None}]
    for ws in (li, patient):
        await ws.close()


async def test_revoking_one_link_leaves_a_patient_who_came_in_by_another(client: TestClient) -> None:
    """A doctor sends a second link (the first went to the wrong phone) and revokes the first: the patient
    who came in by the second stays; revoking that one removes them."""
    li = await connect(client, await room_token(client, "dr.li"))
    await expect(li, "joined")
    first, second = await invite(client), await invite(client)
    patient = await connect(client, await patient_room_token(client, guest=second))
    lobby = await expect(patient, "lobby")
    await li.send_json({"type": "admit", "participant_id": lobby["self"]["id"]})
    await expect(patient, "joined")
    headers = await login(client, "dr.li")
    listed = (await (await client.get("/api/consultations/1/invitations", headers=headers)).json())["invitations"]
    first_id, second_id = (row["id"] for row in listed)
    assert (await client.delete(f"/api/invitations/{first_id}", headers=headers)).status == 200
    assert (await client.post("/api/guest/room-token", json={"guest": first})).status == 401, "the first link is dead"
    # A chat line goes through the room after the revocation did: the patient, still in the call, reads it.
    await li.send_json({"type": "chat", "text": "Can you still hear me?"})
    assert (await expect(patient, "chat"))["text"] == "Can you still hear me?"
    assert (await client.delete(f"/api/invitations/{second_id}", headers=headers)).status == 200
    assert (await expect(patient, "removed"))["message"]
    await expect_closed(patient, 4403)
    await li.close()


@pytest.mark.parametrize("how", ["revoke", "withdraw"])
async def test_a_room_token_minted_before_a_revocation_no_longer_opens_the_room(client: TestClient,
                                                                                 how: str) -> None:
    """A patient's room token outlives neither their invitation nor their video consent: joining with it
    afterwards is refused with the reason, and nobody is left in the lobby to admit."""
    guest = await invite(client)
    token = await patient_room_token(client, guest=guest)
    if how == "revoke":
        headers = await login(client, "dr.li")
        listed = await (await client.get("/api/consultations/1/invitations", headers=headers)).json()
        number = listed["invitations"][0]["id"]
        assert (await client.delete(f"/api/invitations/{number}", headers=headers)).status == 200
        reason = "invitation-revoked"
    else:
        await consent(client, guest, "video", given=False)
        reason = "consent-withdrawn"
    patient = await connect(client, token)
    assert (await expect(patient, "error"))["code"] == reason
    await expect_closed(patient, 4403)
    li = await connect(client, await room_token(client, "dr.li"))
    joined = await expect(li, "joined")
    assert joined["waiting"] == [], "the refused patient never reached the lobby"
    await li.close()


async def test_a_host_cannot_admit_a_patient_whose_consent_lapsed_while_they_waited(client: TestClient) -> None:
    """Admission asks again: a patient whose video consent is no longer on record (here withdrawn behind the
    room's back) is not admitted but sent away, and the host is told why."""
    li = await connect(client, await room_token(client, "dr.li"))
    await expect(li, "joined")
    patient = await connect(client, await patient_room_token(client))
    lobby = await expect(patient, "lobby")
    await expect(li, "lobby-update")
    async with client.app[DATABASE].session() as session:
        for row in (await session.exec(select(Consent).where(Consent.purpose == "video"))).all():
            row.withdrawn_at = utcnow()
            session.add(row)
        await session.commit()
    await li.send_json({"type": "admit", "participant_id": lobby["self"]["id"]})
    refused = await expect(li, "error")
    assert refused["code"] == "not-allowed" and "consent" in refused["message"]
    assert (await expect(patient, "removed"))["message"]
    await expect_closed(patient, 4403)
    await li.close()


async def _identity(client: TestClient, guest: str, name: str, last4: str = "") -> tuple[int, dict]:
    response = await client.post("/api/guest/identity", json={"guest": guest, "name": name, "id_last4": last4},
                                 headers={"Accept-Language": "en"})
    return response.status, await response.json()


async def test_nothing_past_the_link_without_confirming_who_one_is(client: TestClient) -> None:
    """The consents, their list, recording consent and the room token all answer 403 ``identity-required``
    until the identity check is passed: the server enforces the order, not only the pages."""
    guest = await invite(client, confirmed=False)
    for path, body in [("/api/guest/consents/list", {}), ("/api/guest/consents", {"purpose": "video", "given": True}),
                       ("/api/guest/recording-consent", {"given": True}), ("/api/guest/room-token", {})]:
        response = await client.post(path, json={"guest": guest, **body})
        assert (response.status, (await response.json())["error"]["code"]) == (403, "identity-required"), path
    status, answer = await _identity(client, guest, f"  {DEMO_PATIENT.upper()} ")
    assert status == 200 and answer["identity"]
    assert (await client.post("/api/guest/consents/list", json={"guest": guest})).status == 200, \
        "the cookie the check set is this browser's proof"


async def test_the_proof_travels_in_the_body_without_a_cookie(client: TestClient) -> None:
    """An API client without cookies sends the proof as ``identity``; a proof of another link opens nothing."""
    first, second = await invite(client, confirmed=False), await invite(client, confirmed=False)
    _, answer = await _identity(client, first, DEMO_PATIENT)
    client.session.cookie_jar.clear()
    refused = await client.post("/api/guest/consents/list", json={"guest": first})
    assert refused.status == 403
    listed = await client.post("/api/guest/consents/list", json={"guest": first, "identity": answer["identity"]})
    assert listed.status == 200
    other = await client.post("/api/guest/consents/list", json={"guest": second, "identity": answer["identity"]})
    assert (other.status, (await other.json())["error"]["code"]) == (403, "identity-required")


async def test_wrong_answers_say_what_remains_and_the_fifth_locks_the_link(client: TestClient) -> None:
    """A wrong answer says neither which part was wrong nor echoes it, only how many tries remain; a malformed
    one is a 422 and not counted; the fifth wrong one locks the link everywhere, and the clinicians see it."""
    guest = await invite(client, confirmed=False)
    status, answer = await _identity(client, guest, DEMO_PATIENT, "12")
    assert status == 422 and list(answer["error"]["fields"]) == ["id_last4"]
    remaining = []
    for n in range(4):
        status, answer = await _identity(client, guest, f"Li Si {n}")
        assert (status, answer["error"]["code"]) == (401, "identity-mismatch")
        assert "Li Si" not in json.dumps(answer)
        remaining.append(answer["error"]["attempts_left"])
    assert remaining == [4, 3, 2, 1]
    status, answer = await _identity(client, guest, "Li Si")
    assert (status, answer["error"]["code"]) == (401, "link-locked")
    assert "clinic" in answer["error"]["message"]
    status, answer = await _identity(client, guest, DEMO_PATIENT)
    assert (status, answer["error"]["code"]) == (401, "link-locked"), "not even the right answer opens it now"
    listed = await client.get("/api/consultations/1/invitations", headers=await login(client, "dr.li"))
    [row] = (await listed.json())["invitations"]
    assert (row["active"], row["failed_identity_attempts"], row["locked_at"] is not None) == (False, 5, True)
    again = await client.post("/api/consultations/1/invitations", json={}, headers=await login(client, "dr.li"))
    fresh = (await again.json())["url"].removeprefix("/visit/")
    assert (await _identity(client, fresh, DEMO_PATIENT))[0] == 200, "a new link starts its own count"


async def test_room_tokens_carry_the_ice_transport_policy(settings: Settings) -> None:
    """A deployment that sends media through TURN only (TELEMED_ICE_TRANSPORT_POLICY=relay) says so in every
    room token, which room-page.js hands to each RTCPeerConnection; by default browsers may take any path."""
    for policy in ("all", "relay"):
        client = await _start(dataclasses.replace(settings, ice_transport_policy=policy))
        try:
            answer = await client.post("/api/consultations/1/room-token", headers=await login(client, "dr.li"))
            assert answer.status == 200, await answer.text()
            assert (await answer.json())["ice_transport_policy"] == policy
        finally:
            await client.close()


async def test_without_another_hospital_taking_part_there_is_nothing_to_share(client: TestClient) -> None:
    """A consultation of dr.li's with only their own hospital's clinicians and no referral: its patient is not asked
    about sharing their record, and agreeing to it anyway is 409 `no-referral`, recording nothing."""
    headers = await login(client, "dr.li")
    async with client.app[DATABASE].session() as session:
        li = (await session.exec(select(User).where(User.username == "dr.li"))).one()
    start = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    created = await client.post("/api/consultations", headers=headers, json={
        "title": "Ward round", "planned_start": start, "participant_ids": [li.id], "patient_id": 1})
    assert created.status == 201, await created.text()
    guest = await invite(client, consultation=(await created.json())["id"])
    listed = await (await client.post("/api/guest/consents/list", json={"guest": guest})).json()
    assert [c["purpose"] for c in listed["consents"]] == ["video", "recording"]
    sharing = await client.post("/api/guest/consents", json={"guest": guest, "purpose": "record_sharing",
                                                              "given": True})
    assert (sharing.status, (await sharing.json())["error"]["code"]) == (409, "no-referral")
