"""Reaching a room through one of several real server processes (the ``nodes`` fixture starts them)."""

from __future__ import annotations

from typing import Any

import aiohttp

from server.devprocs import TelemedNode

from .signaling_client import bearer, connect, expect, signaling_path

PRESENCE_TTL = 2.0  # short, so a killed node's participants go within a test's patience


async def connect_at(http: aiohttp.ClientSession, node: TelemedNode, username: str,
                     resume: str | None = None) -> aiohttp.ClientWebSocketResponse:
    """Log in on ``node``, get a room token there, and send join (with ``resume`` to take back a seat)."""
    headers = await bearer(http, node.url, username)
    response = await http.post(f"{node.url}/api/consultations/1/room-token", headers=headers)
    token = (await response.json())["token"]
    return await connect(http, token, url=ws_url(node), resume=resume)


async def enter(http: aiohttp.ClientSession, node: TelemedNode,
                username: str) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await connect_at(http, node, username)
    return ws, await expect(ws, "joined")


def ws_url(node: TelemedNode) -> str:
    return f"{node.url.replace('http', 'ws')}{signaling_path()}"
