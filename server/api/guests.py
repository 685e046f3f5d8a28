"""REST: clinicians create guest links; a guest trades its link for a room token."""

from __future__ import annotations

import time

import pydantic
from aiohttp import web

from signaling.endpoint import token_answer
from signaling.grants import GUEST, RoomClaims, room_id_for

from ..appkeys import DATABASE, KEYS, SETTINGS
from ..auth import public
from ..errors import N_, NotFound, Unauthenticated
from ..guests import GUEST_LINK_TTL, GuestPass, guest_link_token, verify_guest_link
from ..http import json_response, parse_body
from ..models import Consultation, ConsultationStatus
from ..permissions import can_join_consultation
from ..recordings import consent_on_record
from .consultations import load_authorized

routes = web.RouteTableDef()


class GuestLinkRequest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    name: str = pydantic.Field(min_length=1, max_length=100)


class GuestTokenRequest(pydantic.BaseModel):
    guest: str = pydantic.Field(min_length=1, max_length=4096)


@routes.post("/api/consultations/{consultation_id}/guest-links")
async def create_guest_link(request: web.Request) -> web.Response:
    """A participating clinician invites a named guest, who will wait in the lobby to be admitted."""
    view = await load_authorized(request, can_join_consultation)
    body = await parse_body(request, GuestLinkRequest)
    settings = request.app[SETTINGS]
    assert view.consultation.id is not None
    token = guest_link_token(request.app[KEYS], settings.jwt_issuer, view.consultation.id, body.name)
    return json_response({"url": f"/visit/{token}", "expires_at": int(time.time()) + GUEST_LINK_TTL}, status=201)


async def guest_pass(request: web.Request, token: str) -> tuple[GuestPass, Consultation]:
    """The guest link's pass, if the link is valid and its consultation still open."""
    settings = request.app[SETTINGS]
    visit = verify_guest_link(request.app[KEYS], settings.jwt_issuer, token)
    async with request.app[DATABASE].session() as session:
        consultation = await session.get(Consultation, visit.consultation_id)
    if consultation is None:
        raise NotFound(N_("This consultation no longer exists."))
    if consultation.status in (ConsultationStatus.COMPLETED, ConsultationStatus.CANCELLED):
        raise Unauthenticated(N_("This consultation has ended; the link no longer works."), code="link-closed")
    return visit, consultation


@routes.post("/api/guest/room-token")
@public
async def guest_room_token(request: web.Request) -> web.Response:
    body = await parse_body(request, GuestTokenRequest)
    visit, consultation = await guest_pass(request, body.guest)
    assert consultation.id is not None
    async with request.app[DATABASE].session() as session:
        consent_id = await consent_on_record(session, consultation.id, visit.identity)
    return token_answer(request, RoomClaims(
        identity=visit.identity, room=room_id_for(consultation.id), name=visit.name, role="patient",
        user_id=None, grants=GUEST, consent_id=consent_id))
