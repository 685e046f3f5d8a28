"""Two real aiortc peers negotiate through the server's signaling and see each other's video."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection, RTCSessionDescription

from ..support.media import SolidColourTrack, mean_yuv
from ..support.signaling_client import expect
from .test_endpoint import enter

pytestmark = pytest.mark.alone  # real media between real peers

RED = (81, 90, 240)
BLUE = (41, 240, 110)


async def _first_frame_colour(pc: RTCPeerConnection, received: asyncio.Future) -> tuple[float, float, float]:
    track = await asyncio.wait_for(received, 10)
    for _ in range(10):  # the first frames may still be settling; take a steady one
        frame = await asyncio.wait_for(track.recv(), 10)
    return mean_yuv(frame)


async def test_aiortc_peers_exchange_video_through_signaling(room_client: TestClient) -> None:
    """The offer and answer cross the real server untouched, and decoded frames carry the sender's colour."""
    li_ws, li_joined = await enter(room_client, "dr.li")
    wang_ws, wang_joined = await enter(room_client, "dr.wang")
    await expect(li_ws, "participant-joined")
    li_pc, wang_pc = RTCPeerConnection(), RTCPeerConnection()
    li_pc.addTrack(SolidColourTrack(RED))
    wang_pc.addTrack(SolidColourTrack(BLUE))
    li_got: asyncio.Future = asyncio.get_running_loop().create_future()
    wang_got: asyncio.Future = asyncio.get_running_loop().create_future()
    li_pc.on("track", lambda track: li_got.done() or li_got.set_result(track))
    wang_pc.on("track", lambda track: wang_got.done() or wang_got.set_result(track))
    try:
        # The newcomer offers (as the browser client does); aiortc puts every candidate in the SDP.
        await wang_pc.setLocalDescription(await wang_pc.createOffer())
        await wang_ws.send_json({"type": "offer", "to": li_joined["self"]["id"], "sdp": wang_pc.localDescription.sdp})
        offer = await expect(li_ws, "offer")
        assert offer["from"] == wang_joined["self"]["id"]
        await li_pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await li_pc.setLocalDescription(await li_pc.createAnswer())
        await li_ws.send_json({"type": "answer", "to": offer["from"], "sdp": li_pc.localDescription.sdp})
        answer = await expect(wang_ws, "answer")
        await wang_pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

        li_sees = await _first_frame_colour(li_pc, li_got)
        wang_sees = await _first_frame_colour(wang_pc, wang_got)
        assert all(abs(a - b) < 12 for a, b in zip(li_sees, BLUE, strict=True)), li_sees
        assert all(abs(a - b) < 12 for a, b in zip(wang_sees, RED, strict=True)), wang_sees
        assert li_pc.connectionState == wang_pc.connectionState == "connected"
    finally:
        await asyncio.gather(li_pc.close(), wang_pc.close())
        await li_ws.close()
        await wang_ws.close()
