"""Fan-out of encoded frames: a publication (one incoming track) and the forwarded tracks that carry it on.

Nothing here decodes or encodes. Two rules keep every subscriber's decoder happy:
- a video subscriber gets nothing until a key frame (it joined late, fell behind, or switched source),
  and asks the publisher for one; requests are rate-limited per publication, so ten late joiners in a
  moment cause one PLI, not ten;
- each forwarded track keeps its own RTP timeline, so a change of source is a step forward in time
  rather than a jump the receiver's jitter buffer would choke on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .passthrough import EncodedFrame

log = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL = 0.5  # seconds between two key frame requests to the same publisher
SUBSCRIBER_QUEUE_FRAMES = 60  # about 2 s of video: more means the subscriber's connection cannot keep up
FRAME_STEP = {"audio": 960, "video": 3000}  # one frame (20 ms of Opus at 48 kHz, 1/30 s at 90 kHz)
MAX_TIMESTAMP_STEP_SECONDS = 10  # a bigger gap in a source's timestamps is a restart, not elapsed time

FrameSink = Callable[[EncodedFrame], None]


class Publication:
    """One track a participant sends: frames in, copies out to every subscriber and sink (the recorder)."""

    def __init__(self, participant_id: str, kind: str, ask_keyframe: Callable[[], Awaitable[None]],
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.participant_id, self.kind = participant_id, kind
        self.subscribers: set[ForwardedTrack] = set()
        self.sinks: set[FrameSink] = set()
        self.frames = 0
        self.keyframe_requests = 0  # PLIs actually sent to the publisher
        self.codec: str | None = None
        self._ask_keyframe, self._clock = ask_keyframe, clock
        self._last_request = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()
        self.ended = False

    def deliver(self, frame: EncodedFrame) -> None:
        self.frames += 1
        self.codec = frame.codec
        for track in tuple(self.subscribers):
            track.push(frame)
        for sink in tuple(self.sinks):
            sink(frame)

    def request_keyframe(self) -> None:
        """Ask the publisher for a key frame, unless one was asked for a moment ago."""
        if self.kind != "video" or self.ended:
            return
        now = self._clock()
        if now - self._last_request < KEYFRAME_REQUEST_INTERVAL:
            return
        self._last_request = now
        self.keyframe_requests += 1
        task = asyncio.ensure_future(self._ask_keyframe())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def end(self) -> None:
        """The publisher is gone: every subscriber's track goes quiet (it stays, ready for another source)."""
        self.ended = True
        for track in tuple(self.subscribers):
            track.attach(None)
        self.sinks.clear()


class ForwardedTrack(MediaStreamTrack):
    """What one subscriber receives in one slot: the frames of whichever publication is attached, as
    av.Packets that aiortc's sender packetizes without encoding."""

    def __init__(self, kind: str, *, queue_frames: int = SUBSCRIBER_QUEUE_FRAMES) -> None:
        super().__init__()
        self.kind = kind
        self.source: Publication | None = None
        self.dropped = 0
        self._queue: asyncio.Queue[EncodedFrame | None] = asyncio.Queue()
        self._limit = queue_frames
        self._gated = kind == "video"
        self._last_in: int | None = None
        self._out: int | None = None

    def attach(self, publication: Publication | None) -> None:
        """Forward ``publication`` from now on (None: nothing), starting at its next key frame."""
        if publication is self.source:
            return
        if self.source is not None:
            self.source.subscribers.discard(self)
        self.source = publication
        self._drain()
        self._gated = self.kind == "video"
        self._last_in = None
        if publication is not None:
            publication.subscribers.add(self)
            publication.request_keyframe()

    def push(self, frame: EncodedFrame) -> None:
        if self._gated:
            if not frame.keyframe:
                self.dropped += 1
                if self.source is not None:
                    self.source.request_keyframe()
                return
            self._gated = False
        if self._queue.qsize() >= self._limit:
            # The subscriber's link cannot keep up. Dropping some frames would leave the next ones
            # referring to pictures it never got, so start again clean at the next key frame.
            self.dropped += self._queue.qsize() + 1
            self._drain()
            if self.kind == "video":
                self._gated = True
                if self.source is not None:
                    self.source.request_keyframe()
            return
        self._queue.put_nowait(frame)

    def keyframe_wanted(self) -> None:
        """The subscriber sent PLI or FIR: pass it to the publisher (rate-limited there)."""
        if self.source is not None:
            self.source.request_keyframe()

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            raise MediaStreamError
        return frame.to_packet(self._timestamp(frame))

    def stop(self) -> None:
        self.attach(None)
        super().stop()
        self._queue.put_nowait(None)

    def _timestamp(self, frame: EncodedFrame) -> int:
        step = FRAME_STEP[self.kind]
        if self._out is None:
            out = 0
        elif self._last_in is None:  # first frame from a new source: one frame after the last one sent
            out = self._out + step
        else:
            delta = frame.timestamp - self._last_in
            if not 0 < delta <= MAX_TIMESTAMP_STEP_SECONDS * frame.clock_rate:
                delta = step
            out = self._out + delta
        self._last_in, self._out = frame.timestamp, out
        return out

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
