"""Health probes: liveness always, readiness only while the database answers."""

from __future__ import annotations

import dataclasses

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.db import Database
from server.devprocs import RedisServer
from server.settings import Settings

from ..conftest import _start


async def test_healthz_and_readyz(client: TestClient) -> None:
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"database": "ok"}


async def test_readyz_is_503_when_the_database_is_gone(settings: Settings) -> None:
    # Port 9 (discard) has nothing listening here: connections are refused at once.
    unreachable = Database("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    client = TestClient(TestServer(create_app(settings, database=unreachable), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        response = await client.get("/readyz")
        assert response.status == 503
        assert await response.json() == {"status": "not-ready", "checks": {"database": "unreachable"}}
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_readyz_follows_redis_down_and_back_up(settings: Settings, redis_server: RedisServer) -> None:
    """A node whose Redis goes away says so, and is ready again once Redis returns, with no restart."""
    client = await _start(dataclasses.replace(settings, redis_url=redis_server.url))
    try:
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["checks"] == {"database": "ok", "redis": "ok"}
        redis_server.stop()
        down = await client.get("/readyz")
        assert down.status == 503
        assert (await down.json())["checks"]["redis"] == "unreachable"
        redis_server.start()
        assert (await client.get("/readyz")).status == 200
    finally:
        await client.close()
