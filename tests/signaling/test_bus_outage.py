"""A node that loses Redis says so, refuses joins with a clear error, and recovers by itself."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.devprocs import RedisServer
from server.settings import Settings

from ..conftest import _start
from ..support.signaling_client import bearer, connect, expect, expect_closed, guest_token, room_token


async def ready_status(client) -> int:  # type: ignore[no-untyped-def]
    return (await client.get("/readyz")).status


async def test_losing_redis_refuses_joins_then_recovers(settings: Settings, redis_server: RedisServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A node that loses Redis reports itself not ready (503), logs that the bus is unreachable, and refuses a join
    with error unavailable (saying to try again) and close 4503; once Redis is back, even empty, the node is ready
    again by itself and a new join reaches the participant already in the room."""
    client = await _start(dataclasses.replace(settings, redis_url=redis_server.url, presence_ttl=1.0))
    try:
        li = await connect(client, await room_token(client, "dr.li"))
        await expect(li, "joined")
        wang_token = await room_token(client, "dr.wang")  # minted while all is well; still valid later

        with caplog.at_level(logging.WARNING):
            redis_server.stop()
            assert await ready_status(client) == 503
            wang = await connect(client, wang_token)
            error = await expect(wang, "error")
            assert error["code"] == "unavailable" and "try again" in error["message"]
            await expect_closed(wang, 4503)
        assert "redis bus is unreachable" in caplog.text

        redis_server.start()  # same port, empty: Redis kept nothing on disk
        for _ in range(100):
            if await ready_status(client) == 200:
                break
            await asyncio.sleep(0.1)
        assert await ready_status(client) == 200
        wang = await connect(client, await room_token(client, "dr.wang"))
        joined = await expect(wang, "joined")  # the room's follower reconnected by itself
        assert (await expect(li, "participant-joined"))["participant"]["id"] == joined["self"]["id"]
        await li.close()
        await wang.close()
    finally:
        await client.close()


async def test_a_socket_closed_during_the_outage_is_not_forgotten(settings: Settings,
                                                                  redis_server: RedisServer) -> None:
    """Its disconnect is owed to the room and delivered once Redis is back: no ghost participant."""
    client = await _start(dataclasses.replace(settings, redis_url=redis_server.url, presence_ttl=1.0))
    try:
        li = await connect(client, await room_token(client, "dr.li"))
        await expect(li, "joined")
        wang = await connect(client, await room_token(client, "dr.wang"))
        wang_seat = (await expect(wang, "joined"))["self"]["id"]
        await expect(li, "participant-joined")

        redis_server.stop()
        await wang.close(code=4000)
        await asyncio.sleep(0.5)
        redis_server.start()
        reconnecting = await expect(li, "participant-reconnecting", within=15)
        assert reconnecting["participant_id"] == wang_seat
        await li.close()
    finally:
        await client.close()


async def test_a_room_in_progress_survives_redis_restarting_empty(settings: Settings,
                                                                 redis_server: RedisServer) -> None:
    """Redis restarted without its data (a failover, or no persistence): the nodes re-seed each room's log
    from their copies, so the two participants (one per node) still see each other and chat both ways,
    chat ids keep increasing, every line shown is stored, and a newcomer after the restart, through a third
    node that never followed the room (so it knows only what the re-seeded log says), sees them both."""
    shared = dataclasses.replace(settings, redis_url=redis_server.url, presence_ttl=2.0)
    a = await _start(dataclasses.replace(shared, node_id="node-a"))
    b = TestClient(TestServer(create_app(dataclasses.replace(shared, node_id="node-b")), host="127.0.0.1", port=0))
    c = TestClient(TestServer(create_app(dataclasses.replace(shared, node_id="node-c")), host="127.0.0.1", port=0))
    await b.start_server()
    await c.start_server()
    try:
        li = await connect(a, await room_token(a, "dr.li"))
        li_id = (await expect(li, "joined"))["self"]["id"]
        wang = await connect(b, await room_token(b, "dr.wang"))
        wang_id = (await expect(wang, "joined"))["self"]["id"]
        await expect(li, "participant-joined")
        await li.send_json({"type": "chat", "text": "before"})
        before = (await expect(wang, "chat"))["id"]
        await expect(li, "chat")

        redis_server.stop()
        redis_server.start()  # same port, empty

        await wang.send_json({"type": "chat", "text": "after, from b"})
        after = await expect(li, "chat", within=15)  # sent once node b is back on the bus
        assert after["text"] == "after, from b" and after["from"] == wang_id and after["id"] > before
        await expect(wang, "chat")
        await li.send_json({"type": "media-state", "muted": True, "camera_off": False, "screen_sharing": False})
        assert (await expect(wang, "media-state", within=10))["participant_id"] == li_id

        patient = await connect(c, await guest_token(a))
        waiting = await expect(patient, "lobby", within=10)
        assert (await expect(li, "lobby-update"))["waiting"][0]["id"] == waiting["self"]["id"]
        await li.send_json({"type": "admit", "participant_id": waiting["self"]["id"]})
        joined = await expect(patient, "joined", within=10)
        assert {p["id"] for p in joined["participants"]} == {li_id, wang_id}

        headers = await bearer(a, "", "dr.li")
        stored = (await (await a.get("/api/consultations/1/chat", headers=headers)).json())["chat"]
        assert [line["text"] for line in stored] == ["before", "after, from b"]
        for ws in (li, wang, patient):
            await ws.close()
    finally:
        await c.close()
        await b.close()
        await a.close()
