"""``telemed bench relay`` and ``telemed bench recording``: our pass-through against aiortc's own way.

The server side (relay or recorder) runs in a child process of its own, so its CPU time is measured
apart from the load generator's. The publisher sends 640x480 VP8 at 30 fps whose top rows carry the
frame number in black and white blocks; subscribers count frames without decoding (media/passthrough.py
on the client side), except one *probe* that decodes, reads the number and so the end-to-end delay.
"Added latency" is the probe's delay through the server minus its delay on a direct connection,
measured in the same run.

Baselines, measured in the same run: the frame-level forwarding the relay used before it forwarded packets
(media/forwarding.py's ``ForwardedTrack``: whole frames out of aiortc's jitter buffer), aiortc's
``MediaRelay`` (decodes once, encodes per subscriber) and ``MediaRecorder`` (decodes and encodes into WebM).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaRecorder, MediaRelay

from .passthrough import tap_receiver

WIDTH, HEIGHT, FPS = 640, 480, 30
BITS = 16  # frame number bits drawn in the top band
BAND = 32  # rows


class NumberedCamera(VideoStreamTrack):
    """640x480 frames: a moving gradient (so encoders have real work) under a band that spells the frame
    number; remembers when each frame was made."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.made: dict[int, float] = {}

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        number = self.count % (1 << BITS)
        self.count += 1
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        y = frame.planes[0]
        rows = bytearray(y.line_size * HEIGHT)
        block = WIDTH // BITS
        band = bytes(255 if (number >> (BITS - 1 - x // block)) & 1 else 0 for x in range(WIDTH))
        shift = (self.count * 4) % 256
        body = bytes((x + shift) & 0xFF for x in range(WIDTH))
        for row in range(HEIGHT):
            rows[row * y.line_size: row * y.line_size + WIDTH] = band if row < BAND else body
        y.update(bytes(rows))
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        self.made[number] = time.monotonic()
        return frame


def read_number(frame: av.VideoFrame) -> int:
    y = frame.planes[0]
    data = bytes(y)
    row = (BAND // 2) * y.line_size
    block = WIDTH // BITS
    return sum(1 << (BITS - 1 - bit) for bit in range(BITS) if data[row + bit * block + block // 2] > 128)


def _config() -> RTCConfiguration:
    return RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


# ---- the server side, in its own process ----

def _server_main(conn: Connection, kind: str, directory: str) -> None:
    asyncio.run(_serve(conn, kind, Path(directory)))


def frame_publication(pc: RTCPeerConnection, track: Any) -> Any:
    """The frame-level baseline's publisher side: ``track``'s encoded frames as a Publication."""
    from .forwarding import Publication
    from .passthrough import request_keyframe

    receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
    publication = Publication("publisher", track.kind, lambda: request_keyframe(receiver))
    tap_receiver(receiver, publication.deliver)
    return publication


def frame_subscription(pc: RTCPeerConnection, publication: Any) -> None:
    """The frame-level baseline's subscriber side: a ForwardedTrack of ``publication`` on each video
    transceiver of ``pc`` (call between setRemoteDescription and createAnswer)."""
    from .forwarding import ForwardedTrack
    from .passthrough import on_keyframe_request

    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            track = ForwardedTrack("video")
            transceiver.sender.replaceTrack(track)
            transceiver.direction = "sendonly"
            on_keyframe_request(transceiver.sender, track.keyframe_wanted)
            track.attach(publication)


async def _serve(conn: Connection, kind: str, directory: Path) -> None:
    from .recorder import Segment
    from .relay import Relay

    loop = asyncio.get_running_loop()
    relay = Relay() if kind == "relay" else None
    media_relay = MediaRelay()
    source: asyncio.Future[Any] = loop.create_future()
    pcs: list[RTCPeerConnection] = []
    recorder: Any = None
    while True:
        request, *args = await loop.run_in_executor(None, conn.recv)
        if request == "publish" and relay is not None:
            conn.send(await relay.answer("publisher", args[0]))
        elif request == "subscribe" and relay is not None:
            conn.send(await relay.answer(f"s{len(relay.peers)}", args[0]))
        elif request == "publish":  # the baselines receive a decoded track
            pc = RTCPeerConnection(_config())
            pcs.append(pc)

            @pc.on("track")
            def on_track(track: Any, pc: RTCPeerConnection = pc) -> None:
                if kind in ("segment", "frames"):  # encoded frames from the start: receiving decodes nothing
                    source.set_result(frame_publication(pc, track))
                else:
                    source.set_result(track)
            await pc.setRemoteDescription(RTCSessionDescription(args[0], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            conn.send(pc.localDescription.sdp)
        elif request == "subscribe":  # the baselines: frames forwarded, or MediaRelay re-encoding for each
            pc = RTCPeerConnection(_config())
            pcs.append(pc)
            await pc.setRemoteDescription(RTCSessionDescription(args[0], "offer"))
            track = await source
            if kind == "frames":
                frame_subscription(pc, track)
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "video" and kind != "frames":
                    transceiver.sender.replaceTrack(media_relay.subscribe(track, buffered=False))
                    transceiver.direction = "sendonly"
            await pc.setLocalDescription(await pc.createAnswer())
            conn.send(pc.localDescription.sdp)
        elif request == "record":
            if kind == "segment":
                recorder = Segment(directory / "bench.live", os.urandom(32), [await source])
            elif kind == "mediarecorder":
                recorder = MediaRecorder(str(directory / "bench.webm"))
                recorder.addTrack(await source)
                await recorder.start()
            conn.send("ok")
        elif request == "cpu":
            times = os.times()
            conn.send((times.user + times.system, _forwarded(relay)))
        elif request == "stop":
            if kind == "segment" and recorder is not None:
                recorder.stop()
                await loop.run_in_executor(None, recorder.join)
            elif recorder is not None:
                await recorder.stop()
            if relay is not None:
                await relay.close()
            for pc in pcs:
                await pc.close()
            conn.send("ok")
            return


def _forwarded(relay: Any) -> int | None:
    """RTP packets the relay has sent its viewers so far (None for the baselines, which send frames)."""
    if relay is None:
        return None
    return sum(slot.audio.sender.sent + slot.video.sender.sent for peer in relay.peers.values()
               for slot in peer.slots)


class ServerProcess:
    def __init__(self, kind: str, directory: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_server_main, args=(child, kind, str(directory)), daemon=True)
        self.process.start()

    async def ask(self, *request: Any) -> Any:
        loop = asyncio.get_running_loop()
        self.conn.send(request)
        return await loop.run_in_executor(None, self.conn.recv)

    async def stop(self) -> None:
        await self.ask("stop")
        self.process.join(10)


# ---- the load side ----

@dataclass
class Subscriber:
    pc: RTCPeerConnection
    frames: int = 0
    delays: list[float] = field(default_factory=list)


async def _connect(pc: RTCPeerConnection, answer: Any) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    await pc.setRemoteDescription(RTCSessionDescription(await answer(pc.localDescription.sdp), "answer"))


async def _subscriber(server_answer: Any, camera: NumberedCamera, *, probe: bool) -> Subscriber:
    pc = RTCPeerConnection(_config())
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    sub = Subscriber(pc)

    @pc.on("track")
    def on_track(track: Any) -> None:
        if track.kind != "video":
            return
        if probe:
            asyncio.ensure_future(_probe(track, camera, sub))
        else:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            tap_receiver(receiver, lambda frame: setattr(sub, "frames", sub.frames + 1))
    await _connect(pc, server_answer)
    return sub


async def _probe(track: Any, camera: NumberedCamera, sub: Subscriber) -> None:
    while True:
        try:
            frame = await track.recv()
        except Exception:
            return
        sub.frames += 1
        made = camera.made.get(read_number(frame))
        if made is not None:
            sub.delays.append((time.monotonic() - made) * 1000)


def _publisher(camera: NumberedCamera) -> RTCPeerConnection:
    pc = RTCPeerConnection(_config())
    pc.addTransceiver(camera, direction="sendonly")
    return pc


@dataclass
class Point:
    mode: str
    subscribers: int
    cpu_per_second: float
    cpu_per_subscriber: float
    fps_min: float
    fps_median: float
    delay_ms_median: float | None
    packets_per_second: float | None = None  # RTP packets the relay sent, all subscribers together
    cpu_us_per_packet: float | None = None  # the relay's CPU per packet sent: what fewer frames do not skew


async def _direct_delay(seconds: float) -> float:
    """The probe's delay with nothing in between: encode, network, decode."""
    camera = NumberedCamera()
    publisher = _publisher(camera)
    probe_pc = RTCPeerConnection(_config())
    sub = Subscriber(probe_pc)
    probe_pc.on("track", lambda track: asyncio.ensure_future(_probe(track, camera, sub)))

    async def answer(sdp: str) -> str:
        await probe_pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await probe_pc.setLocalDescription(await probe_pc.createAnswer())
        return probe_pc.localDescription.sdp
    await _connect(publisher, answer)
    await asyncio.sleep(seconds)
    await publisher.close()
    await probe_pc.close()
    return statistics.median(sub.delays[len(sub.delays) // 3:]) if sub.delays else float("nan")


async def relay_point(mode: str, subscribers: int, seconds: float) -> Point:
    with tempfile.TemporaryDirectory() as directory:
        server = ServerProcess(mode, Path(directory))
        camera = NumberedCamera()
        publisher = _publisher(camera)
        try:
            await _connect(publisher, lambda sdp: server.ask("publish", sdp))
            subs = [await _subscriber(lambda sdp: server.ask("subscribe", sdp), camera, probe=i == 0)
                    for i in range(subscribers)]
            await asyncio.sleep(3)  # connect, first key frames, encoders settle
            (cpu0, sent0), frames0, t0 = await server.ask("cpu"), [s.frames for s in subs], time.monotonic()
            for sub in subs:
                sub.delays.clear()
            await asyncio.sleep(seconds)
            (cpu1, sent1), frames1, t1 = await server.ask("cpu"), [s.frames for s in subs], time.monotonic()
        finally:
            await publisher.close()
            for sub in subs:
                await sub.pc.close()
            await server.stop()
    elapsed = t1 - t0
    fps = sorted((b - a) / elapsed for a, b in zip(frames0, frames1, strict=True))
    cpu = (cpu1 - cpu0) / elapsed
    delays = subs[0].delays
    packets = (sent1 - sent0) / elapsed if sent0 is not None else None
    return Point(mode, subscribers, round(cpu, 4), round(cpu / subscribers, 4), round(fps[0], 1),
                 round(statistics.median(fps), 1), round(statistics.median(delays), 1) if delays else None,
                 round(packets, 1) if packets is not None else None,
                 round(cpu / packets * 1e6, 2) if packets else None)


async def recording_point(mode: str, seconds: float) -> dict[str, Any]:
    """CPU of a process that receives one 640x480 stream and records it (or, for "receive", only takes
    the encoded frames and drops them: the floor)."""
    kind = {"receive": "segment", "passthrough": "segment", "mediarecorder": "mediarecorder"}[mode]
    with tempfile.TemporaryDirectory() as directory:
        server = ServerProcess(kind, Path(directory))
        camera = NumberedCamera()
        publisher = _publisher(camera)
        try:
            await _connect(publisher, lambda sdp: server.ask("publish", sdp))
            await asyncio.sleep(2)
            if mode != "receive":
                await server.ask("record")
            await asyncio.sleep(1)
            (cpu0, _), t0 = await server.ask("cpu"), time.monotonic()
            await asyncio.sleep(seconds)
            (cpu1, _), t1 = await server.ask("cpu"), time.monotonic()
        finally:
            await publisher.close()
            await server.stop()
        size = _bytes_in(Path(directory))
    return {"mode": mode, "cpu_per_second": round((cpu1 - cpu0) / (t1 - t0), 4), "bytes_written": size}


def _bytes_in(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.iterdir())


# ---- the commands ----

def _print(title: str, rows: list[dict[str, Any]]) -> None:
    print(title)
    if not rows:
        return
    keys = list(dict.fromkeys(k for row in rows for k in row))
    print("  " + "  ".join(f"{k:>18}" for k in keys))
    for row in rows:
        print("  " + "  ".join(f"{row.get(k, '')!s:>18}" for k in keys))


async def bench_relay(sizes: list[int], seconds: float, capacity: int | None) -> dict[str, Any]:
    direct = await _direct_delay(seconds)
    points = []
    for size in sizes:
        for mode in ("relay", "frames", "mediarelay"):
            point = await relay_point(mode, size, seconds)
            if point.delay_ms_median is not None:
                point.delay_ms_median = round(point.delay_ms_median - direct, 1)
            points.append(point)
    rows = [asdict(p) for p in points]
    for size in sizes:
        ours = next(p for p in points if p.subscribers == size and p.mode == "relay")
        for row in rows:
            if row["subscribers"] == size and row["mode"] == "relay":
                for baseline in ("frames", "mediarelay"):
                    base = next(p for p in points if p.subscribers == size and p.mode == baseline)
                    row[f"cpu_ratio_to_{baseline}"] = round(ours.cpu_per_subscriber / base.cpu_per_subscriber,
                                                            3) if base.cpu_per_subscriber else None
    result: dict[str, Any] = {"direct_delay_ms": round(direct, 1), "points": rows,
                              "note": "delay_ms_median is added latency: through the server minus direct"}
    if capacity:
        point = await relay_point("relay", capacity, seconds)
        result["capacity"] = asdict(point)
    return result


async def bench_recording(seconds: float) -> dict[str, Any]:
    rows = [await recording_point(mode, seconds) for mode in ("receive", "passthrough", "mediarecorder")]
    ours, base = rows[1]["cpu_per_second"], rows[2]["cpu_per_second"]
    return {"points": rows, "cpu_ratio_to_mediarecorder": round(ours / base, 3) if base else None}


def main_relay(sizes: list[int], seconds: float, capacity: int | None, as_json: bool) -> int:
    result = asyncio.run(bench_relay(sizes, seconds, capacity))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"direct connection delay (probe): {result['direct_delay_ms']} ms")
        _print("relay (packets) against frame forwarding and aiortc MediaRelay, 640x480 VP8 30 fps:",
               result["points"])
        if "capacity" in result:
            _print("capacity run:", [result["capacity"]])
    return 0


def main_recording(seconds: float, as_json: bool) -> int:
    result = asyncio.run(bench_recording(seconds))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print("recording one 640x480 VP8 30 fps stream, CPU seconds per second:", result["points"])
        print(f"pass-through recording / MediaRecorder: {result['cpu_ratio_to_mediarecorder']}")
    return 0
