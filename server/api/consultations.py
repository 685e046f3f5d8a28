"""REST: the caller's consultations, one consultation, and creating one."""

from __future__ import annotations

from collections.abc import Callable

import pydantic
from aiohttp import web

from ..appkeys import DATABASE
from ..consultations import service as consultations
from ..consultations.chat import chat_lines
from ..errors import N_
from ..http import json_response, parse_body, path_id
from ..identity.auth import caller
from ..openapi import accepts
from ..parsing import Id
from ..permissions import ConsultationScope, Principal, can_create_consultation, can_view_consultation, require

routes = web.RouteTableDef()


class ConsultationCreate(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    title: str = pydantic.Field(min_length=1, max_length=200)
    planned_start: pydantic.AwareDatetime
    participant_ids: list[Id] = pydantic.Field(min_length=1, max_length=16)
    patient_id: Id | None = None


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
async def list_consultations(request: web.Request) -> web.Response:
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        views = await consultations.list_for(session, who)
    return json_response({"consultations": [v.to_json(with_patient=True) for v in views]})


@routes.post("/api/consultations")
@accepts(ConsultationCreate)
async def create_consultation(request: web.Request) -> web.Response:
    who = caller(request).principal
    require(can_create_consultation(who), N_("Only doctors, specialists and coordinators create consultations."))
    body = await parse_body(request, ConsultationCreate)
    async with request.app[DATABASE].session() as session:
        created = await consultations.create(
            session, who, title=body.title, planned_start=body.planned_start,
            participant_ids=body.participant_ids, patient_id=body.patient_id,
        )
        assert created.id is not None
        view = await consultations.load(session, created.id)
    return json_response(view.to_json(with_patient=True), status=201)


@routes.get("/api/consultations/{consultation_id}")
async def get_consultation(request: web.Request) -> web.Response:
    view = await load_authorized(request, can_view_consultation)
    return json_response(view.to_json(with_patient=True))


@routes.get("/api/consultations/{consultation_id}/chat")
async def consultation_chat(request: web.Request) -> web.Response:
    """The consultation's chat, as its participants saw it."""
    view = await load_authorized(request, can_view_consultation)
    assert view.consultation.id is not None
    async with request.app[DATABASE].session() as session:
        lines = await chat_lines(session, view.consultation.id)
    return json_response({"chat": [
        {"participant_id": line.participant_id, "user_id": line.user_id, "name": line.name, "text": line.text,
         "sent_at": line.sent_at.isoformat()} for line in lines]})
