"""REST: a specialist's weekly hours and one-off exceptions, in their hospital's time zone
(``scheduling/hours.py`` decides who may edit them and keeps the audit trail)."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import DATABASE
from ..http import json_response, parse_body, path_id
from ..identity.auth import caller
from ..openapi import accepts, answers
from ..scheduling import hours
from ..scheduling.hours import NewException, TimeOff, WeeklyHours

routes = web.RouteTableDef()


def _specialist_id(request: web.Request) -> int:
    return path_id(request, "specialist_id")


@routes.get("/api/specialists")
@answers(hours.SpecialistList)
async def list_specialists(request: web.Request) -> web.Response:
    """The specialists whose clinic hours the caller keeps: a specialist themselves, a coordinator their
    hospital's; 403 for other roles."""
    async with request.app[DATABASE].session() as session:
        found = await hours.editable_specialists(session, caller(request).principal)
    return json_response(hours.SpecialistList(specialists=[
        hours.SpecialistShown(id=u.id, display_name=u.display_name, hospital_id=u.hospital_id)
        for u in found if u.id is not None]))


@routes.get("/api/specialists/{specialist_id}/availability")
@answers(hours.AvailabilityShown)
async def get_availability(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        shown = await hours.show(session, caller(request).principal, _specialist_id(request))
    return json_response(shown.shown())


@routes.put("/api/specialists/{specialist_id}/availability")
@answers(hours.AvailabilityShown, description="The hours, as they stand now.")
@accepts(WeeklyHours)
async def set_weekly_hours(request: web.Request) -> web.Response:
    """Replace the weekly hours (periods of one weekday may not overlap)."""
    body = await parse_body(request, WeeklyHours)
    async with request.app[DATABASE].session() as session:
        shown = await hours.set_weekly(session, caller(request).principal, _specialist_id(request), body)
    return json_response(shown.shown())


@routes.post("/api/specialists/{specialist_id}/exceptions")
@answers(hours.AvailabilityShown, status=201, description="The hours, with the exception.")
@accepts(NewException)
async def add_exception(request: web.Request) -> web.Response:
    """Time off or extra hours on one local day."""
    body = await parse_body(request, NewException)
    async with request.app[DATABASE].session() as session:
        shown = await hours.add_exception(session, caller(request).principal, _specialist_id(request), body)
    return json_response(shown.shown(), status=201)


@routes.delete("/api/specialists/{specialist_id}/exceptions/{exception_id}")
@answers(hours.AvailabilityShown, description="The hours, without the exception.")
async def remove_exception(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        shown = await hours.remove_exception(session, caller(request).principal, _specialist_id(request),
                                             path_id(request, "exception_id"))
    return json_response(shown.shown())


@routes.post("/api/specialists/{specialist_id}/time-off")
@answers(hours.AvailabilityShown, status=201, description="The hours, with the days off.")
@accepts(TimeOff)
async def add_time_off(request: web.Request) -> web.Response:
    """Whole days off from ``first_day`` to ``last_day`` (up to 92 days), one exception a day."""
    body = await parse_body(request, TimeOff)
    async with request.app[DATABASE].session() as session:
        shown = await hours.add_time_off(session, caller(request).principal, _specialist_id(request), body)
    return json_response(shown.shown(), status=201)
