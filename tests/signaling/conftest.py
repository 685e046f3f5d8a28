"""Signaling tests run on both buses: the in-process one and a real redis-server."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from server.settings import Settings

from ..conftest import _start


@pytest.fixture(params=["local-bus", "redis-bus"])
def room_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    fast = dataclasses.replace(settings, reconnect_grace=2.0, presence_ttl=2.0)
    if request.param == "local-bus":
        return fast
    # A prefix of its own, in case TELEMED_TEST_REDIS_URL points every test at one shared Redis.
    return dataclasses.replace(fast, redis_url=request.getfixturevalue("redis_url"),
                               redis_prefix=f"test-{secrets.token_hex(4)}")


@pytest.fixture
async def room_client(room_settings: Settings) -> AsyncIterator[TestClient]:
    """A real server on port 0 with the demo data, on one bus or the other."""
    client = await _start(room_settings)
    yield client
    await client.close()
