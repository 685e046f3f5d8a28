"""REST: the caller's consultations, one consultation, and creating one."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from ..appkeys import DATABASE, SETTINGS
from ..consent.rules import How
from ..consultations import chat
from ..consultations import service as consultations
from ..consultations.inputs import ConsultationSearch, NewConsultation
from ..http import json_response, locale_for, parse_body, parse_form, path_id
from ..identity.auth import caller
from ..openapi import accepts, answers, queries
from ..permissions import ConsultationScope, Principal, can_view_consultation

routes = web.RouteTableDef()


def consultation_id(request: web.Request) -> int:
    return path_id(request, "consultation_id")


async def load_authorized(
    request: web.Request, rule: Callable[[Principal, ConsultationScope], bool]
) -> consultations.ConsultationView:
    """The consultation named in the path, if ``rule`` lets the caller at it: else 400, 403 or 404."""
    return await authorize(request, consultation_id(request), rule)


async def authorize(
    request: web.Request, consultation: int, rule: Callable[[Principal, ConsultationScope], bool]
) -> consultations.ConsultationView:
    """The consultation, if ``rule`` lets the caller at it: else 403 or 404."""
    async with request.app[DATABASE].session() as session:
        return await consultations.visible(session, caller(request).principal, consultation, rule)


@routes.get("/api/consultations")
@queries(ConsultationSearch)
@answers(consultations.ConsultationPage)
async def list_consultations(request: web.Request) -> web.Response:
    """The consultations the caller may see, latest start first, 20 a page: ``q`` (a part of the patient's
    name or the title), ``status``, ``since`` and ``until`` (days, YYYY-MM-DD, on the clock of the caller's
    hospital, both included), ``page``; the same search as the /consultations page. 422 naming a parameter
    that is wrong; 403 for administrators and auditors."""
    who = caller(request).principal
    search = parse_form(request.query, ConsultationSearch)
    async with request.app[DATABASE].session() as session:
        found = await consultations.find(session, who, search, fallback=request.app[SETTINGS].default_timezone)
    return json_response(consultations.ConsultationPage(consultations=[v.shown() for v in found.items],
                                                        **found.meta()))


@routes.post("/api/consultations")
@answers(consultations.ConsultationShown, status=201, description="The consultation, set up.")
@accepts(NewConsultation)
async def create_consultation(request: web.Request) -> web.Response:
    """Set up a consultation at the caller's hospital with clinicians of it or of a partner hospital.

    The start must be in the future; ``duration_minutes`` sets its planned end (when its room closes
    follows from it). With clinicians of another hospital and a patient, ``sharing_consent: "verbal"``
    records the patient's consent to their record being shared with them (without it they see neither the
    patient nor the title). A 422 names each field that is wrong."""
    who = caller(request).principal
    body = await parse_body(request, NewConsultation)
    async with request.app[DATABASE].session() as session:
        created = await consultations.create(session, who, body, locale=locale_for(request),
                                             how=How.verbal(request, who.user_id))
        assert created.id is not None
        view = await consultations.load(session, created.id)
    return json_response(view.shown(), status=201)


@routes.get("/api/consultations/{consultation_id}")
@answers(consultations.ConsultationShown)
async def get_consultation(request: web.Request) -> web.Response:
    view = await load_authorized(request, can_view_consultation)
    return json_response(view.shown())


@routes.get("/api/consultations/{consultation_id}/chat")
@answers(chat.Chat)
async def consultation_chat(request: web.Request) -> web.Response:
    """The consultation's chat, as its participants saw it (withheld from the partner hospital without the
    patient's consent to sharing)."""
    async with request.app[DATABASE].session() as session:
        return json_response(await chat.read(session, caller(request).principal, consultation_id(request)))
