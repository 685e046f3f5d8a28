"""media/load_camera.py: the load generators' camera gives frames of its size at its rate, never faster."""

from __future__ import annotations

import time

import pytest

from media.load_camera import LoadCamera


@pytest.mark.parametrize(("fps", "noise"), [(15, False), (30, True)])
async def test_frames_come_at_the_cameras_size_and_rate(fps: int, noise: bool) -> None:
    """Timestamps step by one frame of the 90 kHz clock at the camera's rate, and frames are not made ahead
    of their time (the mixed bench's 15 fps cameras load the relay as a 15 fps camera would)."""
    camera = LoadCamera(160, 96, fps=fps, noise=noise)
    start = time.monotonic()
    frames = [await camera.recv() for _ in range(8)]
    assert time.monotonic() - start >= 7 / fps - 0.01
    assert [f.pts for f in frames] == [n * 90_000 // fps for n in range(8)]
    assert {(f.width, f.height) for f in frames} == {(160, 96)}
    first, second = (bytes(f.planes[0]) for f in frames[:2])
    assert first != second, "the picture moves (or is noise): the encoder has work every frame"
