"""``telemed bench relay`` and ``telemed bench recording``: our pass-through against aiortc's own way.

The server side (relay or recorder) runs in a child process of its own, so its CPU time is measured
apart from the load generator's. The publisher sends 640x480 VP8 at 30 fps whose top rows carry the
frame number in black and white blocks; one subscriber, the *probe*, decodes, reads the number and so
the end-to-end delay. The others count frames by their last packet (RTP marker bit) through
media/rtp_tap.py's tap, with no jitter buffer and no decoding, in load processes of their own (one per
150 subscribers, at most one per core), so that a few hundred of them do not make one event loop fall
behind, lose packets and have the relay do work (NACKs, key frames, lower layers) no real viewer asks for.
"Added latency" is the probe's delay through the server minus its delay on a direct connection,
measured in the same run.

Baselines, measured in the same run: the frame-level forwarding the relay used before it forwarded packets
(media/forwarding.py's ``ForwardedTrack``: whole frames out of aiortc's jitter buffer), aiortc's
``MediaRelay`` (decodes once, encodes per subscriber) and ``MediaRecorder`` (decodes and encodes into WebM);
and, for the relay's fixed cost, the floor under it (media/wakeup_floor.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaRecorder, MediaRelay

from .rtp_tap import TappedPacket, tap_packets
from .wakeup_floor import wakeup_floor

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
    from .passthrough import request_keyframe, tap_receiver

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
            conn.send((times.user + times.system, _forwarded(relay), relay.census()[1] if relay is not None else None))
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


def _forwarded(relay: Any) -> dict[str, int] | None:
    """RTP packets the relay has sent so far, by viewer (None for the baselines, which send frames)."""
    if relay is None:
        return None
    return {peer_id: sum(slot.audio.sender.sent + slot.video.sender.sent for slot in peer.slots)
            for peer_id, peer in relay.peers.items()}


class PipedProcess:
    """A spawned process of the bench, spoken to over a pipe whose far end only it holds: if it dies,
    reading from it fails at once with its exit code, instead of the bench waiting for ever."""

    def __init__(self, name: str, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.conn, child = context.Pipe()
        self.process = context.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        child.close()  # the child's end is its own now

    async def send(self, message: Any) -> None:
        try:
            self.conn.send(message)
        except OSError:
            await self._gone()

    async def recv(self) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
        except (EOFError, OSError):
            await self._gone()

    async def ask(self, *request: Any) -> Any:
        await self.send(request)
        return await self.recv()

    async def _gone(self) -> NoReturn:
        await asyncio.get_running_loop().run_in_executor(None, self.process.join, 5)
        raise RuntimeError(f"{self.name} exited (code {self.process.exitcode})") from None

    async def stop(self) -> None:
        """Ask it to stop and wait for it; one that died already has nothing to say (an error about it is
        on its way from where the bench failed)."""
        with contextlib.suppress(OSError, RuntimeError):
            await self.ask("stop")
        await asyncio.get_running_loop().run_in_executor(None, self.process.join, 10)
        if self.process.is_alive():
            self.process.kill()


class ServerProcess(PipedProcess):
    def __init__(self, kind: str, directory: Path) -> None:
        super().__init__(f"the bench's {kind} server", _server_main, kind, str(directory))


# ---- the load side ----

@dataclass
class Subscriber:
    pc: RTCPeerConnection
    frames: int = 0
    delays: list[float] = field(default_factory=list)

    def count(self, tapped: TappedPacket) -> None:
        """A frame's last packet (RTP marker bit) counts the frame: no jitter buffer, no reassembly."""
        if tapped.packet.marker:
            self.frames += 1


async def _connect(pc: RTCPeerConnection, answer: Any) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    await pc.setRemoteDescription(RTCSessionDescription(await answer(pc.localDescription.sdp), "answer"))


async def _subscriber(server_answer: Any, camera: NumberedCamera | None, *, probe: bool) -> Subscriber:
    pc = RTCPeerConnection(_config())
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    sub = Subscriber(pc)

    @pc.on("track")
    def on_track(track: Any) -> None:
        if track.kind != "video":
            return
        if probe:
            assert camera is not None, "the probe reads the camera's frame numbers"
            asyncio.ensure_future(_probe(track, camera, sub))
        else:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            tap_packets(receiver, sub.count)
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
    viewers_by_layer: dict[str, int] | None = None  # the relay's: how many viewers get high, low, no video
    load_cpu_per_second: float | None = None  # the load generator's: publisher, probe and subscribers


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


class LoadProcess(PipedProcess):
    """Subscribers in a process of their own, so that hundreds of them are not one event loop's work (the
    load generator must not be what falls behind). Each subscriber's offer comes up the pipe to be answered
    by the server; ``frames()`` reads every subscriber's count."""

    def __init__(self) -> None:
        super().__init__("a load process", _load_main)

    async def subscribe(self, count: int, server_answer: Any) -> None:
        message, *args = await self.ask("subscribe", count)
        while message != "done":
            await self.send(await server_answer(args[0]))
            message, *args = await self.recv()

    async def frames(self) -> tuple[list[int], float]:
        """Each subscriber's frames so far, and the CPU time (user and system) this process has used."""
        return await self.ask("frames")


def _load_main(conn: Connection) -> None:
    asyncio.run(_load(conn))


async def _load(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    subs: list[Subscriber] = []

    async def ask_parent(sdp: str) -> str:
        conn.send(("offer", sdp))
        return await loop.run_in_executor(None, conn.recv)
    while True:
        request, *args = await loop.run_in_executor(None, conn.recv)
        if request == "subscribe":
            for _ in range(args[0]):
                subs.append(await _subscriber(ask_parent, None, probe=False))
            conn.send(("done",))
        elif request == "frames":
            times = os.times()
            conn.send(([sub.frames for sub in subs], times.user + times.system))
        elif request == "stop":
            for sub in subs:
                await sub.pc.close()
            conn.send("ok")
            return


SUBSCRIBERS_PER_LOAD_PROCESS = 150


def load_processes(subscribers: int) -> int:
    """How many load processes carry the subscribers other than the probe: one per 150, at most one per
    core (none for the probe alone)."""
    others = subscribers - 1
    return min(os.cpu_count() or 1, -(-others // SUBSCRIBERS_PER_LOAD_PROCESS))


async def relay_point(mode: str, subscribers: int, seconds: float) -> Point:
    """``subscribers`` through server ``mode``: the probe (which decodes) in this process beside the
    publisher, the others spread over :func:`load_processes` processes."""
    with tempfile.TemporaryDirectory() as directory:
        server = ServerProcess(mode, Path(directory))
        camera = NumberedCamera()
        publisher = _publisher(camera)
        loaders = [LoadProcess() for _ in range(load_processes(subscribers))]
        probe: Subscriber | None = None

        def answer(sdp: str) -> Any:
            return server.ask("subscribe", sdp)

        async def frames() -> tuple[list[int], float]:
            """Every subscriber's frames so far, and the CPU the load side (this process and the load
            processes) has used."""
            counts, times = [probe.frames] if probe is not None else [], os.times()
            cpu = times.user + times.system
            for loader in loaders:
                theirs, their_cpu = await loader.frames()
                counts += theirs
                cpu += their_cpu
            return counts, cpu
        try:
            await _connect(publisher, lambda sdp: server.ask("publish", sdp))
            probe = await _subscriber(answer, camera, probe=True)
            others = subscribers - 1
            for n, loader in enumerate(loaders):  # as evenly as they go
                await loader.subscribe(others // len(loaders) + (n < others % len(loaders)), answer)
            await asyncio.sleep(3)  # connect, first key frames, encoders settle
            (cpu0, sent0, _), (frames0, load0), t0 = await server.ask("cpu"), await frames(), time.monotonic()
            probe.delays.clear()
            await asyncio.sleep(seconds)
            (cpu1, sent1, layers), (frames1, load1), t1 = await server.ask("cpu"), await frames(), time.monotonic()
        finally:
            await publisher.close()
            if probe is not None:
                await probe.pc.close()
            for loader in loaders:
                await loader.stop()
            await server.stop()
    elapsed = t1 - t0
    fps = sorted((b - a) / elapsed for a, b in zip(frames0, frames1, strict=True))
    cpu = (cpu1 - cpu0) / elapsed
    delays = probe.delays
    # (a viewer whose connection failed meanwhile is gone from the second count: only those in both count)
    packets = sum(sent1[p] - sent0[p] for p in sent0.keys() & sent1.keys()) / elapsed if sent0 is not None else None
    return Point(mode, subscribers, round(cpu, 4), round(cpu / subscribers, 4), round(fps[0], 1),
                 round(statistics.median(fps), 1), round(statistics.median(delays), 1) if delays else None,
                 round(packets, 1) if packets is not None else None,
                 round(cpu / packets * 1e6, 2) if packets else None, layers, round((load1 - load0) / elapsed, 3))


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
            (cpu0, *_), t0 = await server.ask("cpu"), time.monotonic()
            await asyncio.sleep(seconds)
            (cpu1, *_), t1 = await server.ask("cpu"), time.monotonic()
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
    # What no Python receive path goes below, at the rate the publisher sent to the fewest subscribers.
    fewest = next(p for p in points if p.mode == "relay" and p.subscribers == min(sizes))
    if fewest.packets_per_second:
        rate = fewest.packets_per_second / fewest.subscribers
        floor = await wakeup_floor(rate, seconds)
        floor["relay_subscribers"] = fewest.subscribers
        floor["relay_cpu_ratio_to_floor"] = round(fewest.cpu_per_second / floor["cpu_per_second"], 2) \
            if floor["cpu_per_second"] else None
        result["wakeup_floor"] = floor
        # The least a relay of our own below aiortc would pay at each size: SRTP in and out, headers, sends.
        result["forwarding_floor"] = []
        for size in sizes:
            bare = await wakeup_floor(rate, seconds, viewers=size)
            ours = next(p for p in points if p.mode == "relay" and p.subscribers == size)
            bare["relay_cpu_ratio_to_floor"] = round(ours.cpu_per_second / bare["cpu_per_second"], 2) \
                if bare["cpu_per_second"] else None
            result["forwarding_floor"].append(bare)
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
        if "wakeup_floor" in result:
            floor = result["wakeup_floor"]
            print(f"the floor, a process woken for each of {floor['packets_per_second']} packets a second and doing "
                  f"nothing with them: {floor['cpu_per_second']} CPU-s/s ({floor['cpu_us_per_packet']} µs a packet); "
                  f"the relay at {floor['relay_subscribers']} subscriber(s): {floor['relay_cpu_ratio_to_floor']} "
                  f"times that")
        for bare in result.get("forwarding_floor", []):
            print(f"the floor of forwarding below aiortc to {bare['viewers']} viewer(s) (SRTP in and out, headers, "
                  f"sends; no ICE, DTLS or RTCP): {bare['cpu_per_second']} CPU-s/s, {bare['cpu_per_viewer']} a "
                  f"viewer; the relay: {bare['relay_cpu_ratio_to_floor']} times that")
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
