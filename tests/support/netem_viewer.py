"""A relay viewer in a process of its own, so a test can run it inside a network namespace behind an
impaired link (tests/media/test_impairment.py). It talks JSON lines on stdin/stdout:

- it writes ``{"offer": sdp}`` (its own microphone-less, camera-less offer with ``slots`` receive slots);
- it reads ``{"answer": sdp}``;
- every half second it writes what it has decoded so far: ``{"video": frames, "sizes": {"WxH": frames},
  "audio": frames, "audio_received": packets, "audio_lost": packets}`` (audio packets its receivers got,
  and counted lost);
- it stops at end of input.

    ip netns exec NS python -m tests.support.netem_viewer SLOTS
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from .peers import _route_retransmissions


class Viewer:
    def __init__(self, slots: int) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        for _ in range(slots):
            self.pc.addTransceiver("audio", direction="recvonly")
            self.pc.addTransceiver("video", direction="recvonly")
        for transceiver in self.pc.getTransceivers():
            _route_retransmissions(transceiver.receiver)
        self.video = self.audio = 0
        self.sizes: Counter[str] = Counter()
        self.pc.on("track", lambda track: asyncio.ensure_future(self._read(track)))

    async def _read(self, track) -> None:  # type: ignore[no-untyped-def]
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.video += 1
                self.sizes[f"{frame.width}x{frame.height}"] += 1
            else:
                self.audio += 1

    async def audio_packets(self) -> tuple[int, int]:
        """Audio packets received, and counted lost, by this viewer's receivers."""
        report = [s for s in (await self.pc.getStats()).values() if s.type == "inbound-rtp" and s.kind == "audio"]
        return (sum(getattr(s, "packetsReceived", 0) or 0 for s in report),
                sum(getattr(s, "packetsLost", 0) or 0 for s in report))


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
            await asyncio.sleep(0.5)
            received, lost = await viewer.audio_packets()
            print(json.dumps({"video": viewer.video, "sizes": dict(viewer.sizes), "audio": viewer.audio,
                              "audio_received": received, "audio_lost": lost}), flush=True)

    reporting = asyncio.ensure_future(report())
    await reader.read()  # until the test closes our input
    reporting.cancel()
    await viewer.pc.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
