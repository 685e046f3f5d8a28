"""A specialist's weekly clinic hours and one-off exceptions, in their hospital's time zone: showing and
editing them. The specialist and their hospital's coordinators edit them; booked appointments are never
moved by it (``slots.py`` reads these hours to offer free slots)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pydantic
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import N_, NotFound, ValidationFailed
from ..models import Availability, AvailabilityException, Hospital, Role, User
from ..outputs import Out
from ..permissions import Principal, can_edit_hours, keeps_clinic_hours, require

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Period(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    start: str = pydantic.Field(pattern=_CLOCK.pattern, description="local time, HH:MM")
    end: str = pydantic.Field(pattern=_CLOCK.pattern, description="local time, HH:MM (24:00 for midnight)")

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> Period:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError(N_("The start must come before the end."))
        return self


class WeeklyPeriod(Period):
    weekday: int = pydantic.Field(ge=0, le=6, description="0 is Monday")


class WeeklyHours(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    hours: list[WeeklyPeriod] = pydantic.Field(max_length=70)


MAX_TIME_OFF_DAYS = 92


class TimeOff(pydantic.BaseModel):
    """Whole days off, from ``first_day`` to ``last_day`` (the same day if left out), in the hospital's zone."""

    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_day: date
    last_day: date | None = None
    note: str = pydantic.Field(default="", max_length=200)

    @pydantic.field_validator("last_day")
    @classmethod
    def _after_first(cls, last: date | None, info: pydantic.ValidationInfo) -> date | None:
        first = info.data.get("first_day")
        if last is None or first is None:
            return last
        if last < first:
            raise ValueError(N_("The last day cannot come before the first."))
        if (last - first).days >= MAX_TIME_OFF_DAYS:
            raise ValueError(N_("Enter at most 92 days of time off at once."))
        return last


class NewException(Period):
    day: date
    available: bool = False  # false: time off; true: extra hours
    note: str = pydantic.Field(default="", max_length=200)
    start: str = pydantic.Field(default="00:00", pattern=_CLOCK.pattern)
    end: str = pydantic.Field(default="24:00", pattern=_CLOCK.pattern)


class HoursShown(Out):
    """A weekly period: ``weekday`` 0 (Monday) to 6, ``start`` and ``end`` local HH:MM."""

    weekday: int
    start: str
    end: str


class ExceptionShown(Out):
    """A one-off change on one local day: time off (``available`` false) or extra hours, HH:MM."""

    id: int
    day: date
    start: str
    end: str
    available: bool
    note: str


class AvailabilityShown(Out):
    """A specialist's weekly hours and exceptions, as local HH:MM in their hospital's ``timezone``."""

    specialist_id: int
    timezone: str
    hours: list[HoursShown]
    exceptions: list[ExceptionShown]


class SpecialistShown(Out):
    id: int
    display_name: str
    hospital_id: int


class SpecialistList(Out):
    """The specialists whose clinic hours the caller keeps."""

    specialists: list[SpecialistShown]


@dataclass(frozen=True)
class SpecialistHours:
    """A specialist's hours as they stand, in their hospital's zone."""

    specialist_id: int
    name: str
    timezone: str
    weekly: list[Availability]
    exceptions: list[AvailabilityException]

    def shown(self) -> AvailabilityShown:
        return AvailabilityShown(
            specialist_id=self.specialist_id, timezone=self.timezone,
            hours=[HoursShown(weekday=h.weekday, start=_clock(h.start_minute), end=_clock(h.end_minute))
                   for h in self.weekly],
            exceptions=[ExceptionShown(id=c.id, day=c.day, start=_clock(c.start_minute), end=_clock(c.end_minute),
                                       available=c.available, note=c.note)
                        for c in self.exceptions if c.id is not None])

    def to_json(self) -> dict[str, Any]:
        return self.shown().model_dump(mode="json")


async def _editable(session: AsyncSession, who: Principal, specialist_id: int) -> User:
    """The specialist, if the caller is them or a coordinator of their hospital: else 404 or 403."""
    specialist = await session.get(User, specialist_id)
    if specialist is None or specialist.role is not Role.SPECIALIST:
        raise NotFound(N_("There is no such specialist."))
    assert specialist.id is not None
    require(can_edit_hours(who, specialist.id, specialist.hospital_id),
            N_("Only the specialist and their hospital's coordinators change their hours."))
    return specialist


async def _standing(session: AsyncSession, specialist: User) -> SpecialistHours:
    assert specialist.id is not None
    weekly = (await session.exec(select(Availability).where(Availability.specialist_id == specialist.id)
                                 .order_by(col(Availability.weekday), col(Availability.start_minute)))).all()
    changes = (await session.exec(select(AvailabilityException).where(
        AvailabilityException.specialist_id == specialist.id).order_by(col(AvailabilityException.day)))).all()
    hospital = await session.get(Hospital, specialist.hospital_id)
    assert hospital is not None
    return SpecialistHours(specialist.id, specialist.display_name, hospital.timezone, list(weekly), list(changes))


async def show(session: AsyncSession, who: Principal, specialist_id: int) -> SpecialistHours:
    """The specialist's hours, to those who may edit them."""
    return await _standing(session, await _editable(session, who, specialist_id))


async def set_weekly(session: AsyncSession, who: Principal, specialist_id: int, body: WeeklyHours) -> SpecialistHours:
    """Replace the weekly hours (periods of one weekday may not overlap), audited in the same transaction."""
    specialist = await _editable(session, who, specialist_id)
    order = sorted(range(len(body.hours)), key=lambda i: (body.hours[i].weekday, _minutes(body.hours[i].start)))
    for earlier, later in zip(order, order[1:], strict=False):
        first, second = body.hours[earlier], body.hours[later]
        if first.weekday == second.weekday and _minutes(second.start) < _minutes(first.end):
            # named by its place in the request, as pydantic names a period it refuses
            raise ValidationFailed({f"hours.{later}": N_("This period overlaps another one on the same day.")})
    by_day = [body.hours[i] for i in order]
    await session.exec(sa.delete(Availability).where(  # type: ignore[call-overload]
        col(Availability.specialist_id) == specialist_id))
    session.add_all([Availability(specialist_id=specialist_id, weekday=p.weekday, start_minute=_minutes(p.start),
                                  end_minute=_minutes(p.end)) for p in by_day])
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "availability.set", subject=f"user:{specialist_id}",
                                           detail={"periods": len(by_day)}))
    await session.commit()  # one transaction: the old hours and the new never mix
    return await _standing(session, specialist)


async def add_exception(session: AsyncSession, who: Principal, specialist_id: int,
                        body: NewException) -> SpecialistHours:
    """Time off or extra hours on one local day, audited in the same transaction."""
    specialist = await _editable(session, who, specialist_id)
    session.add(AvailabilityException(specialist_id=specialist_id, day=body.day, start_minute=_minutes(body.start),
                                      end_minute=_minutes(body.end), available=body.available, note=body.note))
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "availability.exception",
                                           subject=f"user:{specialist_id}",
                                           detail={"day": body.day.isoformat(), "available": body.available}))
    await session.commit()
    return await _standing(session, specialist)


async def add_time_off(session: AsyncSession, who: Principal, specialist_id: int, body: TimeOff) -> SpecialistHours:
    """Whole days off, one exception a day, all in one transaction with one audit entry."""
    specialist = await _editable(session, who, specialist_id)
    last = body.last_day or body.first_day
    days = [body.first_day + timedelta(days=n) for n in range((last - body.first_day).days + 1)]
    session.add_all([AvailabilityException(specialist_id=specialist_id, day=day, available=False, note=body.note)
                     for day in days])
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "availability.time_off",
                                           subject=f"user:{specialist_id}",
                                           detail={"first_day": body.first_day.isoformat(),
                                                   "last_day": last.isoformat()}))
    await session.commit()
    return await _standing(session, specialist)


async def remove_exception(session: AsyncSession, who: Principal, specialist_id: int,
                           exception_id: int) -> SpecialistHours:
    """Take back one exception of this specialist's, audited in the same transaction."""
    return await remove_exceptions(session, who, specialist_id, [exception_id])


async def remove_exceptions(session: AsyncSession, who: Principal, specialist_id: int,
                            exception_ids: list[int]) -> SpecialistHours:
    """Take back exceptions of this specialist's (a run of days off at once), all or none, audited in the
    same transaction."""
    specialist = await _editable(session, who, specialist_id)
    found = (await session.exec(select(AvailabilityException).where(
        col(AvailabilityException.id).in_(exception_ids),
        AvailabilityException.specialist_id == specialist_id))).all()
    if not exception_ids or len(found) != len(set(exception_ids)):
        raise NotFound(N_("There is no such exception."))
    for row in found:
        await session.delete(row)
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "availability.exception_removed",
                                           subject=f"user:{specialist_id}",
                                           detail={"days": sorted(row.day.isoformat() for row in found)}))
    await session.commit()
    return await _standing(session, specialist)


async def editable_specialists(session: AsyncSession, who: Principal) -> list[User]:
    """The specialists whose hours the caller keeps: themselves, or their hospital's (a coordinator)."""
    require(keeps_clinic_hours(who), N_("Only specialists and coordinators keep clinic hours."))
    candidates = (await session.exec(select(User).where(
        User.role == Role.SPECIALIST, User.hospital_id == who.hospital_id, User.is_active == True)  # noqa: E712
        .order_by(col(User.display_name)))).all()
    return [u for u in candidates if u.id is not None and can_edit_hours(who, u.id, u.hospital_id)]


@dataclass(frozen=True)
class DaysOff:
    """A run of consecutive whole days off with the same note, as people think of it ("leave, 3 to 7 May")."""

    first_day: date
    last_day: date
    note: str
    ids: tuple[int, ...]


def days_off(exceptions: list[AvailabilityException]) -> tuple[list[DaysOff], list[AvailabilityException]]:
    """The exceptions as runs of whole days off, and the rest (part days, extra hours) one by one."""
    runs: list[DaysOff] = []
    others: list[AvailabilityException] = []
    for row in sorted(exceptions, key=lambda r: (r.day, r.id or 0)):
        whole = not row.available and row.start_minute == 0 and row.end_minute == 24 * 60
        if not whole or row.id is None:
            others.append(row)
            continue
        last = runs[-1] if runs else None
        if last is not None and last.note == row.note and row.day - last.last_day <= timedelta(days=1):
            runs[-1] = DaysOff(last.first_day, max(last.last_day, row.day), last.note, (*last.ids, row.id))
        else:
            runs.append(DaysOff(row.day, row.day, row.note, (row.id,)))
    return runs, others
