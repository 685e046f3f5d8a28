"""A specialist's weekly clinic hours and one-off exceptions, in their hospital's time zone: showing and
editing them. The specialist and their hospital's coordinators edit them; booked appointments are never
moved by it (``slots.py`` reads these hours to offer free slots)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pydantic
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import N_, NotFound, ValidationFailed
from ..models import Availability, AvailabilityException, Hospital, Role, User
from ..permissions import Principal, can_edit_hours, require

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
            raise ValueError("start must come before end")
        return self


class WeeklyPeriod(Period):
    weekday: int = pydantic.Field(ge=0, le=6, description="0 is Monday")


class WeeklyHours(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    hours: list[WeeklyPeriod] = pydantic.Field(max_length=70)


class NewException(Period):
    day: date
    available: bool = False  # false: time off; true: extra hours
    note: str = pydantic.Field(default="", max_length=200)
    start: str = pydantic.Field(default="00:00", pattern=_CLOCK.pattern)
    end: str = pydantic.Field(default="24:00", pattern=_CLOCK.pattern)


@dataclass(frozen=True)
class SpecialistHours:
    """A specialist's hours as they stand, in their hospital's zone."""

    specialist_id: int
    timezone: str
    weekly: list[Availability]
    exceptions: list[AvailabilityException]

    def to_json(self) -> dict[str, Any]:
        return {
            "specialist_id": self.specialist_id, "timezone": self.timezone,
            "hours": [{"weekday": h.weekday, "start": _clock(h.start_minute), "end": _clock(h.end_minute)}
                      for h in self.weekly],
            "exceptions": [{"id": c.id, "day": c.day.isoformat(), "start": _clock(c.start_minute),
                            "end": _clock(c.end_minute), "available": c.available, "note": c.note}
                           for c in self.exceptions],
        }


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
    return SpecialistHours(specialist.id, hospital.timezone, list(weekly), list(changes))


async def show(session: AsyncSession, who: Principal, specialist_id: int) -> SpecialistHours:
    """The specialist's hours, to those who may edit them."""
    return await _standing(session, await _editable(session, who, specialist_id))


async def set_weekly(session: AsyncSession, who: Principal, specialist_id: int, body: WeeklyHours) -> SpecialistHours:
    """Replace the weekly hours (periods of one weekday may not overlap), audited in the same transaction."""
    specialist = await _editable(session, who, specialist_id)
    by_day = sorted(body.hours, key=lambda p: (p.weekday, _minutes(p.start)))
    for earlier, later in zip(by_day, by_day[1:], strict=False):
        if earlier.weekday == later.weekday and _minutes(later.start) < _minutes(earlier.end):
            raise ValidationFailed({"hours": f"periods overlap on weekday {later.weekday}"})
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


async def remove_exception(session: AsyncSession, who: Principal, specialist_id: int,
                           exception_id: int) -> SpecialistHours:
    """Take back one exception of this specialist's, audited in the same transaction."""
    specialist = await _editable(session, who, specialist_id)
    found = await session.get(AvailabilityException, exception_id)
    if found is None or found.specialist_id != specialist_id:
        raise NotFound(N_("There is no such exception."))
    await session.delete(found)
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "availability.exception_removed",
                                           subject=f"user:{specialist_id}", detail={"day": found.day.isoformat()}))
    await session.commit()
    return await _standing(session, specialist)
