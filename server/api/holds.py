"""REST: legal holds on a patient or a consultation, for administrators and auditors."""

from __future__ import annotations

from typing import Literal

import pydantic
from aiohttp import web

from ..appkeys import DATABASE
from ..http import json_response, parse_body, path_id
from ..identity.auth import caller
from ..openapi import accepts, answers, queries
from ..retention import holds
from ..retention.holds import PlaceHold, ReleaseHold

routes = web.RouteTableDef()


# The query of the legal holds' list. (No docstring: see reports.Icd10Query.)
class HoldQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    active: Literal["1", "true", "0", "false"] | None = pydantic.Field(
        default=None, description="1: the standing ones alone")


@routes.get("/api/holds")
@queries(HoldQuery)
@answers(holds.HoldList)
async def list_holds(request: web.Request) -> web.Response:
    """Legal holds, standing ones first, newest first; ``active=1`` for the standing ones alone."""
    async with request.app[DATABASE].session() as session:
        rows = await holds.list_all(session, caller(request).principal,
                                    active_only=request.query.get("active") in ("1", "true"))
    return json_response(holds.HoldList(holds=[holds.shown(h) for h in rows]))


@routes.post("/api/holds")
@answers(holds.HoldShown, status=201, description="The hold, placed.")
@accepts(PlaceHold)
async def place_hold(request: web.Request) -> web.Response:
    """Place a legal hold on a patient (``patient_id``) or a consultation (``consultation_id``), with a reason:
    their recordings and attachments are kept past their retention until it is released. Audited."""
    body = await parse_body(request, PlaceHold)
    async with request.app[DATABASE].session() as session:
        hold = await holds.place(session, caller(request).principal, body)
    return json_response(holds.shown(hold), status=201)


@routes.post("/api/holds/{hold_id}/release")
@answers(holds.HoldShown, description="The hold, released.")
@accepts(ReleaseHold)
async def release_hold(request: web.Request) -> web.Response:
    """Release a standing legal hold, with a reason (409 if it was released already); the next purge may
    delete what it kept. Audited."""
    body = await parse_body(request, ReleaseHold)
    async with request.app[DATABASE].session() as session:
        hold = await holds.release(session, caller(request).principal, path_id(request, "hold_id"), body)
    return json_response(holds.shown(hold))
