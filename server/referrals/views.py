"""How a referral is shown: one at a time in full, or a list in a constant number of queries, with the
patient's records only where the caller may see them (``patients/disclosure.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pydantic
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import zones
from ..audit import trail as audit
from ..consent import records as consents
from ..consultations import service as consultations
from ..db import Database
from ..models import (
    Appointment,
    AppointmentStatus,
    Hospital,
    Patient,
    Referral,
    ReferralAction,
    ReferralEvent,
    ReferralState,
    Sex,
    Specialty,
    TitleWanted,
    Urgency,
    User,
)
from ..outputs import Named, Out, Person
from ..patients import disclosure
from ..permissions import Principal, can_join_consultation
from ..settings import DEFAULT_TIMEZONE
from .flow import may, open_actions
from .service import actor, facts_of, sharing_consent

_Row = TypeVar("_Row", Patient, Specialty, Hospital, User)


# ---- what the API answers (server/openapi.py describes it from these) ----

class PatientBrief(Out):
    id: int
    name: str
    sex: Sex
    birth_year: int | None


class SpecialtyShown(Out):
    code: str
    name_zh: str
    name_en: str


class AppointmentShown(Out):
    id: int
    specialist_id: int
    starts_at: datetime
    ends_at: datetime
    consultation_id: int | None


class ReferralShown(Out):
    """A referral in a list. ``patient``, ``reason`` are null where its records are withheld from the caller."""

    id: int
    state: ReferralState
    urgency: Urgency
    reason: str | None
    records_withheld: bool
    patient: PatientBrief | None
    specialty: SpecialtyShown
    target_hospital: Named
    referring_hospital: Named
    target_specialist_id: int | None
    referring_doctor: Person
    created_at: datetime
    submitted_at: datetime | None
    updated_at: datetime
    consultation_id: int | None
    appointment: AppointmentShown | None


class ReferralEventShown(Out):
    action: str
    from_state: str = pydantic.Field(alias="from")
    to: str
    at: datetime
    note: str
    by: Person


class ReferralDetail(ReferralShown):
    """A referral in full: its clinical summary (null where withheld), history, and what the caller may do
    next: ``actions`` through ``POST /api/referrals/{id}/actions``, ``can_book`` a slot
    (``POST /api/referrals/{id}/appointment``), ``can_move`` its booked appointment to another slot
    (``PUT /api/referrals/{id}/appointment``), ``can_sign_report`` (``POST /api/referrals/{id}/reports``)."""

    summary: str | None
    # the consultation request's clinical content, null where withheld (``GET .../request`` shows it whole)
    question: str | None
    working_diagnosis: str | None
    diagnosis_code: str | None
    history: str | None
    results: str | None
    title_wanted: TitleWanted
    sharing_consent: consents.ConsentShown | None
    decline_reason: str | None
    cancel_reason: str | None
    opinion: str | None
    recommendations: str | None
    events: list[ReferralEventShown]
    actions: list[ReferralAction]
    can_book: bool
    can_move: bool
    can_sign_report: bool
    can_join_room: bool


class ReferralList(Out):
    referrals: list[ReferralShown]


@dataclass(frozen=True)
class _Named:
    """What a list of referrals names, loaded for all of them at once: a query per kind of row, not per
    referral, so a list of two hundred costs what a list of five does."""

    patients: dict[int, Patient]
    specialties: dict[int, Specialty]
    hospitals: dict[int, Hospital]
    users: dict[int, User]
    appointments: dict[int, Appointment]  # the live one, by referral id
    shared: set[int]  # the referrals whose patient records the caller may see

    @classmethod
    async def load(cls, session: AsyncSession, who: Principal, referrals: list[Referral]) -> _Named:
        ids = {r.id for r in referrals}
        booked = (await session.exec(select(Appointment).where(
            col(Appointment.referral_id).in_(ids), Appointment.status == AppointmentStatus.BOOKED)
            .order_by(col(Appointment.id)))).all()
        appointments: dict[int, Appointment] = {}
        for appointment in booked:  # at most one is live; should two be, the first booked is shown
            appointments.setdefault(appointment.referral_id, appointment)
        return cls(patients=await _by_id(session, Patient, {r.patient_id for r in referrals}),
                   specialties=await _by_id(session, Specialty, {r.specialty_id for r in referrals}),
                   hospitals=await _by_id(session, Hospital, {r.target_hospital_id for r in referrals}
                                          | {r.referring_hospital_id for r in referrals}),
                   users=await _by_id(session, User, {r.referring_doctor_id for r in referrals}),
                   appointments=appointments, shared=await disclosure.shared_referrals(session, who, referrals))

    def describe(self, referral: Referral) -> dict[str, Any]:
        assert referral.id is not None
        patient = self.patients[referral.patient_id]
        specialty = self.specialties[referral.specialty_id]
        target = self.hospitals[referral.target_hospital_id]
        referring = self.hospitals[referral.referring_hospital_id]
        referrer = self.users[referral.referring_doctor_id]
        shared = referral.id in self.shared
        return {
            "id": referral.id, "state": referral.state.value, "urgency": referral.urgency.value,
            "reason": referral.reason if shared else None, "records_withheld": not shared,
            "patient": {"id": patient.id, "name": patient.name, "sex": patient.sex.value,
                        "birth_year": patient.birth_year} if shared else None,
            "specialty": {"code": specialty.code, "name_zh": specialty.name_zh, "name_en": specialty.name_en},
            "target_hospital": {"id": target.id, "name": target.name},
            "referring_hospital": {"id": referring.id, "name": referring.name},
            "target_specialist_id": referral.target_specialist_id,
            "referring_doctor": {"id": referrer.id, "display_name": referrer.display_name},
            "created_at": _iso(referral.created_at), "submitted_at": _iso(referral.submitted_at),
            "updated_at": _iso(referral.updated_at), "consultation_id": referral.consultation_id,
            "appointment": _appointment_json(self.appointments.get(referral.id)),
        }


async def _by_id(session: AsyncSession, model: type[_Row], ids: set[int]) -> dict[int, _Row]:
    rows = (await session.exec(select(model).where(col(model.id).in_(ids)))).all()
    return {row.id: row for row in rows if row.id is not None}


async def describe_many(session: AsyncSession, who: Principal, referrals: list[Referral]) -> list[dict[str, Any]]:
    """Referrals as the API lists them (``describe(full=False)`` of each), in a fixed number of queries."""
    if not referrals:
        return []
    named = await _Named.load(session, who, referrals)
    return [named.describe(r) for r in referrals]


async def describe(session: AsyncSession, who: Principal, referral: Referral, *, full: bool) -> dict[str, Any]:
    """A referral as the API shows it; ``full`` adds the clinical summary, history and what the caller may do."""
    assert referral.id is not None
    named = await _Named.load(session, who, [referral])
    data = named.describe(referral)
    if full:
        shared = referral.id in named.shared
        events = (await session.exec(select(ReferralEvent).where(ReferralEvent.referral_id == referral.id)
                                     .order_by(col(ReferralEvent.id)))).all()
        names = {u.id: u.display_name for u in (await session.exec(
            select(User).where(col(User.id).in_({e.actor_id for e in events})))).all()}
        consent = await sharing_consent(session, referral)
        data.update({
            "summary": referral.summary if shared else None,
            # the consultation request's clinical content, withheld with the summary (``request.py`` shows it whole)
            **{key: getattr(referral, key) if shared else None
               for key in ("question", "working_diagnosis", "diagnosis_code", "history", "results")},
            "title_wanted": referral.title_wanted.value,
            "sharing_consent": consents.describe(consent) if consent else None,
            "decline_reason": referral.decline_reason,
            # the specialist's words are the patient's record: withheld with the summary when consent is
            "cancel_reason": referral.cancel_reason, "opinion": referral.opinion if shared else None,
            "recommendations": referral.recommendations if shared else None,
            "events": [{"action": e.action, "from": e.from_state, "to": e.to_state, "at": _iso(e.at), "note": e.note,
                        "by": {"id": e.actor_id, "display_name": names.get(e.actor_id, "")}} for e in events],
            **_next_steps(who, referral, named.appointments.get(referral.id)),
            # A link to the room only for those who may take a seat in it (a coordinator books, not joins).
            "can_join_room": referral.consultation_id is not None and can_join_consultation(
                who, (await consultations.load(session, referral.consultation_id)).scope),
        })
    return data


# What the caller may do next but not through ``POST /api/referrals/{id}/actions``, which refuses these two
# with 422: a referral is scheduled by booking a slot, and completed by signing its report.
_ELSEWHERE = {ReferralAction.SCHEDULE: "can_book", ReferralAction.COMPLETE: "can_sign_report"}


def _next_steps(who: Principal, referral: Referral, appointment: Appointment | None) -> dict[str, Any]:
    """``actions``: what the caller may send to the actions endpoint now; ``can_book``, ``can_sign_report``:
    the two steps that have endpoints of their own; ``can_move``: the booked appointment, by whoever books."""
    facts = facts_of(referral, appointment)
    open_now = open_actions(actor(who), facts)
    movable = referral.state is ReferralState.SCHEDULED and appointment is not None
    return {"actions": [a.value for a in open_now if a not in _ELSEWHERE],
            **{flag: action in open_now for action, flag in _ELSEWHERE.items()},
            "can_move": movable and may(actor(who), facts, ReferralAction.SCHEDULE)}


async def audit_patient_view(database: Database, who: Principal, data: dict[str, Any]) -> None:
    """A referral shown with its patient's records (``describe(full=True)``) is a view of the patient's
    record: audit it."""
    if data.get("patient") and "summary" in data:
        await audit.record(database, actor=f"user:{who.user_id}", action="patient.viewed",
                           subject=f"patient:{data['patient']['id']}", detail={"via": f"referral:{data['id']}"})


def _appointment_json(appointment: Appointment | None) -> dict[str, Any] | None:
    if appointment is None:
        return None
    return {"id": appointment.id, "specialist_id": appointment.specialist_id, "starts_at": _iso(appointment.starts_at),
            "ends_at": _iso(appointment.ends_at), "consultation_id": appointment.consultation_id}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def reader_zone(session: AsyncSession, who: Principal, fallback: str = DEFAULT_TIMEZONE) -> str:
    """The time zone of the caller's hospital: the referral pages show every time on its clock."""
    return await zones.reader_zone(session, who, fallback)
