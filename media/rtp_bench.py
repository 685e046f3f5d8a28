"""Added latency per relay hop: the relay's packet forwarding (media/relay.py) against the frame-level
forwarding it replaced (media/forwarding.py), each against a direct connection at the same moment.
``python -m media.rtp_bench [--seconds S] [--subscribers N] [--json]``
(``--per-viewer N``: only the per-viewer path's CPU, for N viewers, in process.)

The method of ``telemed bench relay`` (media/bench.py, whose numbered camera it reuses), made robust to
a busy machine: one camera's 640x480 30 fps frames, whose top rows spell the frame number, go to two
publishers that each encode VP8; one sends straight to a *direct probe*, the other through the server
(in a process of its own) to a *relayed probe*. Both probes decode and note when each numbered frame
came out, so a frame's added latency is its relayed time minus its own direct time, measured side by side
under the same load. The report gives the median and p99 of that, the server's CPU, and the per-packet
CPU of each step of the packet path (:func:`per_packet_costs`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from .bench import (
    BITS,
    NumberedCamera,
    PipedProcess,
    Subscriber,
    _config,
    _connect,
    _subscriber,
    frame_publication,
    frame_subscription,
    read_number,
)

MODES = ("frames", "packets")


def _server_main(conn: Connection, kind: str) -> None:
    asyncio.run(_serve(conn, kind))


async def _serve(conn: Connection, kind: str) -> None:
    """``packets``: the relay itself (media/relay.py); ``frames``: the frame-level forwarding it replaced."""
    from .relay import Relay

    loop = asyncio.get_running_loop()
    relay = Relay()
    pcs: list[RTCPeerConnection] = []
    publication: asyncio.Future[Any] = loop.create_future()
    while True:
        request, *args = await loop.run_in_executor(None, conn.recv)
        if kind == "packets" and request in ("publish", "subscribe"):
            name = "publisher" if request == "publish" else f"s{len(relay.peers)}"
            conn.send(await relay.answer(name, args[0]))
        elif request in ("publish", "subscribe"):
            pc = RTCPeerConnection(_config())
            pcs.append(pc)
            if request == "publish":
                @pc.on("track")
                def on_track(track: Any, pc: RTCPeerConnection = pc) -> None:
                    if track.kind == "video" and not publication.done():
                        publication.set_result(frame_publication(pc, track))
            await pc.setRemoteDescription(RTCSessionDescription(args[0], "offer"))
            if request == "subscribe":
                frame_subscription(pc, await publication)
            await pc.setLocalDescription(await pc.createAnswer())
            conn.send(pc.localDescription.sdp)
        elif request == "cpu":
            times = os.times()
            conn.send(times.user + times.system)
        elif request == "stop":
            await relay.close()
            for pc in pcs:
                await pc.close()
            conn.send("ok")
            return


class _Server(PipedProcess):
    def __init__(self, kind: str) -> None:
        super().__init__(f"the {kind} server", _server_main, kind)


@dataclass
class _Probe:
    """Decodes a stream and notes, by frame number, when each frame came out."""

    pc: RTCPeerConnection
    shown: dict[int, float] = field(default_factory=dict)

    def watch(self, track: Any) -> None:
        asyncio.ensure_future(self._read(track))

    async def _read(self, track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            self.shown.setdefault(read_number(frame), time.monotonic())


async def _through(kind: str, subscribers: int, seconds: float, warmup: float) -> dict[str, Any]:
    """One camera, two publishers of the same frames: one straight to a direct probe, one through a server
    forwarding ``kind`` to its probe (and ``subscribers - 1`` frame-counting subscribers). Both probes see
    the same frame numbers at the same moment of the machine's load, so each frame's added latency is its
    delay through the server minus its own delay on the direct connection."""
    server = _Server(kind)
    camera = NumberedCamera()
    fan = MediaRelay()  # the camera's frames to both publishers, each encoding its own copy
    publisher, direct_publisher = RTCPeerConnection(_config()), RTCPeerConnection(_config())
    publisher.addTransceiver(fan.subscribe(camera, buffered=False), direction="sendonly")
    direct_publisher.addTransceiver(fan.subscribe(camera, buffered=False), direction="sendonly")
    direct = _Probe(RTCPeerConnection(_config()))
    direct.pc.on("track", direct.watch)
    relayed = _Probe(RTCPeerConnection(_config()))
    relayed.pc.addTransceiver("audio", direction="recvonly")
    relayed.pc.addTransceiver("video", direction="recvonly")
    relayed.pc.on("track", lambda track: relayed.watch(track) if track.kind == "video" else None)
    subs: list[Subscriber] = []

    async def direct_answer(sdp: str) -> str:
        await direct.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await direct.pc.setLocalDescription(await direct.pc.createAnswer())
        return direct.pc.localDescription.sdp
    try:
        await _connect(publisher, lambda sdp: server.ask("publish", sdp))
        await _connect(direct_publisher, direct_answer)
        await asyncio.sleep(0.5)  # the publisher's track is known before anyone subscribes
        await _connect(relayed.pc, lambda sdp: server.ask("subscribe", sdp))
        for _ in range(subscribers - 1):
            subs.append(await _subscriber(lambda sdp: server.ask("subscribe", sdp), camera, probe=False))
        await asyncio.sleep(warmup)
        cpu0, frames0, t0 = await server.ask("cpu"), [s.frames for s in subs], time.monotonic()
        first = camera.count
        await asyncio.sleep(seconds)
        cpu1, frames1, t1 = await server.ask("cpu"), [s.frames for s in subs], time.monotonic()
        last = camera.count
    finally:
        for pc in (publisher, direct_publisher, direct.pc, relayed.pc, *(s.pc for s in subs)):
            await pc.close()
        await server.stop()
    window = range(first % (1 << BITS), last % (1 << BITS))
    made = {n: camera.made[n] for n in window if n in camera.made}
    via = [(relayed.shown[n] - made[n]) * 1000 for n in made if n in relayed.shown]
    straight = [(direct.shown[n] - made[n]) * 1000 for n in made if n in direct.shown]
    added = [(relayed.shown[n] - direct.shown[n]) * 1000 for n in made if n in relayed.shown and n in direct.shown]
    elapsed = t1 - t0
    fps = [(b - a) / elapsed for a, b in zip(frames0, frames1, strict=True)] + [len(via) / elapsed]
    return {"mode": kind, "frames": len(added), "direct_ms_median": _p(straight, 0.5),
            "direct_ms_p99": _p(straight, 0.99), "delay_ms_median": _p(via, 0.5), "delay_ms_p99": _p(via, 0.99),
            "added_ms_median": _p(added, 0.5), "added_ms_p99": _p(added, 0.99),
            "server_cpu_per_second": round((cpu1 - cpu0) / elapsed, 4), "fps_min": round(min(fps), 1)}


async def per_packet_costs(packets: int = 20_000, viewers: int = 100) -> dict[str, float]:
    """Microseconds of CPU per forwarded packet for each step of the path, in this process (no network):
    what a viewer's stream costs the relay beyond receiving, and what going below RTCPeerConnection could
    save at most (the parsing and bookkeeping aiortc does on receive).

    Paid once per publisher packet: ``srtp_unprotect_us``, ``rtp_parse_us``, ``aiortc_receiver_us``,
    ``shared_parse_us`` (what every viewer's copy is made from). Paid per viewer: ``forward_us`` (the
    rewrite), ``write_us`` (the packet's bytes), ``srtp_protect_us``, and all of it together as the relay
    runs it, ``viewer_us`` (``viewers`` streams fed the same packets, through their senders, protected on
    a stand-in transport that drops them). ``rewrite_us`` and ``serialize_us`` are the per-viewer steps as
    they were before ``forward`` (each viewer parsing the packet and building aiortc's RtpPacket)."""
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket
    from pylibsrtp import Policy, Session

    from .rtp_rewrite import SourcePacket, StreamRewriter
    from .rtp_wire import RtpWriter

    key = bytes(range(30))
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    extensions = HeaderExtensionsMap()
    payload = b"\x90\x80\x81\x02" + bytes(1100)
    wire = [tx.protect(RtpPacket(96, 0, seq, seq // 5 * 3000, 1234, payload).serialize()) for seq in range(packets)]
    plain = [RtpPacket(96, 0, seq, seq // 5 * 3000, 1234, payload).serialize() for seq in range(packets)]
    parsed = [RtpPacket.parse(data) for data in plain]
    rewriter, old_rewriter = StreamRewriter(99, "video", "VP8", 90_000), StreamRewriter(99, "video", "VP8", 90_000)
    rewriter.select("a")
    old_rewriter.select("a")
    shared = [SourcePacket.parse("VP8", p.sequence_number, p.timestamp, False, p.payload) for p in parsed[:1]]
    forwarded = [rewriter.forward("a", shared[0], 0.0)]
    old_rewriter.rewrite("a", 0, 0, False, payload, 0.0)
    writer = RtpWriter(96, 99, mid="1", mid_id=1, abs_send_time_id=2)

    def timed(step: Any) -> float:
        start = time.process_time()
        step()
        return round((time.process_time() - start) / packets * 1e6, 2)

    def parse_all() -> None:
        shared[:] = [SourcePacket.parse("VP8", p.sequence_number, p.timestamp, False, p.payload) for p in parsed]
    costs = {
        "srtp_unprotect_us": timed(lambda: [rx.unprotect(d) for d in wire]),
        "rtp_parse_us": timed(lambda: [RtpPacket.parse(d, extensions) for d in plain]),
        "shared_parse_us": timed(parse_all),
        "forward_us": timed(lambda: forwarded.extend(rewriter.forward("a", p, 0.0) for p in shared)),
        "write_us": timed(lambda: [writer.packet(f[0], f[1], p.marker, f[2], p.tail, None, 0)
                                   for f, p in zip(forwarded[1:], shared, strict=True) if f is not None]),
        "rewrite_us": timed(lambda: [old_rewriter.rewrite("a", p.sequence_number, p.timestamp, False, p.payload, 0.0)
                                     for p in parsed]),
        "serialize_us": timed(lambda: [p.serialize(extensions) for p in parsed]),
    }
    tx2 = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    costs["srtp_protect_us"] = timed(lambda: [tx2.protect(d) for d in plain])
    costs["aiortc_receiver_us"] = await _receiver_cost(parsed)
    costs["viewer_us"] = await _viewer_cost(parsed[:max(2, packets // viewers)], viewers)
    return costs


async def _viewer_cost(parsed: list[Any], viewers: int) -> float:
    """The whole per-viewer path as the relay runs it (media/rtp_forward.py's PacketSource handing each packet
    to every viewer's PacketOutput, whose PacketSender writes it to its transport), per packet and viewer:
    ``viewers`` real aiortc senders on a stand-in for their DTLS transport that SRTP-protects each packet as
    aiortc's does (its own session per viewer), then drops it instead of sending it."""
    from aiortc import RTCRtpSender
    from aiortc.rtcrtpparameters import (
        RTCRtpCodecParameters,
        RTCRtpHeaderExtensionParameters,
        RTCRtpSendParameters,
    )
    from pylibsrtp import Policy, Session

    from .rtp_forward import PacketOutput, PacketSource
    from .rtp_tap import PacketSender, TappedPacket

    class Transport:
        state = "connected"

        def __init__(self) -> None:
            self.session = Session(Policy(key=bytes(range(30)), ssrc_type=Policy.SSRC_ANY_OUTBOUND))

        async def _send_rtp(self, data: bytes) -> None:
            self.session.protect(data)

    async def nothing(ssrc: int) -> None:
        return None
    source = PacketSource("publisher", "video", nothing)
    parameters = RTCRtpSendParameters(
        codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96),
                RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90_000, payloadType=97,
                                      parameters={"apt": 96})],
        headerExtensions=[RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                          RTCRtpHeaderExtensionParameters(
                              id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")],
        muxId="1")
    senders = []
    for _ in range(viewers):
        sender = PacketSender(RTCRtpSender("video", Transport()))  # type: ignore[arg-type]
        sender._configure(parameters)  # what the peer connection's send(parameters) does once connected
        PacketOutput(sender, "video", "VP8", 90_000).select(source)
        senders.append(sender)
    start = 0.0
    for n, packet in enumerate(parsed):  # (each payload starts a key frame: every viewer starts at the first)
        source.deliver(TappedPacket("VP8", 90_000, packet, time.monotonic()))
        await asyncio.sleep(0)  # the senders' packets go out: SRTP protect
        if n == 0:
            start = time.process_time()
    cost = (time.process_time() - start) / (len(parsed) - 1) / viewers * 1e6
    assert all(s.sent == len(parsed) for s in senders)
    return round(cost, 2)


async def _receiver_cost(parsed: list[Any]) -> float:
    """What aiortc's RTCRtpReceiver does per packet with the tap in place (statistics, NACK tracking,
    bitrate estimate, depayloading), which a relay below RTCPeerConnection could trim."""
    from types import SimpleNamespace

    from aiortc import RTCRtpReceiver
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
    from aiortc.rtcrtpreceiver import RemoteStreamTrack

    from .rtp_tap import tap_packets

    async def nothing(*args: Any) -> None:
        return None
    transport = SimpleNamespace(state="connected", _register_rtp_receiver=lambda *args: None, _send_rtp=nothing,
                                _unregister_rtp_receiver=lambda *args: None,
                                _stats_id="bench")
    receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    receiver._track = RemoteStreamTrack(kind="video")
    await receiver.receive(RTCRtpReceiveParameters(codecs=[RTCRtpCodecParameters(
        mimeType="video/VP8", clockRate=90_000, payloadType=96)]))
    got: list[Any] = []
    tap_packets(receiver, got.append)
    start = time.process_time()
    for packet in parsed:
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
    cost = (time.process_time() - start) / len(parsed) * 1e6
    await receiver.stop()
    assert len(got) == len(parsed)
    return round(cost, 2)


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def bench(seconds: float = 5.0, subscribers: int = 1, warmup: float = 2.0) -> dict[str, Any]:
    rows = [await _through(kind, subscribers, seconds, warmup) for kind in MODES]
    return {"subscribers": subscribers, "seconds": seconds, "points": rows, "per_packet": await per_packet_costs(),
            "note": "added_ms: each frame's delay through the server minus the same frame's direct delay"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--subscribers", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--per-viewer", type=int, metavar="VIEWERS", default=0,
                        help="only the whole per-viewer path for this many viewers, 300 packets, in this process "
                             "(what to run under valgrind --tool=callgrind; see docs/benchmarks.md)")
    args = parser.parse_args(argv)
    if args.per_viewer:
        from aiortc.rtp import RtpPacket
        packets = [RtpPacket(96, 0, seq, seq // 5 * 3000, 1234, b"\x90\x80\x81\x02" + bytes(1100))
                   for seq in range(300)]
        print(f"{asyncio.run(_viewer_cost(packets, args.per_viewer))} us per packet and viewer")
        return 0
    result = asyncio.run(bench(args.seconds, args.subscribers))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        keys = list(dict.fromkeys(k for row in result["points"] for k in row))
        print("  ".join(f"{k:>21}" for k in keys))
        for row in result["points"]:
            print("  ".join(f"{row.get(k, '')!s:>21}" for k in keys))
        print("CPU per packet, microseconds:", result["per_packet"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
