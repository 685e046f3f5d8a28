"""A synthetic camera for load generators (``telemed bench mixed``, ``telemed bench impairment``, tests):
frames cheap to make, paced in real time, at any size and frame rate."""

from __future__ import annotations

import asyncio
import os
import time
from fractions import Fraction

import av
from aiortc import VideoStreamTrack

CLOCK_RATE = 90_000  # RTP's video clock, as aiortc's own tracks use


class LoadCamera(VideoStreamTrack):
    """``width`` x ``height`` frames at ``fps``: a moving gradient, cheap to encode (what a relay does per
    packet does not depend on what the frames show), or with ``noise``, frames no encoder can squeeze (a
    stream at the encoder's full bitrate, frames of many packets)."""

    def __init__(self, width: int, height: int, *, fps: int = 30, noise: bool = False) -> None:
        super().__init__()
        self.width, self.height, self.fps, self.noise = width, height, fps, noise
        self.count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        pts = await self._next_pts()
        self.count += 1
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        y = frame.planes[0]
        if self.noise:
            y.update(os.urandom(y.buffer_size))
        else:
            y.update(bytes((x + self.count * 4) & 0xFF for x in range(y.line_size)) * self.height)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, Fraction(1, CLOCK_RATE)
        return frame

    async def _next_pts(self) -> int:
        """The next frame's timestamp, once its time has come: paced against the clock from the first frame
        (as aiortc's ``VideoStreamTrack.next_timestamp``, at this camera's rate), so slow frames do not
        drift the rate down."""
        if self._start is None:
            self._start = time.time()
            return 0
        pts = self.count * CLOCK_RATE // self.fps
        await asyncio.sleep(max(0.0, self._start + pts / CLOCK_RATE - time.time()))
        return pts
