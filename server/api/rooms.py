"""Routes for rooms: room tokens for participants and guests, and the WebSocket that joins with one."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web

from signaling.connection import Limits, SignalingConnection
from signaling.grants import Grants, RoomClaims, consultation_of_room, room_id_for

from ..appkeys import AUDIT, DATABASE, HUB, KEYS, METRICS, SETTINGS
from ..consent.records import patient_identity
from ..consultations.ice import ice_servers_for
from ..consultations.recordings import consent_on_record
from ..consultations.room_gate import RoomGate
from ..consultations.room_tokens import ROOM_TOKEN_TTL, clinician_grants, room_token
from ..consultations.room_window import RoomWindow
from ..http import json_response
from ..identity.auth import caller, public
from ..models import utcnow
from ..openapi import answers, answers_empty
from ..outputs import Out
from ..permissions import can_join_consultation
from .consultations import consultation_id, load_authorized

routes = web.RouteTableDef()


class RoomToken(Out):
    """A pass into a consultation's room (signaling/PROTOCOL.md): the token to send on ``signaling_path``'s
    WebSocket within ``expires_in`` seconds, what it grants, and the ICE servers (STUN, and TURN with
    credentials of their own) to connect through, with the ``ice_transport_policy`` to give the browser's
    RTCPeerConnection (``relay``: through TURN only)."""

    token: str
    room: str
    expires_in: int
    grants: Grants
    signaling_path: str
    ice_servers: list[dict[str, Any]]
    ice_transport_policy: Literal["all", "relay"]


def token_answer(request: web.Request, claims: RoomClaims) -> web.Response:
    settings = request.app[SETTINGS]
    return json_response(RoomToken(
        token=room_token(request.app[KEYS], settings.jwt_issuer, claims), room=claims.room,
        expires_in=ROOM_TOKEN_TTL, grants=claims.grants,
        signaling_path=f"/api/consultations/{consultation_of_room(claims.room)}/signaling",
        ice_servers=ice_servers_for(settings, claims.identity),
        ice_transport_policy=settings.ice_transport_policy))


@routes.post("/api/consultations/{consultation_id}/room-token")
@answers(RoomToken)
async def issue_room_token(request: web.Request) -> web.Response:
    """A participating clinician's pass into the room: hosts may admit, remove and record. A clinician whose
    licence is not verified yet comes in as a guest (``permissions.can_host``): they wait in the lobby for a
    host, and the answer's grants have no admit, record or moderate."""
    view = await load_authorized(request, can_join_consultation)
    RoomWindow.of(view.consultation, request.app[SETTINGS]).check(utcnow())
    user = caller(request).user
    assert view.consultation.id is not None and user.id is not None
    identity = f"user:{user.id}"
    patient = patient_identity(view.consultation.patient_id) if view.consultation.patient_id else None
    async with request.app[DATABASE].session() as session:
        consent_id = await consent_on_record(session, view.consultation.id, identity)
        patient_consent = await consent_on_record(session, view.consultation.id, patient) if patient else None
    return token_answer(request, RoomClaims(
        identity=identity, room=room_id_for(view.consultation.id), name=user.display_name,
        role=user.role.value, user_id=user.id, grants=clinician_grants(caller(request).principal),
        consent_id=consent_id, patient=patient,
        patient_consent_id=patient_consent, generation=user.session_generation))


@routes.get("/api/consultations/{consultation_id}/signaling")
@answers_empty(101, description="Switching to the WebSocket of signaling/PROTOCOL.md.")
@public
async def signaling(request: web.Request) -> web.WebSocketResponse:
    """Public at the HTTP level: the room token in the first message decides (browsers cannot set headers
    on a WebSocket, and guests have no session cookie). Refusals close with 4401 or 4403."""
    room_id = room_id_for(consultation_id(request))
    settings = request.app[SETTINGS]
    limits = Limits(max_message_bytes=settings.signaling_max_message_bytes,
                    ping_after=settings.heartbeat_interval, drop_after=settings.heartbeat_timeout,
                    join_within=settings.join_timeout)
    # Frames far beyond the message limit are cut off by aiohttp (close 1009); frames a little over
    # it reach parse(), which answers with a "too-large" error and keeps the connection.
    ws = web.WebSocketResponse(max_msg_size=4 * limits.max_message_bytes)
    await ws.prepare(request)
    database, consultation = request.app[DATABASE], consultation_id(request)

    gate = RoomGate(database, request.app[KEYS], settings.jwt_issuer, consultation, batcher=request.app[AUDIT])
    connection = SignalingConnection(ws, request.app[HUB], room_id, gate=gate, limits=limits,
                                     on_seated=gate.seated, on_handled=request.app[METRICS].signaling_handled)
    await connection.run()
    return ws
