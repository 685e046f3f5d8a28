"""The signaling WebSocket on a real server: authorization, relaying, and bad input that keeps the connection."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType, WSServerHandshakeError
from aiohttp.test_utils import TestClient

from server.appkeys import HUB
from server.settings import Settings

from ..conftest import _start, login

PATH = "/api/consultations/1/signaling"


async def receive(ws: ClientWebSocketResponse) -> dict[str, Any]:
    message = await ws.receive(timeout=5)
    assert message.type == WSMsgType.TEXT, f"expected a message, got {message.type} {message.extra}"
    return json.loads(message.data)


async def join(client: TestClient, username: str) -> tuple[ClientWebSocketResponse, dict[str, Any]]:
    ws = await client.ws_connect(PATH, headers=await login(client, username))
    await ws.send_json({"type": "join", "protocol": 1})
    joined = await receive(ws)
    assert joined["type"] == "joined", joined
    return ws, joined


async def test_two_clinicians_meet_and_exchange_negotiation(client: TestClient) -> None:
    li, li_joined = await join(client, "dr.li")
    assert li_joined["participants"] == []
    assert li_joined["self"]["name"] == "李明 Li Ming"

    wang, wang_joined = await join(client, "dr.wang")
    assert [p["id"] for p in wang_joined["participants"]] == [li_joined["self"]["id"]]
    announced = await receive(li)
    assert announced == {"type": "participant-joined", "participant": wang_joined["self"]}

    li_id, wang_id = li_joined["self"]["id"], wang_joined["self"]["id"]
    await wang.send_json({"type": "offer", "to": li_id, "sdp": "v=0 offer"})
    assert await receive(li) == {"type": "offer", "from": wang_id, "sdp": "v=0 offer"}
    await li.send_json({"type": "answer", "to": wang_id, "sdp": "v=0 answer"})
    assert await receive(wang) == {"type": "answer", "from": li_id, "sdp": "v=0 answer"}
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    for n in range(5):  # trickled candidates arrive in order
        await li.send_json({"type": "candidate", "to": wang_id, "candidate": {**candidate, "sdpMid": str(n)}})
    for n in range(5):
        assert (await receive(wang))["candidate"]["sdpMid"] == str(n)

    await wang.send_json({"type": "leave"})
    assert await receive(li) == {"type": "participant-left", "participant_id": wang_id}
    assert (await wang.receive(timeout=5)).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    await li.close()


async def test_a_dropped_socket_leaves_the_room(client: TestClient) -> None:
    li, _ = await join(client, "dr.li")
    wang, wang_joined = await join(client, "dr.wang")
    await receive(li)  # wang joined
    await wang.close()
    assert await receive(li) == {"type": "participant-left", "participant_id": wang_joined["self"]["id"]}
    await li.close()
    for _ in range(50):
        if client.app[HUB].room("consultation:1") is None:
            break
        await asyncio.sleep(0.02)
    assert client.app[HUB].room("consultation:1") is None, "an empty room is forgotten"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{broken", "malformed"),
        ('{"type": "warp"}', "unknown-type"),
        ('{"type": "offer", "to": "x"}', "malformed"),
        ('{"type": "offer", "to": "nobody", "sdp": "v=0"}', "unknown-participant"),
        ('{"type": "join"}', "already-joined"),
        ('{"type": "offer", "to": "x", "sdp": "' + "a" * 70_000 + '"}', "too-large"),
    ],
)
async def test_bad_messages_get_an_error_and_the_connection_stays(client: TestClient, payload: str,
                                                                  code: str) -> None:
    ws, _ = await join(client, "dr.li")
    await ws.send_str(payload)
    error = await receive(ws)
    assert error["type"] == "error" and error["code"] == code and error["message"]
    await ws.send_json({"type": "ping", "id": 9})
    assert await receive(ws) == {"type": "pong", "id": 9}
    await ws.close()


async def test_negotiation_before_joining_is_refused(client: TestClient) -> None:
    ws = await client.ws_connect(PATH, headers=await login(client, "dr.li"))
    await ws.send_json({"type": "offer", "to": "x", "sdp": "v=0"})
    assert (await receive(ws))["code"] == "not-joined"
    await ws.close()


async def test_unsupported_protocol_version_closes_with_4400(client: TestClient) -> None:
    ws = await client.ws_connect(PATH, headers=await login(client, "dr.li"))
    await ws.send_json({"type": "join", "protocol": 99})
    assert (await receive(ws))["code"] == "unsupported-version"
    assert (await ws.receive(timeout=5)).type == WSMsgType.CLOSE
    assert ws.close_code == 4400


async def test_huge_frame_closes_with_1009_and_the_server_lives_on(client: TestClient) -> None:
    ws, _ = await join(client, "dr.li")
    await ws.send_str("x" * (1024 * 1024))
    closing = await ws.receive(timeout=5)
    assert closing.type == WSMsgType.CLOSE
    assert ws.close_code == 1009
    again, _ = await join(client, "dr.li")
    await again.close()


@pytest.mark.parametrize(
    ("username", "path", "status"),
    [
        (None, PATH, 401),
        ("dr.chen", PATH, 403),
        ("coord.zhao", PATH, 403),  # may read the record, does not enter the room
        ("dr.li", "/api/consultations/404/signaling", 404),
    ],
)
async def test_refused_before_the_upgrade(client: TestClient, username: str | None, path: str, status: int) -> None:
    headers = await login(client, username) if username else {}
    with pytest.raises(WSServerHandshakeError) as caught:
        await client.ws_connect(path, headers=headers)
    assert caught.value.status == status


async def test_a_full_room_refuses_with_room_full_and_4409(settings: Settings) -> None:
    client = await _start(dataclasses.replace(settings, room_max_participants=1))
    try:
        first, _ = await join(client, "dr.li")
        second = await client.ws_connect(PATH, headers=await login(client, "dr.wang"))
        await second.send_json({"type": "join"})
        assert (await receive(second))["code"] == "room-full"
        assert (await second.receive(timeout=5)).type == WSMsgType.CLOSE
        assert second.close_code == 4409
        await first.send_json({"type": "ping"})
        assert (await receive(first))["type"] == "pong", "the first participant is undisturbed"
        await first.close()
    finally:
        await client.close()
