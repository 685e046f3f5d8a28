"""A test client for the signaling protocol: room tokens from the API, join, and typed waits for messages."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

from signaling.messages import PROTOCOL_VERSION

DEMO_PASSWORD = "telemed-demo"


def signaling_path(consultation: int = 1) -> str:
    return f"/api/consultations/{consultation}/signaling"


async def bearer(session: ClientSession | TestClient, base: str, username: str) -> dict[str, str]:
    response = await session.post(f"{base}/api/auth/login", json={"username": username, "password": DEMO_PASSWORD})
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


async def room_token(client: TestClient, username: str, consultation: int = 1) -> str:
    headers = await bearer(client, "", username)
    response = await client.post(f"/api/consultations/{consultation}/room-token", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["token"]


async def guest_token(client: TestClient, host: str = "dr.li") -> str:
    """The consultation's patient, invited by a host, consented to the video visit, with a room token."""
    from .visits import patient_room_token

    return await patient_room_token(client, host=host)


async def receive(ws: ClientWebSocketResponse, within: float = 5) -> dict[str, Any]:
    message = await ws.receive(timeout=within)
    assert message.type == WSMsgType.TEXT, f"expected a message, got {message.type} {message.extra}"
    return json.loads(message.data)


async def expect(ws: ClientWebSocketResponse, kind: str, within: float = 5) -> dict[str, Any]:
    """The next message, which must be of this type (pings are answered and skipped)."""
    while True:
        message = await receive(ws, within)
        if message["type"] == "ping":
            await ws.send_json({"type": "pong", "id": message.get("id")})
            continue
        assert message["type"] == kind, f"expected {kind}, got {message}"
        return message


async def expect_closed(ws: ClientWebSocketResponse, code: int, within: float = 5) -> None:
    while True:
        message = await ws.receive(timeout=within)
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            break
    # The close frame's own code: ws.close_code can read 1006 when the server drops the TCP connection
    # before the client's reply to the close frame goes out.
    got = message.data if message.type is WSMsgType.CLOSE else ws.close_code
    assert got == code, f"closed with {got}, expected {code}"


async def connect(client: TestClient | ClientSession, token: str, *, url: str = "",
                  resume: str | None = None) -> ClientWebSocketResponse:
    target = url or signaling_path()
    ws = await client.ws_connect(target)
    join: dict[str, Any] = {"type": "join", "protocol": PROTOCOL_VERSION, "token": token}
    if resume:
        join["resume"] = resume
    await ws.send_json(join)
    return ws
