"""A node's role (TELEMED_NODE_ROLE) and relay limit (TELEMED_RELAY_LIMIT), as a real server shows them. Where
relays actually go across nodes is tests/faults/test_relay_placement.py."""

from __future__ import annotations

import dataclasses

import pytest

from server.app import create_app
from server.devprocs import RedisServer
from server.errors import SettingsError
from server.settings import Settings

from ..conftest import _start


def test_a_media_node_needs_redis(settings: Settings) -> None:
    """Guards a media node started alone: it could never be handed a relay, so it refuses to start and says
    which setting is missing."""
    with pytest.raises(SettingsError, match="TELEMED_REDIS_URL"):
        create_app(dataclasses.replace(settings, node_role="media"))


async def test_a_media_node_serves_its_probes_and_no_page_or_api(settings: Settings,
                                                                 redis_server: RedisServer) -> None:
    """Guards what a media node exposes: /healthz and /readyz (with its relay limit) answer; pages, the API
    and signaling do not exist there, so no user reaches it by mistake."""
    client = await _start(dataclasses.replace(settings, node_role="media", redis_url=redis_server.url,
                                              relay_limit=20))
    try:
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        assert ready.status == 200, await ready.text()
        assert (await ready.json())["relays"] == {"rooms": 0, "streams": 0, "limit": 20}
        for path in ("/login", "/api/consultations", "/api/consultations/1/signaling", "/static/css/app.css"):
            assert (await client.get(path, allow_redirects=False)).status == 404, path
    finally:
        await client.close()


async def test_a_node_s_readyz_states_its_relay_limit(settings: Settings) -> None:
    """Guards /readyz's ``limit``: the configured TELEMED_RELAY_LIMIT, and ready while the node runs no more."""
    client = await _start(dataclasses.replace(settings, relay_limit=0))
    try:
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["relays"] == {"rooms": 0, "streams": 0, "limit": 0}
    finally:
        await client.close()
