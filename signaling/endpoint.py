"""The WebSocket route: authorizes the caller for the consultation, then hands the socket to a connection loop."""

from __future__ import annotations

import secrets

from aiohttp import web

from server.api.consultations import load_authorized
from server.appkeys import HUB, SETTINGS
from server.auth import caller
from server.permissions import can_join_consultation

from .connection import SignalingConnection
from .messages import Participant

routes = web.RouteTableDef()

HEARTBEAT_SECONDS = 20.0


def room_id_for(consultation: int) -> str:
    return f"consultation:{consultation}"


@routes.get("/api/consultations/{consultation_id}/signaling")
async def signaling(request: web.Request) -> web.WebSocketResponse:
    """Refusals (401, 403, 404) are plain HTTP answers given before the upgrade: no socket is opened for them."""
    who = caller(request)
    view = await load_authorized(request, can_join_consultation)

    settings = request.app[SETTINGS]
    # Frames far beyond the message limit are cut off by aiohttp (close 1009); frames a little over
    # it reach parse(), which answers with a "too-large" error and keeps the connection.
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=4 * settings.signaling_max_message_bytes)
    await ws.prepare(request)
    participant = Participant(
        id=secrets.token_urlsafe(9), user_id=who.principal.user_id, name=who.user.display_name,
        role=who.user.role.value,
    )
    connection = SignalingConnection(ws, request.app[HUB], room_id_for(view.scope.consultation_id), participant,
                                     max_message_bytes=settings.signaling_max_message_bytes)
    await connection.run()
    return ws
