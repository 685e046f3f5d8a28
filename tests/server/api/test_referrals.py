"""Referrals through the REST API: the whole journey, every role's forbidden actions, illegal moves,
validation, and concurrent bookings of one slot on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server.appkeys import DATABASE
from server.audit import trail as audit
from server.consultations.room_gate import RoomGate
from server.db import Database
from server.models import Appointment, AppointmentStatus, Consent, Consultation, Hospital, Notification, User
from server.settings import Settings
from signaling.grants import Granted

from ...conftest import _start, login
from ...support.signaling_client import connect, expect, expect_closed, room_token, signaling_path
from ..referrals.test_views import add_referrals, statements


async def ids(client: TestClient) -> dict[str, int]:
    """Demo hospitals and users by a short name."""
    async with client.app[DATABASE].session() as session:
        users = {u.username: u.id for u in (await session.exec(select(User))).all()}
        hospitals = {h.name.split()[0]: h.id for h in (await session.exec(select(Hospital))).all()}
    return {**users, "provincial": hospitals["江南省人民医院"], "qingshan": hospitals["青山县人民医院"],
            "baihe": hospitals["白河县中医院"]}


def new_referral(known: dict[str, int], **changes: Any) -> dict[str, Any]:
    return {"patient_id": 1, "specialty": "cardiology", "urgency": "urgent",
            "reason": "Chest pain on exertion, ECG changes", "summary": "68-year-old man; ST depression in V4-V6.",
            "target_hospital_id": known["provincial"], "question": "Is there myocardial ischaemia?",
            "sharing_consent": "verbal", **changes}


async def create(client: TestClient, known: dict[str, int], **changes: Any) -> dict[str, Any]:
    response = await client.post("/api/referrals", json=new_referral(known, **changes),
                                 headers=await login(client, "dr.li"))
    assert response.status == 201, await response.text()
    return await response.json()


async def act(client: TestClient, username: str, referral: int, action: str, **fields: Any) -> Any:
    return await client.post(f"/api/referrals/{referral}/actions", json={"action": action, **fields},
                             headers=await login(client, username))


async def first_free_slot(client: TestClient, username: str, specialist: int) -> dict[str, Any]:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    response = await client.get(f"/api/slots?specialty=cardiology&date={tomorrow}&days=7",
                                headers=await login(client, username))
    assert response.status == 200, await response.text()
    found = [s for s in (await response.json())["specialists"] if s["specialist"]["id"] == specialist]
    assert found, "the demo specialist has clinic hours within a week"
    return found[0]["slots"][0]


async def open_room_now(client: TestClient, consultation: int) -> None:
    """The consultation planned from now for an hour, so its room lets people in, as at the appointment's time."""
    async with client.app[DATABASE].session() as session:
        row = await session.get(Consultation, consultation)
        assert row is not None
        row.planned_start, row.planned_end = datetime.now(UTC), datetime.now(UTC) + timedelta(hours=1)
        await session.commit()


async def booked_referral(client: TestClient) -> tuple[dict[str, Any], dict[str, int]]:
    """A referral from dr.li to dr.wang, accepted and booked on dr.wang's first free slot; and the ids."""
    known = await ids(client)
    referral = await create(client, known, target_specialist_id=known["dr.wang"])
    assert (await act(client, "coord.zhao", referral["id"], "accept")).status == 200
    slot = await first_free_slot(client, "coord.zhao", known["dr.wang"])
    booked = await client.post(f"/api/referrals/{referral['id']}/appointment",
                               json={"specialist_id": known["dr.wang"], "starts_at": slot["starts_at"]},
                               headers=await login(client, "coord.zhao"))
    assert booked.status == 201, await booked.text()
    return await booked.json(), known


async def test_referral_journey_from_request_to_opinion(client: TestClient) -> None:
    """The whole journey: the coordinator's inbox puts the urgent referral before the routine one; accepted, it is
    offered for booking; booked, it becomes a consultation for both doctors at the slot's time, the slot is no longer
    offered and the referring doctor is notified; the specialist cannot complete it without a report, and signing one
    completes it, its opinion and every step shown to the referring doctor and audited."""
    known = await ids(client)
    routine = await create(client, known, urgency="routine", reason="Palpitations, routine review")
    urgent = await create(client, known, target_specialist_id=known["dr.wang"])
    assert urgent["state"] == "submitted" and urgent["actions"] == ["cancel"]

    # The receiving coordinator's inbox: most urgent first, whatever the order they came in.
    inbox = await client.get("/api/referrals?inbox=1", headers=await login(client, "coord.zhao"))
    assert [r["id"] for r in (await inbox.json())["referrals"]] == [urgent["id"], routine["id"]]
    zhao = await login(client, "coord.zhao")
    detail = await (await client.get(f"/api/referrals/{urgent['id']}", headers=zhao)).json()
    assert set(detail["actions"]) == {"accept", "decline", "redirect"}
    assert detail["summary"].startswith("68-year-old")

    accepted = await (await act(client, "coord.zhao", urgent["id"], "accept")).json()
    # Booking has its endpoint: offered as can_book, not as an action the actions endpoint would refuse.
    assert accepted["can_book"] and "schedule" not in accepted["actions"] and not accepted["can_sign_report"]
    slot = await first_free_slot(client, "coord.zhao", known["dr.wang"])
    booked = await client.post(f"/api/referrals/{urgent['id']}/appointment",
                               json={"specialist_id": known["dr.wang"], "starts_at": slot["starts_at"]},
                               headers=await login(client, "coord.zhao"))
    assert booked.status == 201, await booked.text()
    scheduled = await booked.json()
    assert scheduled["state"] == "scheduled" and scheduled["appointment"]["starts_at"] == slot["starts_at"]
    consultation = scheduled["consultation_id"]
    # The consultation exists for both doctors, at the slot's time; the slot is no longer offered.
    for username in ("dr.li", "dr.wang"):
        mine = await (await client.get("/api/consultations", headers=await login(client, username))).json()
        assert consultation in [c["id"] for c in mine["consultations"]]
    assert (await first_free_slot(client, "coord.zhao", known["dr.wang"]))["starts_at"] != slot["starts_at"]
    notices = await (await client.get("/api/notifications", headers=await login(client, "dr.li"))).json()
    assert any(n["kind"] == "appointment.booked" for n in notices["notifications"])

    # The specialist signs the report, which completes the referral; it goes back to the referring doctor and
    # stays with the referral. (The bare "complete" action no longer does: there is no completing without one.)
    # Signing is offered as can_sign_report; "complete" is not listed as an action, since the endpoint refuses it.
    wangs = await (await client.get(f"/api/referrals/{urgent['id']}", headers=await login(client, "dr.wang"))).json()
    assert wangs["can_sign_report"] and "complete" not in wangs["actions"] and not wangs["can_book"]
    assert set(wangs["actions"]) == {"start"}
    bare = await act(client, "dr.wang", urgent["id"], "complete")
    assert bare.status == 422 and "report" in (await bare.json())["error"]["fields"]
    done = await client.post(f"/api/referrals/{urgent['id']}/reports", headers=await login(client, "dr.wang"), json={
        "findings": "Stable angina. Start bisoprolol 2.5 mg.", "diagnosis_code": "I20.8",
        "recommendations": "Exercise ECG in 4 weeks at the county hospital."})
    assert done.status == 201, await done.text()
    seen = await (await client.get(f"/api/referrals/{urgent['id']}", headers=await login(client, "dr.li"))).json()
    assert seen["state"] == "completed" and seen["opinion"].startswith("Stable angina")
    assert [e["to"] for e in seen["events"]] == ["draft", "submitted", "accepted", "scheduled", "completed"]
    assert seen["events"][-1]["by"]["id"] == known["dr.wang"]

    trail = [e.action for e in await audit.trail(client.app[DATABASE])]
    for action in ("referral.created", "referral.accept", "appointment.booked", "referral.complete"):
        assert action in trail


FORBIDDEN = [
    # (who, what they try on a submitted referral from dr.li to the provincial hospital, naming dr.wang)
    ("dr.li", "accept", {}),
    ("dr.chen", "cancel", {"reason": "not mine"}),
    ("dr.zhou", "accept", {}),  # a specialist there, but not the one asked for
    ("dr.wang", "submit", {}),
    ("coord.zhao", "complete", {}),
    ("admin", "decline", {"reason": "x"}),
    ("auditor", "accept", {}),
]


@pytest.mark.parametrize(("username", "action", "fields"), FORBIDDEN)
async def test_forbidden_actions_are_403_and_change_nothing(client: TestClient, username: str, action: str,
                                                            fields: dict) -> None:
    """Each row, someone trying an action that is not theirs on a submitted referral (the referrer accepting, another
    county cancelling, a specialist not asked for accepting, the specialist submitting, the coordinator completing, an
    administrator declining, an auditor accepting): 403 with a message, and the referral is still submitted with no
    event added."""
    known = await ids(client)
    referral = await create(client, known, target_specialist_id=known["dr.wang"])
    response = await act(client, username, referral["id"], action, **fields)
    assert response.status == 403, await response.text()
    assert (await response.json())["error"]["message"]
    after = await (await client.get(f"/api/referrals/{referral['id']}", headers=await login(client, "dr.li"))).json()
    assert after["state"] == "submitted" and len(after["events"]) == 2


@pytest.mark.parametrize("username", ["dr.chen", "dr.zhou", "admin", "auditor"])
async def test_outsiders_cannot_see_a_referral(client: TestClient, username: str) -> None:
    """Each row, another county's doctor, a receiving specialist not asked for, an administrator or an auditor: the
    referral is 403 and missing from their list, keeping the patient's details from those with no part in it."""
    known = await ids(client)
    referral = await create(client, known, target_specialist_id=known["dr.wang"])
    response = await client.get(f"/api/referrals/{referral['id']}", headers=await login(client, username))
    assert response.status == 403
    listed = await (await client.get("/api/referrals", headers=await login(client, username))).json()
    assert referral["id"] not in [r["id"] for r in listed["referrals"]]


@pytest.mark.parametrize("username", [
    "coord.zhao",  # coordinators do not refer
    "dr.wang",
    "auditor",
])
async def test_only_county_doctors_refer(client: TestClient, username: str) -> None:
    """Each row, a coordinator, a specialist or an auditor: sending a referral is refused 403."""
    known = await ids(client)
    response = await client.post("/api/referrals", json=new_referral(known), headers=await login(client, username))
    assert response.status == 403


async def test_only_receiving_coordinators_book_and_move(client: TestClient) -> None:
    """Neither the referring doctor nor the specialist may book an accepted referral's appointment or move it (403); the
    receiving coordinator books it, then moves it to another specialist at another time with a reason, the consultation
    following to the new specialist and the first one told why."""
    known = await ids(client)
    referral = await create(client, known)
    await act(client, "coord.zhao", referral["id"], "accept")
    slot = await first_free_slot(client, "coord.zhao", known["dr.wang"])
    for username in ("dr.li", "dr.wang"):
        response = await client.post(f"/api/referrals/{referral['id']}/appointment",
                                     json={"specialist_id": known["dr.wang"], "starts_at": slot["starts_at"]},
                                     headers=await login(client, username))
        assert response.status == 403, username
    booked = await client.post(f"/api/referrals/{referral['id']}/appointment",
                               json={"specialist_id": known["dr.wang"], "starts_at": slot["starts_at"]},
                               headers=await login(client, "coord.zhao"))
    assert booked.status == 201
    later = (datetime.fromisoformat(slot["starts_at"]) + timedelta(minutes=30)).isoformat()
    moved = await client.put(f"/api/referrals/{referral['id']}/appointment",
                             json={"specialist_id": known["dr.wang"], "starts_at": later, "reason": "clinic overrun"},
                             headers=await login(client, "dr.li"))
    assert moved.status == 403
    moved = await client.put(f"/api/referrals/{referral['id']}/appointment",
                             json={"specialist_id": known["dr.zhou"], "starts_at": later, "reason": "Dr Wang is away"},
                             headers=await login(client, "coord.zhao"))
    assert moved.status == 200, await moved.text()
    after = await moved.json()
    assert after["appointment"]["starts_at"] == later and after["appointment"]["specialist_id"] == known["dr.zhou"]
    mine = await (await client.get("/api/consultations", headers=await login(client, "dr.zhou"))).json()
    assert after["consultation_id"] in [c["id"] for c in mine["consultations"]]
    notices = await (await client.get("/api/notifications", headers=await login(client, "dr.wang"))).json()
    assert any(n["kind"] == "appointment.moved" and "Dr Wang is away" in n["text"] for n in notices["notifications"])


async def test_illegal_transitions_are_409_with_a_message(client: TestClient) -> None:
    """A declined referral keeps the reason given; accepting it afterwards is 409 `illegal-transition` with a message
    saying why, and so is booking it: 409 `illegal-transition`, not 422. Booking checks the body first (a specialist
    of the receiving hospital, the start of one of their future slots: else 422 naming the field), then the state; the
    body here names a real slot (09:00 in Shanghai on a Monday, in dr.wang's morning clinic), so what refuses it is the
    state, a declined referral not being one that can be scheduled; and it stays declined."""
    known = await ids(client)
    referral = await create(client, known)
    declined = await act(client, "coord.zhao", referral["id"], "decline", reason="Please refer to neurology")
    assert declined.status == 200
    assert (await declined.json())["decline_reason"] == "Please refer to neurology"
    again = await act(client, "coord.zhao", referral["id"], "accept")
    assert again.status == 409
    error = (await again.json())["error"]
    assert error["code"] == "illegal-transition"
    assert error["message"] == "A referral that is declined cannot be accepted."
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=14 + -today.weekday() % 7)  # a Monday two weeks or more ahead, any day it runs
    nine_in_shanghai = datetime(monday.year, monday.month, monday.day, 1, tzinfo=UTC).isoformat()
    early = await client.post(f"/api/referrals/{referral['id']}/appointment",
                              json={"specialist_id": known["dr.wang"], "starts_at": nine_in_shanghai},
                              headers=await login(client, "coord.zhao"))
    assert early.status == 409, await early.text()
    error = (await early.json())["error"]
    assert error["code"] == "illegal-transition"
    assert error["message"] == "A referral that is declined cannot be scheduled."
    after = await (await client.get(f"/api/referrals/{referral['id']}", headers=await login(client, "dr.li"))).json()
    assert after["state"] == "declined" and after["appointment"] is None


async def test_redirect_hands_the_referral_to_another_specialist(client: TestClient) -> None:
    """The specialist asked for redirects the referral, with a reason, to a colleague: it is then the colleague's to
    accept, no longer theirs (403)."""
    known = await ids(client)
    referral = await create(client, known, target_specialist_id=known["dr.wang"])
    moved = await act(client, "dr.wang", referral["id"], "redirect", reason="Dr Zhou runs the arrhythmia clinic",
                      redirect_to={"hospital_id": known["provincial"], "specialist_id": known["dr.zhou"]})
    assert moved.status == 200, await moved.text()
    assert (await moved.json())["state"] == "redirected"
    assert (await act(client, "dr.wang", referral["id"], "accept")).status == 403  # no longer theirs
    assert (await act(client, "dr.zhou", referral["id"], "accept")).status == 200


@pytest.mark.parametrize(("changes", "field"), [
    ({"urgency": "whenever"}, "urgency"),
    ({"reason": ""}, "reason"),
    ({"specialty": "astrology"}, "specialty"),
    ({"patient_id": 999}, "patient_id"),
    ({"target_hospital_id": 999}, "target_hospital_id"),
    ({"target_specialist_id": 4}, "target_specialist_id"),  # the coordinator is no specialist
    ({"extra": 1}, "extra"),
])
async def test_invalid_referral_is_422_naming_the_field_and_writes_nothing(client: TestClient, changes: dict,
                                                                          field: str) -> None:
    """Each row, an unknown urgency, an empty reason, an unknown specialty, patient or hospital, a target who is not a
    specialist, or an unknown field: 422 naming that field, and no referral is written."""
    known = await ids(client)
    headers = await login(client, "dr.li")
    response = await client.post("/api/referrals", json=new_referral(known, **changes), headers=headers)
    assert response.status == 422, await response.text()
    assert field in (await response.json())["error"]["fields"]
    assert (await (await client.get("/api/referrals", headers=headers)).json())["referrals"] == []


async def test_slot_search_validates_its_query(client: TestClient) -> None:
    """A slot search without a specialty and with a date that is not a date is 422 naming both."""
    response = await client.get("/api/slots?date=tomorrow", headers=await login(client, "coord.zhao"))
    assert response.status == 422
    assert set((await response.json())["error"]["fields"]) == {"specialty", "date"}


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_concurrent_bookings_of_one_slot_exactly_one_wins(settings: Settings, database_url: str) -> None:
    """Eight coordinators' requests for the same slot at the same moment, each for a different accepted
    referral: one appointment, seven clear conflicts, and nothing half-written for the losers."""
    database = Database(database_url)
    await database.upgrade()  # as `telemed db upgrade` does; only the embedded database upgrades itself
    await database.close()
    client = await _start(dataclasses.replace(settings, database_url=database_url))
    try:
        known = await ids(client)
        referrals = [await create(client, known) for _ in range(8)]
        for referral in referrals:
            assert (await act(client, "coord.zhao", referral["id"], "accept")).status == 200
        slot = await first_free_slot(client, "coord.zhao", known["dr.wang"])
        headers = await login(client, "coord.zhao")

        async def book(referral: dict) -> Any:
            return await client.post(f"/api/referrals/{referral['id']}/appointment",
                                     json={"specialist_id": known["dr.wang"], "starts_at": slot["starts_at"]},
                                     headers=headers)
        answers = await asyncio.gather(*(book(r) for r in referrals))
        statuses = sorted(a.status for a in answers)
        assert statuses == [201] + [409] * 7, statuses
        for answer in answers:
            if answer.status == 409:
                assert (await answer.json())["error"]["code"] == "slot-taken"

        async with client.app[DATABASE].session() as session:
            live = (await session.exec(select(Appointment).where(
                Appointment.status == AppointmentStatus.BOOKED))).all()
            consultations = (await session.exec(select(Consultation))).all()
        assert len(live) == 1
        assert len(consultations) == 2  # the demo's, and the winner's: the losers left none behind
        states = [(await (await client.get(f"/api/referrals/{r['id']}", headers=headers)).json())["state"]
                  for r in referrals]
        assert sorted(states) == ["accepted"] * 7 + ["scheduled"]
    finally:
        await client.close()


async def test_cancelling_a_scheduled_referral_frees_its_slot(client: TestClient) -> None:
    """The referring doctor cancels a scheduled referral only with a reason (422 without one); cancelled, it has no
    appointment left and its slot is offered again."""
    known = await ids(client)
    referral = await create(client, known)
    await act(client, "coord.zhao", referral["id"], "accept")
    slot = await first_free_slot(client, "coord.zhao", known["dr.wang"])
    booked = await client.post(f"/api/referrals/{referral['id']}/appointment",
                               json={"specialist_id": known["dr.wang"], "starts_at": slot["starts_at"]},
                               headers=await login(client, "coord.zhao"))
    assert booked.status == 201
    assert (await act(client, "dr.li", referral["id"], "cancel")).status == 422  # a reason is required
    cancelled = await act(client, "dr.li", referral["id"], "cancel", reason="Patient admitted locally")
    assert cancelled.status == 200
    after = await cancelled.json()
    assert after["state"] == "cancelled" and after["appointment"] is None
    assert (await first_free_slot(client, "coord.zhao", known["dr.wang"]))["starts_at"] == slot["starts_at"]


@pytest.mark.parametrize("days", ["%C2%B2", "%D9%A1", "9" * 5000, "0", "-1", "32"])
async def test_slot_search_days_are_ascii_digits_within_range(client: TestClient, days: str) -> None:
    """Guards ?days=: ``²`` and 5,000 digits passed isdigit() and crashed int() (a 500); ``١`` was read as 1."""
    response = await client.get(f"/api/slots?specialty=cardiology&date=2030-01-07&days={days}",
                                headers=await login(client, "coord.zhao"))
    assert response.status == 422
    assert set((await response.json())["error"]["fields"]) == {"days"}


@pytest.mark.parametrize("path", ["/api/referrals", "/api/referrals?inbox=1"])
async def test_the_list_and_the_inbox_cost_the_same_queries_for_five_referrals_as_for_two_hundred(
        client: TestClient, path: str) -> None:
    """GET /api/referrals describes its rows in one batch: the coordinator's list and inbox send as many
    statements for two hundred referrals as for five."""
    database = client.app[DATABASE]
    headers = await login(client, "coord.zhao")

    async def listed() -> tuple[list[dict[str, Any]], list[str]]:
        with statements(database) as sent:
            response = await client.get(path, headers=headers)
            assert response.status == 200, await response.text()
            rows = (await response.json())["referrals"]
        return rows, sent

    await add_referrals(database, 5)
    few, with_few = await listed()
    await add_referrals(database, 195, first=5)
    many, with_many = await listed()
    assert 0 < len(few) < len(many)
    assert len(with_many) == len(with_few), with_many


async def test_a_specialist_the_appointment_moves_away_from_leaves_its_room_and_cannot_come_back(
        client: TestClient) -> None:
    """Guards membership in the room after a move: the coordinator moving a booked appointment to another specialist
    takes the first one off the consultation, and if they are in its room they get `removed` and their socket closes
    (4403) while the referring doctor sees them leave (`not-a-participant`); their room token, still unexpired, no
    longer lets them in (error `not-a-participant`, 4403), and no new one is issued to them."""
    referral, known = await booked_referral(client)
    consultation = referral["consultation_id"]
    await open_room_now(client, consultation)
    path = signaling_path(consultation)
    li = await connect(client, await room_token(client, "dr.li", consultation), url=path)
    await expect(li, "joined")
    wang_token = await room_token(client, "dr.wang", consultation)
    wang = await connect(client, wang_token, url=path)
    await expect(wang, "joined")
    await expect(li, "participant-joined")

    slot = await first_free_slot(client, "coord.zhao", known["dr.zhou"])
    moved = await client.put(f"/api/referrals/{referral['id']}/appointment",
                             json={"specialist_id": known["dr.zhou"], "starts_at": slot["starts_at"],
                                   "reason": "Dr Wang is away"}, headers=await login(client, "coord.zhao"))
    assert moved.status == 200, await moved.text()
    assert (await expect(wang, "removed"))["message"]
    await expect_closed(wang, 4403)
    left = await expect(li, "participant-left")
    assert left["reason"] == "not-a-participant"

    again = await connect(client, wang_token, url=path)
    assert (await expect(again, "error"))["code"] == "not-a-participant"
    await expect_closed(again, 4403)
    refused = await client.post(f"/api/consultations/{consultation}/room-token", headers=await login(client, "dr.wang"))
    assert refused.status == 403
    await li.close()


async def test_a_move_that_lands_while_the_specialist_is_joining_still_sends_them_away(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the window between the room's gate letting a clinician in and their join reaching the room: the
    appointment moves to another specialist right after dr.wang's gate check passed, so the room is told to expel
    him before his join is there; asked again once he is seated, the gate sends him away (`removed`, 4403)."""
    referral, known = await booked_referral(client)
    consultation = referral["consultation_id"]
    await open_room_now(client, consultation)
    wang_token = await room_token(client, "dr.wang", consultation)
    slot = await first_free_slot(client, "coord.zhao", known["dr.zhou"])
    coordinator = await login(client, "coord.zhao")
    checked = RoomGate.check
    moved: list[int] = []

    async def check_then_move(gate: RoomGate, identity: str, invitation: int | None,
                              generation: int | None = None) -> Granted | None:
        granted = await checked(gate, identity, invitation, generation)
        if not moved:  # the first check, of the join, passed: now the appointment moves
            answer = await client.put(f"/api/referrals/{referral['id']}/appointment", headers=coordinator, json={
                "specialist_id": known["dr.zhou"], "starts_at": slot["starts_at"], "reason": "Dr Wang is away"})
            moved.append(answer.status)
        return granted

    monkeypatch.setattr(RoomGate, "check", check_then_move)
    wang = await connect(client, wang_token, url=signaling_path(consultation))
    await expect(wang, "joined")
    assert moved == [200]
    assert (await expect(wang, "removed"))["message"]
    await expect_closed(wang, 4403)


async def test_a_draft_saved_without_consent_is_submitted_with_it(client: TestClient) -> None:
    """Guards the only way a draft saved without the patient's consent to sharing could ever be sent (there was
    none): submitting it alone is 422 naming `sharing_consent`; a consent offered with another action is 422
    and records nothing; submitting with `sharing_consent: "verbal"` records the consent (by dr.li) and sends
    the referral in one step."""
    known = await ids(client)
    draft = await create(client, known, submit=False, sharing_consent=None)
    assert draft["state"] == "draft" and draft["sharing_consent"] is None
    alone = await act(client, "dr.li", draft["id"], "submit")
    assert alone.status == 422 and "sharing_consent" in (await alone.json())["error"]["fields"]
    wrong = await act(client, "dr.li", draft["id"], "cancel", reason="x", sharing_consent="verbal")
    assert wrong.status == 422 and "sharing_consent" in (await wrong.json())["error"]["fields"]
    still = await (await client.get(f"/api/referrals/{draft['id']}", headers=await login(client, "dr.li"))).json()
    assert still["state"] == "draft" and still["sharing_consent"] is None
    sent = await act(client, "dr.li", draft["id"], "submit", sharing_consent="verbal")
    assert sent.status == 200, await sent.text()
    body = await sent.json()
    assert body["state"] == "submitted"
    assert body["sharing_consent"]["method"] == "verbal" and body["sharing_consent"]["recorded_by"] == known["dr.li"]


async def test_a_draft_cancelled_unsent_stays_its_doctors_alone(client: TestClient) -> None:
    """Guards a draft never reaching the receiving side, even as it ends: dr.li cancels a draft naming dr.wang;
    neither dr.wang nor coord.zhao is notified of it (the notice's link would only be refused) nor may open it,
    cancelled; a referral that was sent and then cancelled still notifies them."""
    known = await ids(client)
    draft = await create(client, known, submit=False, target_specialist_id=known["dr.wang"])
    sent = await create(client, known, target_specialist_id=known["dr.wang"])
    for referral in (draft, sent):
        assert (await act(client, "dr.li", referral["id"], "cancel", reason="No longer needed")).status == 200
    async with client.app[DATABASE].session() as session:
        told = (await session.exec(select(Notification).where(
            col(Notification.user_id).in_([known["dr.wang"], known["coord.zhao"]])))).all()
    links = {n.link for n in told}
    assert f"/referrals/{sent['id']}" in links and f"/referrals/{draft['id']}" not in links
    for username in ("dr.wang", "coord.zhao"):
        answer = await client.get(f"/api/referrals/{draft['id']}", headers=await login(client, username))
        assert answer.status == 403, username


async def test_consent_on_submit_is_recorded_only_with_a_submit_that_goes_through(client: TestClient) -> None:
    """Guards the one transaction of a submit with the patient's consent: a draft without its question is refused
    (422 naming `question`) and keeps no consent; the receiving coordinator or another county doctor offering the
    consent is refused (403) and records none; dr.li then fills in the question and sends it."""
    known = await ids(client)
    draft = await create(client, known, submit=False, sharing_consent=None, question="")
    refused = await act(client, "dr.li", draft["id"], "submit", sharing_consent="verbal")
    assert refused.status == 422 and set((await refused.json())["error"]["fields"]) == {"question"}
    for username in ("coord.zhao", "dr.chen"):
        assert (await act(client, username, draft["id"], "submit", sharing_consent="verbal")).status == 403
    async with client.app[DATABASE].session() as session:
        assert (await session.exec(select(Consent).where(Consent.referral_id == draft["id"]))).all() == []
    edited = await client.put(f"/api/referrals/{draft['id']}/request", headers=await login(client, "dr.li"),
                              json={"reason": draft["reason"], "question": "Is there myocardial ischaemia?"})
    assert edited.status == 200, await edited.text()
    assert (await act(client, "dr.li", draft["id"], "submit", sharing_consent="verbal")).status == 200
