"""Referral lists: described in a constant number of queries, and exactly as one referral at a time was."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.consent import templates as consent_templates
from server.db import Database
from server.demo import seed_demo
from server.models import (
    Appointment,
    AppointmentStatus,
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    ConsentTemplate,
    Consultation,
    Hospital,
    Partnership,
    Patient,
    Referral,
    ReferralState,
    Sex,
    Specialty,
    Urgency,
    User,
)
from server.permissions import Principal, principal_of
from server.referrals import service as referrals
from server.referrals import views

VIEWERS = ("coord.zhao", "dr.li", "dr.chen", "dr.wang", "dr.zhou", "dr.he")
BASE = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The demo partnership with its consent texts, on SQLite and on PostgreSQL."""
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    await consent_templates.publish(database)
    yield database
    await database.close()


async def principal(session: AsyncSession, username: str) -> Principal:
    """The account as the rules see it now (its licence too)."""
    return principal_of((await session.exec(select(User).where(User.username == username))).one())


async def add_referrals(database: Database, count: int, *, first: int = 0) -> None:
    """``count`` referrals written straight to the database, varied by their number: from both county
    hospitals, to the provincial hospital or the other county one, with or without a specialist asked for,
    in every state, with a live or a cancelled appointment or none, and a standing, withdrawn or no consent
    to sharing."""
    async with database.session() as session:
        users = {u.username: u for u in (await session.exec(select(User))).all()}
        hospitals = {h.name.split()[0]: h for h in (await session.exec(select(Hospital))).all()}
        provincial, qingshan, baihe = (hospitals[k] for k in ("江南省人民医院", "青山县人民医院", "白河县中医院"))
        partnership = (await session.exec(select(Partnership))).one()
        specialties = (await session.exec(select(Specialty))).all()
        consultation = (await session.exec(select(Consultation))).first()
        template = (await session.exec(select(ConsentTemplate).where(
            ConsentTemplate.purpose == ConsentPurpose.RECORD_SHARING))).first()
        assert consultation is not None and template is not None
        states = list(ReferralState)
        made: list[tuple[int, Referral]] = []
        for i in range(first, first + count):
            doctor = users["dr.li"] if i % 2 == 0 else users["dr.chen"]
            home, other = (qingshan, baihe) if i % 2 == 0 else (baihe, qingshan)
            target = other if i % 7 == 0 else provincial
            patient = Patient(hospital_id=home.id, name=f"Patient {i}", sex=list(Sex)[i % 4],
                              birth_year=1940 + i % 60 if i % 9 else None)
            session.add(patient)
            await session.flush()
            state = states[i % len(states)]
            asked = None if target is not provincial else [users["dr.wang"].id, users["dr.he"].id, None][i % 3]
            referral = Referral(
                patient_id=patient.id, referring_doctor_id=doctor.id, referring_hospital_id=home.id,
                partnership_id=partnership.id, specialty_id=specialties[i % len(specialties)].id,
                target_hospital_id=target.id, target_specialist_id=asked, urgency=list(Urgency)[i % 3],
                reason=f"Reason {i}", summary=f"Summary {i}", state=state,
                consultation_id=consultation.id if i % 5 == 0 else None,
                created_at=BASE - timedelta(days=1, minutes=i),
                submitted_at=None if state is ReferralState.DRAFT else BASE - timedelta(hours=20, minutes=i),
                updated_at=BASE - timedelta(minutes=i))
            made.append((i, referral))
        session.add_all([r for _, r in made])
        await session.flush()
        for i, referral in made:
            starts = BASE + timedelta(days=i // 16, minutes=30 * (i % 16))
            appointment = dict(referral_id=referral.id, specialist_id=users["dr.zhou"].id, starts_at=starts,
                               ends_at=starts + timedelta(minutes=30), booked_by=users["coord.zhao"].id)
            if i % 5 in (0, 1):  # a cancelled booking first; the live one after it
                session.add(Appointment(**appointment, status=AppointmentStatus.CANCELLED, cancel_reason="moved"))
            if i % 5 == 0 and referral.state is not ReferralState.DRAFT:  # a draft is booked with nobody
                session.add(Appointment(**appointment, consultation_id=referral.consultation_id))
            if i % 3 != 2:
                session.add(Consent(
                    purpose=ConsentPurpose.RECORD_SHARING, template_id=template.id, subject=ConsentSubject.PATIENT,
                    identity=f"patient:{referral.patient_id}", patient_id=referral.patient_id, name=f"Patient {i}",
                    referral_id=referral.id, method=ConsentMethod.VERBAL, recorded_by=referral.referring_doctor_id,
                    given_at=BASE - timedelta(days=2), withdrawn_at=BASE - timedelta(days=1) if i % 3 == 1 else None,
                    withdrawn_by=f"patient:{referral.patient_id}" if i % 3 == 1 else ""))
        await session.commit()


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL statements sent to the database while the block runs."""
    sent: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)
    sa.event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        sa.event.remove(database.engine.sync_engine, "before_cursor_execute", count)


async def listed(database: Database, username: str, *, inbox: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """The caller's list as the API shows it, in a fresh session, and the statements it took."""
    async with database.session() as session:
        who = await principal(session, username)
        with statements(database) as sent:
            rows = await referrals.list_for(session, who, inbox=inbox)
            described = await views.describe_many(session, who, rows)
    return described, sent


async def one_at_a_time(session: AsyncSession, who: Principal, referral: Referral) -> dict[str, Any]:
    """The list entry as ``describe(full=False)`` built it before lists were batched: one referral, one
    query per thing it names. The reference the batched description must match."""
    assert referral.id is not None
    patient = await session.get(Patient, referral.patient_id)
    specialty = await session.get(Specialty, referral.specialty_id)
    target = await session.get(Hospital, referral.target_hospital_id)
    referring = await session.get(Hospital, referral.referring_hospital_id)
    referrer = await session.get(User, referral.referring_doctor_id)
    appointment = (await session.exec(select(Appointment).where(
        Appointment.referral_id == referral.id, Appointment.status == AppointmentStatus.BOOKED))).first()
    assert patient is not None and specialty is not None and target is not None and referrer is not None
    assert referring is not None
    shared = await referrals.records_shared_with(session, who, referral)

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None
    return {
        "id": referral.id, "state": referral.state.value, "urgency": referral.urgency.value,
        "reason": referral.reason if shared else None, "records_withheld": not shared,
        "patient": {"id": patient.id, "name": patient.name, "sex": patient.sex.value, "birth_year": patient.birth_year}
        if shared else None,
        "specialty": {"code": specialty.code, "name_zh": specialty.name_zh, "name_en": specialty.name_en},
        "target_hospital": {"id": target.id, "name": target.name},
        "referring_hospital": {"id": referring.id, "name": referring.name},
        "target_specialist_id": referral.target_specialist_id,
        "referring_doctor": {"id": referrer.id, "display_name": referrer.display_name},
        "created_at": iso(referral.created_at), "submitted_at": iso(referral.submitted_at),
        "updated_at": iso(referral.updated_at), "consultation_id": referral.consultation_id,
        "appointment": None if appointment is None else {
            "id": appointment.id, "specialist_id": appointment.specialist_id, "starts_at": iso(appointment.starts_at),
            "ends_at": iso(appointment.ends_at), "consultation_id": appointment.consultation_id},
    }


@pytest.mark.parametrize(("username", "inbox"), [
    ("coord.zhao", False), ("coord.zhao", True), ("dr.li", False), ("dr.li", True),
    ("dr.zhou", False),  # booked with him
    ("dr.he", True),  # asked of him
])
async def test_a_list_takes_the_same_few_queries_for_six_referrals_as_for_two_hundred(
        database: Database, username: str, inbox: bool) -> None:
    """The list and the inbox ask the database a fixed number of times however long they are: no query per
    referral for its patient, specialty, hospital, referrer, appointment or sharing consent."""
    await add_referrals(database, 6)
    few, with_few = await listed(database, username, inbox=inbox)
    await add_referrals(database, 194, first=6)
    many, with_many = await listed(database, username, inbox=inbox)

    assert 0 < len(few) < len(many), "the mix gives this caller referrals to list, more of them the second time"
    assert len(with_many) == len(with_few), with_many
    # the list, then its appointments, patients, specialties, hospitals, referrers and sharing consents
    assert len(with_many) <= 7, with_many


async def test_a_batched_list_describes_each_referral_as_describing_it_alone_did(database: Database) -> None:
    """``describe_many`` gives, row for row, what the one-referral description gave: the same patient,
    names, appointment and timestamps, and the same records withheld from the receiving side where the
    patient's consent to sharing was withdrawn or never given."""
    await add_referrals(database, 60)
    seen: list[dict[str, Any]] = []
    for username in VIEWERS:
        async with database.session() as session:
            who = await principal(session, username)
            rows = await referrals.list_for(session, who)
            batched = await views.describe_many(session, who, rows)
        async with database.session() as session:
            expected = [await one_at_a_time(session, who, r) for r in rows]
        assert batched == expected, username
        seen += batched

    # the mix covers what differs between rows
    assert any(d["records_withheld"] and d["patient"] is None and d["reason"] is None for d in seen)
    assert any(not d["records_withheld"] for d in seen)
    assert any(d["appointment"] for d in seen) and any(d["appointment"] is None for d in seen)
    assert any(d["target_specialist_id"] for d in seen) and any(d["submitted_at"] is None for d in seen)
    assert len({d["target_hospital"]["id"] for d in seen}) > 1 and len({d["referring_doctor"]["id"] for d in seen}) > 1


async def test_the_receiving_side_sees_a_withheld_referral_withheld_in_the_list(database: Database) -> None:
    """A referral whose patient withdrew their consent to sharing is listed for the receiving hospital's
    coordinator without the patient or the reason, and for the referring doctor with both."""
    await add_referrals(database, 3)  # the second (i = 1) is dr.chen's, to the provincial hospital, withdrawn
    async with database.session() as session:
        withheld = (await session.exec(select(Referral).where(Referral.reason == "Reason 1"))).one()
        coordinator = await principal(session, "coord.zhao")
        referrer = await principal(session, "dr.chen")
        theirs = await views.describe_many(session, coordinator, [withheld])
        ours = await views.describe_many(session, referrer, [withheld])
    assert theirs[0]["records_withheld"] is True and theirs[0]["patient"] is None and theirs[0]["reason"] is None
    assert ours[0]["records_withheld"] is False and ours[0]["patient"]["name"] == "Patient 1"
    assert ours[0]["reason"] == "Reason 1"


async def test_an_empty_list_asks_nothing(database: Database) -> None:
    """Describing no referrals sends no statement (an empty IN list is not sent to the database)."""
    async with database.session() as session:
        who = await principal(session, "coord.zhao")
        with statements(database) as sent:
            assert await views.describe_many(session, who, []) == []
    assert sent == []
