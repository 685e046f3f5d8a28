"""Real aiortc peers for media tests: a patterned camera, and clients of the relay that offer the way
the browser does (own tracks first, then receive-only audio/video slots)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import av
from aiortc import (
    AudioStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)

from media.relay import Relay
from media.rtp_tap import route_retransmissions_by_ssrc

from .media import mean_yuv, solid_frame

PALETTE = ((81, 90, 240), (145, 54, 34), (41, 240, 110))  # red, green, blue in YUV
LOW_SIZE = (160, 120)  # a RelayClient's low layer; its camera is PatternTrack's default, 320x240
FRAMES_PER_COLOUR = 15


class PatternTrack(VideoStreamTrack):
    """A camera that cycles through PALETTE, half a second per colour: content a test can check."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height, self.sent = width, height, 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        colour = PALETTE[(self.sent // FRAMES_PER_COLOUR) % len(PALETTE)]
        self.sent += 1
        frame = solid_frame(self.width, self.height, colour, pts)
        frame.time_base = time_base
        return frame


def palette_index(frame: av.VideoFrame, tolerance: float = 14) -> int | None:
    """Which palette colour a decoded frame shows, or None if it shows none of them (a broken frame)."""
    seen = mean_yuv(frame)
    for index, colour in enumerate(PALETTE):
        if all(abs(a - b) < tolerance for a, b in zip(seen, colour, strict=True)):
            return index
    return None


class RelayClient:
    """A participant's side of the relay: one peer connection, like the browser's in relay mode."""

    def __init__(self, participant_id: str, *, slots: int, camera: bool = True, video_codec: str | None = None,
                 low_layer: bool = False) -> None:
        """``low_layer``: also send the camera's pattern at a quarter of its size on a second video
        transceiver, as the browser sends its low layer in relay mode."""
        self.participant_id = participant_id
        # max-bundle, as browsers do; aiortc's default strands a kind's later m-lines (see media/relay.py)
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.camera = PatternTrack() if camera else None
        if self.camera is not None:
            self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
            self.pc.addTransceiver(self.camera, direction="sendonly")
            if low_layer:
                self.pc.addTransceiver(PatternTrack(LOW_SIZE[0], LOW_SIZE[1]), direction="sendonly")
        for _ in range(slots):
            self.pc.addTransceiver("audio", direction="recvonly")
            self.pc.addTransceiver("video", direction="recvonly")
        if video_codec is not None:  # offer only this video codec, as a browser limited to it would
            wanted = [c for c in RTCRtpSender.getCapabilities("video").codecs
                      if c.mimeType.lower() in (f"video/{video_codec}".lower(), "video/rtx")]
            for transceiver in self.pc.getTransceivers():
                if transceiver.kind == "video":
                    transceiver.setCodecPreferences(wanted)
        self.layout: dict[str, str] = {}
        self.layout_changed = asyncio.Event()
        self.connected_at: float | None = None

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected" and self.connected_at is None:
                self.connected_at = asyncio.get_running_loop().time()

        for transceiver in self.pc.getTransceivers():
            route_retransmissions_by_ssrc(transceiver.receiver)

    async def join(self, relay: Relay) -> None:
        await self.negotiate(lambda sdp: relay.answer(self.participant_id, sdp))

    async def negotiate(self, answer: Callable[[str], Awaitable[str]]) -> None:
        """Offer, and apply the answer that ``answer`` gets for it (from a Relay, or through signaling)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.pc.setRemoteDescription(RTCSessionDescription(await answer(self.pc.localDescription.sdp), "answer"))

    def audio_mids(self) -> set[str]:
        """The audio mids of the slots that have someone in them (audio pairs with video slot by slot)."""
        transceivers = self.pc.getTransceivers()
        return {transceivers[i - 1].mid or "" for i, t in enumerate(transceivers)
                if t.kind == "video" and t.mid in self.layout and i > 0 and transceivers[i - 1].kind == "audio"}

    def on_layout(self, layout: dict[str, str]) -> None:
        self.layout = layout
        self.layout_changed.set()

    def video_of(self, participant_id: str):
        mid = next(mid for mid, owner in self.layout.items() if owner == participant_id)
        return next(t.receiver.track for t in self.pc.getTransceivers() if t.mid == mid)

    async def wait_for_slot(self, participant_id: str) -> None:
        async with asyncio.timeout(10):
            while participant_id not in self.layout.values():
                self.layout_changed.clear()
                await self.layout_changed.wait()

    async def decoded_pattern(self, publisher: str, frames: int) -> list[int | None]:
        """The palette index of each of the next ``frames`` frames decoded from ``publisher``'s video."""
        await self.wait_for_slot(publisher)
        track = self.video_of(publisher)
        return [palette_index(await asyncio.wait_for(track.recv(), 10)) for _ in range(frames)]

    async def close(self) -> None:
        await self.pc.close()


async def until(condition, seconds: float = 10.0, step: float = 0.05) -> None:
    """Wait until ``condition()`` holds (polling: media counters have no event to wait on)."""
    for _ in range(int(seconds / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise TimeoutError(f"still not true after {seconds} s: {condition}")
