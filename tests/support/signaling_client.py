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


async def guest_token(client: TestClient, host: str = "dr.li", name: str = "张伟 Zhang Wei") -> str:
    """A guest link made by a host, traded for a room token, as the patient's browser does."""
    headers = await bearer(client, "", host)
    link = await client.post("/api/consultations/1/guest-links", json={"name": name}, headers=headers)
    assert link.status == 201, await link.text()
    guest = (await link.json())["url"].removeprefix("/visit/")
    response = await client.post("/api/guest/room-token", json={"guest": guest})
    assert response.status == 200, await response.text()
    return (await response.json())["token"]


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
    assert ws.close_code == code, f"closed with {ws.close_code}, expected {code}"


async def connect(client: TestClient | ClientSession, token: str, *, url: str = "",
                  resume: str | None = None) -> ClientWebSocketResponse:
    target = url or signaling_path()
    ws = await client.ws_connect(target)
    join: dict[str, Any] = {"type": "join", "protocol": PROTOCOL_VERSION, "token": token}
    if resume:
        join["resume"] = resume
    await ws.send_json(join)
    return ws
