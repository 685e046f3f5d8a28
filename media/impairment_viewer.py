"""A relay viewer in a process of its own, so the impairment benchmark and test (media/impairment.py) can run
it inside a network namespace behind an impaired link, and measure a viewer on the host the same way. It
talks JSON lines on stdin/stdout:

- it writes ``{"offer": sdp}`` (an offer with ``slots`` receive-only audio/video slots, as the browser's);
- it reads ``{"answer": sdp}``;
- every half second it writes what happened since its last line: ``{"t": now, "video": [[t, "WxH"], ...],
  "audio": [[t, missing_ms], ...], "audio_received": packets, "audio_lost": packets}``: each video frame
  decoded, each audio frame decoded with the milliseconds of sound missing just before it (a gap in the
  RTP timestamps: what a player must conceal), and the audio packets its receivers got and counted lost
  so far. Times are ``time.monotonic()``, the same clock in every process of the host;
- it stops at end of input.

    ip netns exec NS python -m media.impairment_viewer SLOTS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .rtp_tap import route_retransmissions_by_ssrc

REPORT_SECONDS = 0.5
OPUS_RATE = 48_000
LONGEST_GAP = 10 * OPUS_RATE  # a timestamp jump beyond this is a restart, not missing sound


class Viewer:
    """A receive-only relay client that notes when each frame is decoded."""

    def __init__(self, slots: int) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        for _ in range(slots):
            self.pc.addTransceiver("audio", direction="recvonly")
            self.pc.addTransceiver("video", direction="recvonly")
        for transceiver in self.pc.getTransceivers():
            route_retransmissions_by_ssrc(transceiver.receiver)
        self.video: list[tuple[float, str]] = []
        self.audio: list[tuple[float, float]] = []
        self.pc.on("track", lambda track: asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        expected: int | None = None  # the RTP timestamp the next audio frame should carry
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if track.kind == "video":
                self.video.append((now, f"{frame.width}x{frame.height}"))
                continue
            missing = 0.0
            if expected is not None and frame.pts is not None:
                gap = (frame.pts - expected) % (1 << 32)
                missing = gap * 1000 / OPUS_RATE if 0 < gap < LONGEST_GAP else 0.0
            if frame.pts is not None:
                expected = (frame.pts + frame.samples) % (1 << 32)
            self.audio.append((now, round(missing, 1)))

    async def audio_packets(self) -> tuple[int, int]:
        """Audio packets received, and counted lost, by this viewer's receivers."""
        report = [s for s in (await self.pc.getStats()).values() if s.type == "inbound-rtp" and s.kind == "audio"]
        return (sum(getattr(s, "packetsReceived", 0) or 0 for s in report),
                sum(getattr(s, "packetsLost", 0) or 0 for s in report))

    async def report(self) -> dict[str, object]:
        """What happened since the last report (and the packet counts so far)."""
        received, lost = await self.audio_packets()
        video, audio, self.video, self.audio = self.video, self.audio, [], []
        return {"t": time.monotonic(), "video": [[round(t, 4), size] for t, size in video],
                "audio": [[round(t, 4), missing] for t, missing in audio],
                "audio_received": received, "audio_lost": lost}


async def main(slots: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    viewer = Viewer(slots)
    await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
    print(json.dumps({"offer": viewer.pc.localDescription.sdp}), flush=True)
    answer = json.loads(await reader.readline())["answer"]
    await viewer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def report() -> None:
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            print(json.dumps(await viewer.report()), flush=True)

    reporting = asyncio.ensure_future(report())
    await reader.read()  # until the bench closes our input
    reporting.cancel()
    print(json.dumps(await viewer.report()), flush=True)  # the last frames
    await viewer.pc.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
