"""Synthetic media for tests: video frames of a known colour, and reading the colour back after decoding."""

from __future__ import annotations

import fractions

import av
from aiortc import VideoStreamTrack

VIDEO_CLOCK = 90_000


def solid_frame(width: int, height: int, yuv: tuple[int, int, int], pts: int = 0) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, yuv, strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
    return frame


def mean_yuv(frame: av.VideoFrame) -> tuple[float, float, float]:
    """Average of each plane over its visible area (planes carry padding at the end of each line)."""
    frame = frame.reformat(format="yuv420p")
    means = []
    for index, plane in enumerate(frame.planes):
        width = frame.width if index == 0 else (frame.width + 1) // 2
        height = frame.height if index == 0 else (frame.height + 1) // 2
        data = bytes(plane)
        total = sum(sum(data[row * plane.line_size: row * plane.line_size + width]) for row in range(height))
        means.append(total / (width * height))
    return means[0], means[1], means[2]


class SolidColourTrack(VideoStreamTrack):
    """A camera that shows one colour: what arrives can be checked, not only counted."""

    def __init__(self, yuv: tuple[int, int, int], width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.yuv, self.width, self.height = yuv, width, height

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = solid_frame(self.width, self.height, self.yuv, pts)
        frame.time_base = time_base
        return frame
