"""A referral's booking week: the receiving hospital's specialists in its specialty, a week of their slots on
the hospital's clock, free, booked or past; the current week unless it has nothing free; for coordinators only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from server.db import Database
from server.demo import seed_demo
from server.errors import Forbidden
from server.models import (
    Appointment,
    AvailabilityException,
    Partnership,
    Patient,
    Referral,
    ReferralState,
    Specialty,
    Urgency,
    User,
)
from server.permissions import Principal
from server.scheduling import service as scheduling
from server.scheduling.slots import SlotStatus, week_of

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def database(tmp_path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await database.upgrade()
    await seed_demo(database)
    yield database
    await database.close()


async def _users(database: Database) -> dict[str, User]:
    async with database.session() as session:
        return {u.username: u for u in (await session.exec(select(User))).all()}


def _who(user: User) -> Principal:
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


async def _accepted(database: Database, *, asked_for: User | None = None) -> int:
    """An accepted cardiology referral from dr.li to the provincial hospital, written straight to the database."""
    users = await _users(database)
    async with database.session() as session:
        cardiology = (await session.exec(select(Specialty).where(Specialty.code == "cardiology"))).one()
        patient = (await session.exec(select(Patient))).first()
        partnership = (await session.exec(select(Partnership))).one()
        assert patient is not None and cardiology.id is not None
        referral = Referral(patient_id=patient.id, referring_doctor_id=users["dr.li"].id,
                            referring_hospital_id=users["dr.li"].hospital_id, partnership_id=partnership.id,
                            specialty_id=cardiology.id, target_hospital_id=users["coord.zhao"].hospital_id,
                            target_specialist_id=asked_for.id if asked_for else None, urgency=Urgency.URGENT,
                            reason="Chest pain", state=ReferralState.ACCEPTED,
                            submitted_at=datetime.now(UTC))  # (sent: the receiving side sees it)
        session.add(referral)
        await session.commit()
        assert referral.id is not None
        return referral.id


async def test_the_week_lists_the_specialty_s_specialists_by_day_on_the_hospital_s_clock(database: Database) -> None:
    """The coordinator's booking week runs Monday to Sunday, never before this week; it lists only the specialty's
    specialists, the one asked for first, with each day's slots on the hospital's clock (08:00 in Shanghai is 00:00
    UTC; 16 on a Monday, none on Sunday), some free, a way to the next week, and a way back only when it opened after
    the current week."""
    users = await _users(database)
    referral = await _accepted(database, asked_for=users["dr.zhou"])
    async with database.session() as session:
        week = await scheduling.booking_week(session, _who(users["coord.zhao"]), referral, None)
    today = datetime.now(ZONE).date()
    assert week.start.weekday() == 0 and week.days[0] == week.start and len(week.days) == 7
    assert week.start >= week_of(today) and week.today == today
    # cardiology only (not dr.he, a neurologist), the one asked for first
    assert [r.specialist.username for r in week.rows] == ["dr.zhou", "dr.wang"]
    assert week.rows[0].asked_for and not week.rows[1].asked_for
    monday = week.rows[1].days[0]
    # demo hours: 08:00-12:00 and 14:00-18:00 local, Monday to Saturday, in 30-minute slots; Sunday none
    assert [s.starts_at.astimezone(ZONE).strftime("%H:%M") for s in monday.slots][:2] == ["08:00", "08:30"]
    assert len(monday.slots) == 16 and week.rows[1].days[6].slots == []
    assert monday.slots[0].starts_at.tzinfo is not None and monday.slots[0].starts_at.astimezone(UTC).hour == 0
    assert week.free > 0 and week.later == week.start + timedelta(weeks=1)
    # The current week, unless nothing in it is free any more (a Sunday: no hours): then the next, with a way
    # back to the current one and never before it.
    assert week.earlier == (None if week.start == week_of(today) else week_of(today))


async def test_a_booked_slot_is_shown_booked_and_past_slots_past(database: Database) -> None:
    """A booked slot of next week shows as booked, and that week links back to the one before; in the current week no
    slot that has already begun shows as free, only as past or booked."""
    users = await _users(database)
    referral = await _accepted(database)
    coordinator = _who(users["coord.zhao"])
    async with database.session() as session:
        later = await scheduling.booking_week(session, coordinator, referral, datetime.now(ZONE).date()
                                              + timedelta(weeks=1))
    free = next(s for s in later.rows[0].days[0].slots if s.status is SlotStatus.FREE)
    async with database.session() as session:
        session.add(Appointment(referral_id=referral, specialist_id=later.rows[0].specialist.id,
                                starts_at=free.starts_at, ends_at=free.ends_at, booked_by=coordinator.user_id))
        await session.commit()
        again = await scheduling.booking_week(session, coordinator, referral, later.start)
        current = await scheduling.booking_week(session, coordinator, referral, later.start - timedelta(weeks=1))
    shown = {s.starts_at: s.status for s in again.rows[0].days[0].slots}
    assert shown[free.starts_at] is SlotStatus.BOOKED and again.earlier == later.start - timedelta(weeks=1)
    now = datetime.now(UTC)
    statuses = {s.status for row in current.rows for day in row.days for s in day.slots if s.starts_at < now}
    assert statuses <= {SlotStatus.PAST, SlotStatus.BOOKED}


async def test_without_a_week_the_first_with_a_free_slot_is_shown(database: Database) -> None:
    """Both cardiologists off the whole of this week: the calendar opens on the next one, not on a week of
    nothing; asked for this week, it shows it, saying they took time off."""
    users = await _users(database)
    referral = await _accepted(database)
    monday = week_of(datetime.now(ZONE).date())
    async with database.session() as session:
        session.add_all([AvailabilityException(specialist_id=users[name].id, day=monday + timedelta(days=n))
                         for name in ("dr.wang", "dr.zhou") for n in range(7)])
        await session.commit()
        chosen = await scheduling.booking_week(session, _who(users["coord.zhao"]), referral, None)
        asked = await scheduling.booking_week(session, _who(users["coord.zhao"]), referral, monday)
    assert chosen.start == monday + timedelta(weeks=1) and chosen.free > 0
    assert asked.start == monday and asked.free == 0
    assert all(day.time_off and not day.slots for row in asked.rows for day in row.days)


async def test_a_week_is_kept_between_this_one_and_a_year_ahead(database: Database) -> None:
    """A week asked for before this one opens on this one, with no way further back; one asked for years ahead opens
    on the furthest week allowed, with no way further on."""
    users = await _users(database)
    referral = await _accepted(database)
    monday = week_of(datetime.now(ZONE).date())
    async with database.session() as session:
        past = await scheduling.booking_week(session, _who(users["coord.zhao"]), referral, monday - timedelta(weeks=5))
        far = await scheduling.booking_week(session, _who(users["coord.zhao"]), referral, monday + timedelta(weeks=400))
    assert past.start == monday and past.earlier is None
    assert far.start == monday + timedelta(weeks=scheduling.WEEKS_AHEAD_MAX) and far.later is None


@pytest.mark.parametrize("username", ["dr.li", "dr.wang"])
async def test_only_the_receiving_coordinators_get_the_booking_week(database: Database, username: str) -> None:
    """Each row: the referring county doctor, and even the specialist asked for, are refused the booking week:
    booking is the receiving coordinators' job."""
    users = await _users(database)
    referral = await _accepted(database, asked_for=users["dr.wang"])
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await scheduling.booking_week(session, _who(users[username]), referral, None)
