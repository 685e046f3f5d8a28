"""Finding consultations (``consultations.find``): the list holds exactly what ``can_view_consultation``
lets each caller open, a page at a time; a search never finds a consultation by what it withholds; days are
the caller's hospital's days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from server.consent import templates as consent_templates
from server.consultations import service as consultations
from server.consultations.inputs import ConsultationSearch
from server.db import Database
from server.demo import seed_demo
from server.errors import Forbidden
from server.models import (
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    ConsentTemplate,
    Consultation,
    ConsultationParticipant,
    ConsultationStatus,
    Hospital,
    Partnership,
    Patient,
    Referral,
    ReferralState,
    Specialty,
    Urgency,
    User,
)
from server.permissions import can_view_consultation

from ..referrals.test_views import principal

BASE = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
USERS = ("dr.li", "dr.chen", "dr.wang", "dr.zhou", "dr.he", "coord.zhao")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    await consent_templates.publish(database)
    yield database
    await database.close()


async def add_consultations(database: Database, count: int) -> None:
    """``count`` consultations varied by their number: at either county hospital or the provincial one, with
    two of the clinicians taking part, every status, half with a patient, every tenth booked for a referral
    to the provincial hospital without a consent to sharing (so withheld from it), the others with a patient
    shared with other hospitals by the patient's consent but for every sixth from the second (withheld from
    them), an hour apart."""
    async with database.session() as session:
        users = {u.username: u for u in (await session.exec(select(User))).all()}
        hospitals = (await session.exec(select(Hospital).order_by(Hospital.id))).all()
        partnership = (await session.exec(select(Partnership))).one()
        specialty = (await session.exec(select(Specialty))).first()
        sharing = (await session.exec(select(ConsentTemplate).where(
            ConsentTemplate.purpose == ConsentPurpose.RECORD_SHARING))).first()
        assert sharing is not None and sharing.id is not None
        clinicians = [users[n] for n in USERS[:5]]
        for i in range(count):
            hospital = hospitals[i % len(hospitals)]
            patient = Patient(hospital_id=hospital.id, name=f"Patient {i}") if i % 2 == 0 else None
            if patient:
                session.add(patient)
                await session.flush()
            consultation = Consultation(
                title=f"Title {i}", hospital_id=hospital.id, patient_id=patient.id if patient else None,
                planned_start=BASE + timedelta(hours=i), status=list(ConsultationStatus)[i % 4],
                created_by=users["dr.li"].id)
            session.add(consultation)
            await session.flush()
            taking_part = {clinicians[i % 5].id, clinicians[(i * 3 + 1) % 5].id}
            if i % 10 == 0:  # booked for a referral: the receiving hospital's specialist takes part
                taking_part.add(users["dr.wang"].id)
            for user in taking_part:
                session.add(ConsultationParticipant(consultation_id=consultation.id, user_id=user))
            if patient is not None and i % 10 and i % 6 != 2:
                session.add(Consent(purpose=ConsentPurpose.RECORD_SHARING, template_id=sharing.id,
                                    subject=ConsentSubject.PATIENT, identity=f"patient:{patient.id}",
                                    patient_id=patient.id, name=patient.name, consultation_id=consultation.id,
                                    method=ConsentMethod.VERBAL, recorded_by=users["dr.li"].id))
            if i % 10 == 0:
                session.add(Referral(
                    patient_id=patient.id, referring_doctor_id=users["dr.li"].id, referring_hospital_id=hospital.id,
                    partnership_id=partnership.id, specialty_id=specialty.id, target_hospital_id=hospitals[0].id,
                    urgency=Urgency.ROUTINE, reason=f"Reason {i}", summary="", state=ReferralState.SCHEDULED,
                    consultation_id=consultation.id, submitted_at=BASE - timedelta(days=1)))
        await session.commit()


View = consultations.ConsultationView


async def _everything(database: Database, username: str, search: ConsultationSearch) -> list[View]:
    found: list[View] = []
    async with database.session() as session:
        who = await principal(session, username)
        first = await consultations.find(session, who, search)
        found += first.items
        for page in range(2, first.pages + 1):
            found += (await consultations.find(session, who, search.model_copy(update={"page": page}))).items
        assert len(found) == first.total
    return found


@pytest.mark.parametrize("username", USERS)
async def test_the_list_is_what_the_rule_lets_each_caller_see(database: Database, username: str) -> None:
    """Guards the list against the rule: page by page, latest first, it holds exactly the consultations
    ``can_view_consultation`` lets this caller see (a coordinator also those of their hospital)."""
    await add_consultations(database, 50)
    listed = await _everything(database, username, ConsultationSearch())
    async with database.session() as session:
        who = await principal(session, username)
        ids = (await session.exec(select(Consultation.id))).all()
        views = [await consultations.load(session, i) for i in ids if i is not None]
        allowed = [v for v in views if can_view_consultation(who, v.scope)]
    expected = sorted(allowed, key=lambda v: (v.consultation.planned_start, v.consultation.id), reverse=True)
    assert [v.consultation.id for v in listed] == [v.consultation.id for v in expected]
    assert len(listed) > consultations.PAGE_SIZE or username != "coord.zhao", "more than a page"


@pytest.mark.parametrize("username", ["auditor", "admin"])
async def test_those_who_see_no_records_are_refused(database: Database, username: str) -> None:
    """Guards health records: administrators and auditors get a 403, not an empty list."""
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await consultations.find(session, await principal(session, username), ConsultationSearch())


async def test_a_search_never_finds_what_is_withheld(database: Database) -> None:
    """Guards disclosure: the receiving side finds a consultation booked for an unshared referral, or one set up
    without a referral whose patient did not consent to sharing with it, by neither its patient's name nor its
    title (both would tell who it is), and sees it withheld in the list."""
    await add_consultations(database, 30)
    # i=10: at Qingshan, "Patient 10", referred to the provincial hospital without consent; dr.wang takes part
    for username in ("dr.wang", "coord.zhao"):
        everything = {v.consultation.title: v for v in await _everything(database, username, ConsultationSearch())}
        hidden = [v for v in everything.values() if v.withheld]
        assert len(hidden) >= 2 and all(v.patient is None and v.title is None for v in hidden)
        assert {"Title 10", "Title 2"} <= {v.consultation.title for v in hidden}, username
        for q, title in (("Patient 10", "Title 10"), ("Title 10", "Title 10"), ("title 10", "Title 10"),
                         ("Patient 2", "Title 2"), ("Title 2", "Title 2")):  # i=2: at Baihe, dr.wang takes part
            found = await _everything(database, username, ConsultationSearch(q=q))
            assert all(v.consultation.title != title for v in found), (username, q)
    by_referrer = await _everything(database, "dr.li", ConsultationSearch(q="patient 10"))
    assert [v.patient.name for v in by_referrer if v.patient] == ["Patient 10"], "the referring side finds it"


@pytest.mark.parametrize(("q", "status", "titles"), [
    ("Title 1", None, {"Title 1", "Title 10", "Title 11", "Title 12", "Title 13", "Title 14", "Title 15",
                       "Title 16", "Title 17", "Title 18", "Title 19"}),
    ("title 2", ConsultationStatus.COMPLETED, {"Title 2", "Title 22", "Title 26"}),
    ("Patient 4", None, {"Title 4"}),
    ("%", None, set()),  # taken literally
    (None, ConsultationStatus.CANCELLED, {f"Title {i}" for i in range(3, 30, 4)}),
])
async def test_search_by_patient_or_title_and_status(database: Database, q: str | None,
                                                     status: ConsultationStatus | None, titles: set[str]) -> None:
    """Guards the search's filters, seen by a coordinator of the hospital where every third one is."""
    await add_consultations(database, 30)
    listed = await _everything(database, "coord.zhao", ConsultationSearch())
    shown = {v.consultation.id for v in listed if not (q and v.withheld)}
    found = await _everything(database, "coord.zhao", ConsultationSearch(q=q, status=status))
    async with database.session() as session:
        wanted = {c.id for c in (await session.exec(select(Consultation))).all() if c.title in titles}
    assert {v.consultation.id for v in found} == wanted & shown
    assert bool(found) == bool(titles), "each case but the literal % finds something"


async def test_days_are_the_callers_hospitals_days(database: Database) -> None:
    """Guards the date filter: a day is midnight to midnight in Beijing (the caller's hospital), so a
    consultation at 23:30 UTC on 4 March, 07:30 on 5 March in Beijing, is found on the 5th, not the 4th."""
    async with database.session() as session:
        dr_li = (await session.exec(select(User).where(User.username == "dr.li"))).one()
        for hours in (15.5, 16.0, 39.9):  # 23:30 and 00:00 Beijing on 4/5 March; 23:54 Beijing on 5 March
            consultation = Consultation(title=f"At {hours}", hospital_id=dr_li.hospital_id,
                                        planned_start=datetime(2030, 3, 4, tzinfo=UTC) + timedelta(hours=hours),
                                        created_by=dr_li.id)
            session.add(consultation)
            await session.flush()
            session.add(ConsultationParticipant(consultation_id=consultation.id, user_id=dr_li.id))
        await session.commit()

    async def titles(since: date | None, until: date | None) -> set[str]:
        found = await _everything(database, "dr.li", ConsultationSearch(since=since, until=until))
        return {v.consultation.title for v in found if v.consultation.title.startswith("At ")}

    assert await titles(date(2030, 3, 4), date(2030, 3, 4)) == {"At 15.5"}
    assert await titles(date(2030, 3, 5), date(2030, 3, 5)) == {"At 16.0", "At 39.9"}
    assert await titles(date(2030, 3, 5), None) == {"At 16.0", "At 39.9"}
    assert await titles(None, date(2030, 3, 4)) == {"At 15.5"}


def test_the_last_day_cannot_come_before_the_first() -> None:
    """Guards the range: an upside-down one is refused on ``until``, with a message the catalog translates."""
    import pydantic
    with pytest.raises(pydantic.ValidationError) as refused:
        ConsultationSearch(since=date(2030, 3, 5), until=date(2030, 3, 4))
    assert refused.value.errors()[0]["loc"] == ("until",)
    assert "The last day cannot come before the first." in refused.value.errors()[0]["msg"]
