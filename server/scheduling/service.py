"""Specialists' free slots across a partnership, a referral's week of them as a booking calendar, and
booking them for referrals.

Booking writes the appointment, the consultation it will take place in, and the referral's move to
``scheduled`` in one transaction. Two coordinators racing for one slot both pass every check; the
partial unique index on (specialist, start) of live appointments lets exactly one commit, and the
other gets a 409 that says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from signaling.events import Expelling

from .. import idempotency
from ..audit import trail as audit
from ..consultations.room_notifier import RoomNotifier
from ..consultations.service import partner_hospital_ids
from ..errors import N_, Conflict, Forbidden, ValidationFailed
from ..models import (
    Appointment,
    AppointmentStatus,
    Availability,
    AvailabilityException,
    Consultation,
    ConsultationParticipant,
    Hospital,
    Patient,
    Referral,
    ReferralState,
    Role,
    Specialty,
    User,
    utcnow,
)
from ..notices import Notice
from ..outputs import Out, Person
from ..permissions import Principal, can_be_booked
from ..referrals.flow import ReferralAction, Request, may
from ..referrals.service import actor, apply, facts_of, load_visible
from .slots import DayChange, Hours, ShownDay, Slot, day_slots, is_slot, shown_day, week_of

SEARCH_DAYS_MAX = 31
LOOKAHEAD_WEEKS = 12  # how far the calendar looks for a week with a free slot, when not asked for one
WEEKS_AHEAD_MAX = 52  # the furthest week the calendar shows


# ``GET /api/slots``: free slots of a specialty from a day on, for ``days`` days. (The handler checks each
# itself, naming what is wrong.)
class SlotQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    specialty: str = pydantic.Field(min_length=1, max_length=64, description="a specialty code")
    date: dt.date = pydantic.Field(description="the first day, YYYY-MM-DD")
    days: int = pydantic.Field(default=1, ge=1, le=SEARCH_DAYS_MAX, description="how many days from it")


class SlotShown(Out):
    starts_at: datetime
    ends_at: datetime


class SlotHospital(Out):
    id: int
    name: str
    timezone: str


class SpecialistSlotsShown(Out):
    """One specialist's free slots on one local day of their hospital."""

    specialist: Person
    hospital: SlotHospital
    specialty: str
    slot_minutes: int
    date: dt.date
    slots: list[SlotShown]


class FreeSlots(Out):
    specialists: list[SpecialistSlotsShown]


@dataclass(frozen=True)
class SpecialistSlots:
    specialist: User
    hospital: Hospital
    specialty: Specialty
    day: date  # the hospital's local day
    slots: list[Slot]

    def to_json(self) -> dict[str, Any]:
        return {"specialist": {"id": self.specialist.id, "display_name": self.specialist.display_name},
                "hospital": {"id": self.hospital.id, "name": self.hospital.name, "timezone": self.hospital.timezone},
                "specialty": self.specialty.code, "slot_minutes": self.specialty.slot_minutes,
                "date": self.day.isoformat(),
                "slots": [{"starts_at": s.starts_at.isoformat(), "ends_at": s.ends_at.isoformat()} for s in self.slots]}


async def _hours(session: AsyncSession, specialist_id: int) -> tuple[list[Hours], list[DayChange]]:
    weekly = (await session.exec(select(Availability).where(Availability.specialist_id == specialist_id))).all()
    changes = (await session.exec(select(AvailabilityException)
                                  .where(AvailabilityException.specialist_id == specialist_id))).all()
    return ([Hours(a.weekday, a.start_minute, a.end_minute) for a in weekly],
            [DayChange(c.day, c.start_minute, c.end_minute, c.available) for c in changes])


async def _booked(session: AsyncSession, specialist_id: int) -> list[datetime]:
    return list((await session.exec(select(Appointment.starts_at).where(
        Appointment.specialist_id == specialist_id, Appointment.status == AppointmentStatus.BOOKED))).all())


async def search(session: AsyncSession, who: Principal, specialty_code: str,
                 days: list[date]) -> list[SpecialistSlots]:
    """Free slots on each of ``days`` (each hospital's local day) with every specialist of the specialty in
    the caller's partnerships: one entry per specialist and day with slots, soonest first. Each
    specialist's hours and bookings are read once, whatever the number of days."""
    specialty = (await session.exec(select(Specialty).where(Specialty.code == specialty_code))).first()
    if specialty is None:
        raise ValidationFailed({"specialty": N_("there is no such specialty")})
    hospitals = await partner_hospital_ids(session, who.hospital_id) | {who.hospital_id}
    specialists = (await session.exec(select(User).where(
        User.role == Role.SPECIALIST, User.specialty_id == specialty.id, User.is_active == True,  # noqa: E712
        col(User.hospital_id).in_(hospitals)).order_by(col(User.id)))).all()
    found = []
    now = utcnow()
    for specialist in [s for s in specialists if can_be_booked(s.role, s.licence_verified)]:
        assert specialist.id is not None
        hospital = await session.get(Hospital, specialist.hospital_id)
        assert hospital is not None
        hours, changes = await _hours(session, specialist.id)
        booked = await _booked(session, specialist.id)
        for day in days:
            slots = day_slots(day, hospital.timezone, hours, changes, specialty.slot_minutes, booked=booked,
                              not_before=now)
            if slots:
                found.append(SpecialistSlots(specialist, hospital, specialty, day, slots))
    found.sort(key=lambda s: s.slots[0].starts_at)
    return found


@dataclass(frozen=True)
class SpecialistWeek:
    specialist: User
    asked_for: bool  # the specialist the referring doctor named
    days: list[ShownDay]  # Monday to Sunday


@dataclass(frozen=True)
class BookingWeek:
    """A week of the receiving hospital's specialists in a referral's specialty, for booking it: every slot
    of their hours on the hospital's clock, free, booked or past."""

    hospital: Hospital  # whose clock the days and times are on
    specialty: Specialty
    start: date  # the Monday
    today: date  # on the hospital's clock
    rows: list[SpecialistWeek]
    earlier: date | None  # the Monday before, unless this is the current week
    later: date | None

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(7)]

    @property
    def free(self) -> int:
        return sum(day.free for row in self.rows for day in row.days)


async def booking_week(session: AsyncSession, who: Principal, referral_id: int, week: date | None) -> BookingWeek:
    """The week from ``week``'s Monday for booking the referral (the receiving coordinators). Without a
    ``week``, the current one on the hospital's clock, or else the first with a free slot within
    LOOKAHEAD_WEEKS; a week before the current one, or past WEEKS_AHEAD_MAX, is brought within them."""
    referral, appointment = await load_visible(session, who, referral_id)
    if not may(actor(who), facts_of(referral, appointment), ReferralAction.SCHEDULE):
        raise Forbidden(N_("Only the receiving hospital's coordinators book a referral's appointment."))
    hospital = await session.get(Hospital, referral.target_hospital_id)
    specialty = await session.get(Specialty, referral.specialty_id)
    assert hospital is not None and specialty is not None
    specialists = (await session.exec(select(User).where(
        User.role == Role.SPECIALIST, User.specialty_id == specialty.id, User.is_active == True,  # noqa: E712
        User.hospital_id == hospital.id).order_by(col(User.id)))).all()
    specialists = [s for s in specialists if can_be_booked(s.role, s.licence_verified)]
    now = utcnow()
    today = now.astimezone(ZoneInfo(hospital.timezone)).date()
    current, last = week_of(today), week_of(today) + timedelta(weeks=WEEKS_AHEAD_MAX)
    known = [(specialist, *await _hours(session, specialist.id), await _booked(session, specialist.id))
             for specialist in specialists if specialist.id is not None]

    def rows(start: date) -> list[SpecialistWeek]:
        return [SpecialistWeek(specialist, specialist.id == referral.target_specialist_id, [
            shown_day(start + timedelta(days=n), hospital.timezone, hours, changes, specialty.slot_minutes,
                      booked=booked, now=now) for n in range(7)])
            for specialist, hours, changes, booked in known]

    if week is not None:
        start = min(max(week_of(week), current), last)
        shown = rows(start)
    else:
        start, shown = current, rows(current)
        for ahead in range(1, LOOKAHEAD_WEEKS):
            if any(day.free for row in shown for day in row.days):
                break
            later = rows(current + timedelta(weeks=ahead))
            if any(day.free for row in later for day in row.days):
                start, shown = current + timedelta(weeks=ahead), later
                break
    shown.sort(key=lambda row: not row.asked_for)  # the one asked for first; else by id, as read
    return BookingWeek(hospital, specialty, start, today, shown,
                       earlier=start - timedelta(weeks=1) if start > current else None,
                       later=start + timedelta(weeks=1) if start < last else None)


async def _bookable(session: AsyncSession, referral: Referral, specialist_id: int, starts_at: datetime) -> Slot:
    """The slot, if ``specialist_id`` is a specialist of the receiving hospital in the referral's
    specialty and ``starts_at`` is the start of one of their future slots; else 422 naming the field."""
    specialist = await session.get(User, specialist_id)
    if specialist is None or specialist.role is not Role.SPECIALIST or not specialist.is_active \
            or specialist.hospital_id != referral.target_hospital_id \
            or specialist.specialty_id != referral.specialty_id:
        raise ValidationFailed({"specialist_id": N_("not a specialist of the receiving hospital in this specialty")})
    if not can_be_booked(specialist.role, specialist.licence_verified):
        raise Conflict(N_("This specialist's licence has not been verified by an administrator yet, so they cannot "
                          "be booked. Choose another specialist."), code="specialist-unverified")
    hospital = await session.get(Hospital, specialist.hospital_id)
    specialty = await session.get(Specialty, referral.specialty_id)
    assert hospital is not None and specialty is not None
    if starts_at <= utcnow():
        raise ValidationFailed({"starts_at": N_("that time has passed")})
    hours, changes = await _hours(session, specialist_id)
    slot = is_slot(starts_at, hospital.timezone, hours, changes, specialty.slot_minutes)
    if slot is None:
        raise ValidationFailed({"starts_at": N_("not the start of one of this specialist's slots")})
    return slot


async def book(session: AsyncSession, who: Principal, referral_id: int, specialist_id: int,
               starts_at: datetime, *, reply: idempotency.Reply[Appointment] | None = None) -> Appointment:
    """Book a slot for an accepted referral: appointment, consultation and the referral's new state at once
    (with the request's idempotency key and answer, given a ``reply``)."""
    await idempotency.claim(session, reply)
    referral, appointment = await load_visible(session, who, referral_id)
    assert referral.id is not None
    slot = await _bookable(session, referral, specialist_id, starts_at)
    patient = await session.get(Patient, referral.patient_id)
    assert patient is not None
    consultation = Consultation(title=referral.reason[:200], hospital_id=referral.referring_hospital_id,
                                patient_id=referral.patient_id, planned_start=slot.starts_at, planned_end=slot.ends_at,
                                created_by=who.user_id)
    session.add(consultation)
    await session.flush()
    assert consultation.id is not None
    session.add_all([ConsultationParticipant(consultation_id=consultation.id, user_id=user_id)
                     for user_id in sorted({referral.referring_doctor_id, specialist_id})])
    booked = Appointment(referral_id=referral.id, specialist_id=specialist_id, starts_at=slot.starts_at,
                         ends_at=slot.ends_at, consultation_id=consultation.id, booked_by=who.user_id)
    session.add(booked)
    await _claim_slot(session)
    audit.with_commit(session, _booking_entry(who, "appointment.booked", booked))
    await apply(session, who, referral, appointment, Request(ReferralAction.SCHEDULE),
                changes={"consultation_id": consultation.id}, also_notify=specialist_id,
                notice=Notice.booked(referral.id, slot.starts_at))
    await idempotency.commit(session, reply, booked)
    return booked


async def move(session: AsyncSession, who: Principal, referral_id: int, specialist_id: int, starts_at: datetime,
               reason: str, *, rooms: RoomNotifier | None = None) -> Appointment:
    """Reschedule a scheduled referral's appointment (the receiving coordinators), with a reason. A specialist
    the appointment moves away from is no longer a participant: if they are in its room, they leave it now."""
    referral, appointment = await load_visible(session, who, referral_id)
    if not may(actor(who), facts_of(referral, appointment), ReferralAction.SCHEDULE):  # whoever books, moves
        raise Forbidden(N_("Only the receiving hospital's coordinators reschedule an appointment."))
    if referral.state is not ReferralState.SCHEDULED or appointment is None:
        raise Conflict(f"A referral that is {referral.state.value} has no appointment to move.",
                       code="illegal-transition")
    if not reason.strip():
        raise ValidationFailed({"reason": N_("give a reason, for both parties")})
    slot = await _bookable(session, referral, specialist_id, starts_at)
    appointment.status, appointment.cancel_reason = AppointmentStatus.CANCELLED, f"rescheduled: {reason.strip()}"
    session.add(appointment)
    await session.flush()  # the old slot is free before the new one is taken (it may be the same specialist)
    moved = Appointment(referral_id=referral_id, specialist_id=specialist_id, starts_at=slot.starts_at,
                        ends_at=slot.ends_at, consultation_id=appointment.consultation_id, booked_by=who.user_id)
    session.add(moved)
    await _claim_slot(session)
    if appointment.consultation_id is not None:
        consultation = await session.get(Consultation, appointment.consultation_id)
        assert consultation is not None
        consultation.planned_start, consultation.planned_end = slot.starts_at, slot.ends_at
        session.add(consultation)
        if specialist_id != appointment.specialist_id:
            await session.exec(sa.delete(ConsultationParticipant).where(  # type: ignore[call-overload]
                col(ConsultationParticipant.consultation_id) == consultation.id,
                col(ConsultationParticipant.user_id) == appointment.specialist_id))
            session.add(ConsultationParticipant(consultation_id=consultation.id, user_id=specialist_id))
    recipients = {referral.referring_doctor_id, specialist_id, appointment.specialist_id} - {who.user_id}
    notice = Notice.moved(referral_id, slot.starts_at, reason)
    for user_id in sorted(recipients):
        session.add(notice.to(user_id))
    audit.with_commit(session, _booking_entry(who, "appointment.moved", moved))
    await session.commit()
    if rooms is not None and appointment.consultation_id is not None and specialist_id != appointment.specialist_id:
        await rooms.tell(appointment.consultation_id, Expelling(identity=f"user:{appointment.specialist_id}",
                                                                reason="not-a-participant"))
    return moved


def _booking_entry(who: Principal, action: str, appointment: Appointment) -> audit.Entry:
    return audit.Entry(f"user:{who.user_id}", action, appointment.consultation_id,
                       f"referral:{appointment.referral_id}",
                       {"appointment": appointment.id, "starts_at": appointment.starts_at.isoformat()})


async def _claim_slot(session: AsyncSession) -> None:
    """Write the new appointment now, before anything else: the slot's unique index refuses it here if
    another booking won (PostgreSQL waits for a racing insert to commit, then refuses)."""
    try:
        await session.flush()
    except sa.exc.IntegrityError:
        await session.rollback()
        raise Conflict(N_("That slot was booked by someone else a moment ago; choose another."),
                       code="slot-taken") from None


def search_window(start: date, days: int) -> list[date]:
    if not 1 <= days <= SEARCH_DAYS_MAX:
        raise ValidationFailed({"days": f"from 1 to {SEARCH_DAYS_MAX}"})
    return [start + timedelta(days=n) for n in range(days)]
