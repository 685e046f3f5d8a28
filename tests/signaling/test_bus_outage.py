"""A node that loses Redis says so, refuses joins with a clear error, and recovers by itself."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from server.devprocs import RedisServer
from server.settings import Settings

from ..conftest import _start
from ..support.signaling_client import connect, expect, expect_closed, room_token


async def ready_status(client) -> int:  # type: ignore[no-untyped-def]
    return (await client.get("/readyz")).status


async def test_losing_redis_refuses_joins_then_recovers(settings: Settings, redis_server: RedisServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
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
