"""The fan-out's rules, without a network: key frame gating, rate-limited key frame requests, and each
forwarded track's own timeline."""

from __future__ import annotations

import asyncio

import pytest

from media.forwarding import FRAME_STEP, KEYFRAME_REQUEST_INTERVAL, ForwardedTrack, Publication
from media.passthrough import EncodedFrame


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(ts: int, *, key: bool = False) -> EncodedFrame:
    return EncodedFrame("VP8", b"\x10" if key else b"\x31", ts, 90_000, key)


async def _nothing() -> None:
    return None


async def test_ten_late_joiners_cause_one_keyframe_request() -> None:
    """Ten subscribers waiting for a key frame cost the publisher one key frame request, not ten; with still none
    after KEYFRAME_REQUEST_INTERVAL, one more."""
    clock = FakeClock()
    publication = Publication("doctor", "video", _nothing, clock=clock)
    tracks = [ForwardedTrack("video") for _ in range(10)]
    for track in tracks:
        track.attach(publication)
    publication.deliver(frame(0))
    assert publication.keyframe_requests == 1
    clock.now += KEYFRAME_REQUEST_INTERVAL
    publication.deliver(frame(3000))
    assert publication.keyframe_requests == 2  # still no key frame: ask again, once
    await asyncio.sleep(0)


@pytest.mark.parametrize(("frames", "forwarded"), [
    ([frame(0), frame(3000)], 0),  # no key frame yet: nothing
    ([frame(0), frame(3000, key=True), frame(6000)], 2),  # from the key frame on
    ([frame(0, key=True), frame(3000), frame(6000)], 3),
])
async def test_video_waits_for_a_keyframe(frames, forwarded) -> None:
    """Each row: the frames a publication delivers and how many a subscriber's video gets: none before the first key
    frame, every one from it on."""
    publication = Publication("doctor", "video", _nothing)
    track = ForwardedTrack("video")
    track.attach(publication)
    for f in frames:
        publication.deliver(f)
    assert track._queue.qsize() == forwarded


async def test_a_subscriber_that_falls_behind_starts_again_at_a_keyframe() -> None:
    """A subscriber whose queue overflows drops everything it held, and gets nothing more until the next key frame,
    rather than frames it could not decode."""
    publication = Publication("doctor", "video", _nothing)
    track = ForwardedTrack("video", queue_frames=3)
    track.attach(publication)
    publication.deliver(frame(0, key=True))
    for i in range(1, 4):
        publication.deliver(frame(i * 3000))
    assert track._queue.qsize() == 0 and track.dropped == 4
    publication.deliver(frame(5 * 3000))
    assert track._queue.qsize() == 0  # still gated
    publication.deliver(frame(6 * 3000, key=True))
    assert track._queue.qsize() == 1


async def test_timeline_is_continuous_across_a_change_of_source() -> None:
    """A forwarded track's timestamps start at 0 and run on without a jump when it switches publisher: one frame step
    after the last."""
    first, second = Publication("a", "video", _nothing), Publication("b", "video", _nothing)
    track = ForwardedTrack("video")
    track.attach(first)
    first.deliver(frame(500_000, key=True))
    first.deliver(frame(503_000))
    stamps = [(await track.recv()).pts for _ in range(2)]
    track.attach(second)
    second.deliver(frame(9_000_000, key=True))
    stamps.append((await track.recv()).pts)
    assert stamps == [0, 3000, 3000 + FRAME_STEP["video"]]


async def test_ended_publication_leaves_subscribers_idle() -> None:
    """When a publication ends, its subscribers' tracks are left with no source and it keeps no subscriber."""
    publication = Publication("doctor", "video", _nothing)
    track = ForwardedTrack("video")
    track.attach(publication)
    publication.end()
    assert track.source is None and not publication.subscribers
