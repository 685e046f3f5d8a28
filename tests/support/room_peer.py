"""A participant as the browser is one: a signaling socket read by one task, and in relay mode one
aiortc connection to the server's relay, negotiated through signaling."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType

from .peers import RelayClient


class RoomPeer:
    def __init__(self, ws: ClientWebSocketResponse, joined: dict[str, Any]) -> None:
        self.ws, self.joined = ws, joined
        self.id: str = joined["self"]["id"]
        self.inbox: defaultdict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.media: RelayClient | None = None
        self.offers = 0  # offers made to the relay: each names itself, and its answer names it back
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != WSMsgType.TEXT:
                return
            data = json.loads(message.data)
            if data["type"] == "ping":
                await self.ws.send_json({"type": "pong", "id": data.get("id")})
            elif data["type"] == "layout" and self.media is not None:
                self.media.on_layout(data["slots"])
            self.inbox[data["type"]].put_nowait(data)

    async def next(self, kind: str, within: float = 10) -> dict[str, Any]:
        return await asyncio.wait_for(self.inbox[kind].get(), within)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_json(message)

    async def join_relay(self, slots: int, *, camera: bool = True) -> RelayClient:
        """Connect to the relay as the browser does when the room says mode "relay"."""
        self.media = RelayClient(self.id, slots=slots, camera=camera)
        await self.media.negotiate(self.ask_relay)
        return self.media

    async def offer_to_relay(self, sdp: str) -> str:
        """Send an offer to the relay; returns its offer_id."""
        self.offers += 1
        offer_id = f"{self.joined.get('relay_epoch', 0)}.{self.offers}"
        await self.send({"type": "offer", "to": "relay", "sdp": sdp, "offer_id": offer_id})
        return offer_id

    async def answer_to(self, offer_id: str) -> str:
        """The relay's answer to this offer, dropping answers to earlier ones, as PROTOCOL.md says to."""
        while True:
            reply = await self.next("answer")
            assert reply["from"] == "relay"
            if reply["offer_id"] == offer_id:
                return reply["sdp"]

    async def ask_relay(self, sdp: str) -> str:
        return await self.answer_to(await self.offer_to_relay(sdp))

    async def sees(self, other: RoomPeer, frames: int) -> list[int | None]:
        """What the next ``frames`` frames of ``other``'s video through the relay show (palette indexes)."""
        assert self.media is not None, "join the relay first"
        return await self.media.decoded_pattern(other.id, frames)

    async def close(self) -> None:
        if self.media is not None:
            await self.media.close()
        await self.ws.close()
        self._reader.cancel()
