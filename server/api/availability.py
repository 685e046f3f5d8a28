"""REST: a specialist's weekly hours and one-off exceptions, in their hospital's time zone. The
specialist and their hospital's coordinators edit them; booked appointments are never moved by it."""

from __future__ import annotations

import re
from datetime import date

import pydantic
import sqlalchemy as sa
from aiohttp import web
from sqlmodel import col, select

from ..appkeys import DATABASE
from ..audit import trail as audit
from ..errors import N_, NotFound, ValidationFailed
from ..http import json_response, parse_body, path_id
from ..identity.auth import caller
from ..models import Availability, AvailabilityException, Hospital, Role, User
from ..openapi import accepts
from ..permissions import can_edit_hours, require

routes = web.RouteTableDef()
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


async def _editable(request: web.Request) -> User:
    """The specialist named in the path, if the caller is them or a coordinator of their hospital."""
    async with request.app[DATABASE].session() as session:
        specialist = await session.get(User, path_id(request, "specialist_id"))
    if specialist is None or specialist.role is not Role.SPECIALIST:
        raise NotFound(N_("There is no such specialist."))
    who = caller(request).principal
    assert specialist.id is not None
    require(can_edit_hours(who, specialist.id, specialist.hospital_id),
            N_("Only the specialist and their hospital's coordinators change their hours."))
    return specialist


async def _answer(request: web.Request, specialist: User) -> web.Response:
    async with request.app[DATABASE].session() as session:
        weekly = (await session.exec(select(Availability).where(Availability.specialist_id == specialist.id)
                                     .order_by(col(Availability.weekday), col(Availability.start_minute)))).all()
        changes = (await session.exec(select(AvailabilityException).where(
            AvailabilityException.specialist_id == specialist.id).order_by(col(AvailabilityException.day)))).all()
        hospital = await session.get(Hospital, specialist.hospital_id)
    assert hospital is not None
    return json_response({
        "specialist_id": specialist.id, "timezone": hospital.timezone,
        "hours": [{"weekday": h.weekday, "start": _clock(h.start_minute), "end": _clock(h.end_minute)} for h in weekly],
        "exceptions": [{"id": c.id, "day": c.day.isoformat(), "start": _clock(c.start_minute),
                        "end": _clock(c.end_minute), "available": c.available, "note": c.note} for c in changes],
    })


@routes.get("/api/specialists/{specialist_id}/availability")
async def get_availability(request: web.Request) -> web.Response:
    return await _answer(request, await _editable(request))


@routes.put("/api/specialists/{specialist_id}/availability")
@accepts(WeeklyHours)
async def set_weekly_hours(request: web.Request) -> web.Response:
    """Replace the weekly hours (periods of one weekday may not overlap)."""
    specialist = await _editable(request)
    body = await parse_body(request, WeeklyHours)
    by_day = sorted(body.hours, key=lambda p: (p.weekday, _minutes(p.start)))
    for earlier, later in zip(by_day, by_day[1:], strict=False):
        if earlier.weekday == later.weekday and _minutes(later.start) < _minutes(earlier.end):
            raise ValidationFailed({"hours": f"periods overlap on weekday {later.weekday}"})
    async with request.app[DATABASE].session() as session:
        await session.exec(sa.delete(Availability).where(  # type: ignore[call-overload]
            col(Availability.specialist_id) == specialist.id))
        session.add_all([Availability(specialist_id=specialist.id, weekday=p.weekday, start_minute=_minutes(p.start),
                                      end_minute=_minutes(p.end)) for p in by_day])
        audit.with_commit(session, audit.Entry(f"user:{caller(request).user.id}", "availability.set",
                                               subject=f"user:{specialist.id}", detail={"periods": len(by_day)}))
        await session.commit()  # one transaction: the old hours and the new never mix
    return await _answer(request, specialist)


@routes.post("/api/specialists/{specialist_id}/exceptions")
@accepts(NewException)
async def add_exception(request: web.Request) -> web.Response:
    """Time off or extra hours on one local day."""
    specialist = await _editable(request)
    body = await parse_body(request, NewException)
    async with request.app[DATABASE].session() as session:
        session.add(AvailabilityException(specialist_id=specialist.id, day=body.day, start_minute=_minutes(body.start),
                                          end_minute=_minutes(body.end), available=body.available, note=body.note))
        audit.with_commit(session, audit.Entry(f"user:{caller(request).user.id}", "availability.exception",
                                               subject=f"user:{specialist.id}",
                                               detail={"day": body.day.isoformat(), "available": body.available}))
        await session.commit()
    response = await _answer(request, specialist)
    response.set_status(201)
    return response


@routes.delete("/api/specialists/{specialist_id}/exceptions/{exception_id}")
async def remove_exception(request: web.Request) -> web.Response:
    specialist = await _editable(request)
    async with request.app[DATABASE].session() as session:
        found = await session.get(AvailabilityException, path_id(request, "exception_id"))
        if found is None or found.specialist_id != specialist.id:
            raise NotFound(N_("There is no such exception."))
        await session.delete(found)
        audit.with_commit(session, audit.Entry(f"user:{caller(request).user.id}", "availability.exception_removed",
                                               subject=f"user:{specialist.id}", detail={"day": found.day.isoformat()}))
        await session.commit()
    return await _answer(request, specialist)
