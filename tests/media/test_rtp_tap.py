"""Behavioural guards for media/rtp_tap.py, the one place that bends aiortc's internals for RTP packets,
with real aiortc peers on loopback: camera -> relay_in (packets tapped) -> relay_out (packets sent with
rewritten headers) -> viewer (decodes). An aiortc upgrade that moves what the module relies on fails here."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import av
import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

from media.layers import StreamReport
from media.passthrough import EncodedFrame, tap_receiver
from media.rtp_forward import PacketOutput, PacketSource
from media.rtp_rewrite import SourcePacket, vp8_descriptor
from media.rtp_tap import PacketSender, TappedPacket, request_keyframe, tap_packets

from ..support.peers import PatternTrack, palette_index, until


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def only(codec: str, transceiver) -> None:  # type: ignore[no-untyped-def]
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities(transceiver.kind).codecs
                                     if c.mimeType.lower() in (f"{transceiver.kind}/{codec}".lower(), "video/rtx")])


def receiver_of(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpReceiver:
    return next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)


@dataclass
class Chain:
    camera: RTCPeerConnection
    relay_in: RTCPeerConnection
    relay_out: RTCPeerConnection
    viewer: RTCPeerConnection
    camera_sender: RTCRtpSender
    sender: PacketSender
    output: PacketOutput
    source: PacketSource | None = None
    viewer_tracks: list[MediaStreamTrack] = field(default_factory=list)
    viewer_frames: list[EncodedFrame] = field(default_factory=list)


@asynccontextmanager
async def chain(kind: str, codec: str, clock_rate: int, *, viewer_taps_frames: bool = False,
                ) -> AsyncIterator[Chain]:
    """The camera's packets tapped on relay_in, forwarded packet by packet through relay_out's sender."""
    pcs = camera, relay_in, relay_out, viewer = [RTCPeerConnection() for _ in range(4)]
    try:
        camera_t = camera.addTransceiver(PatternTrack() if kind == "video" else AudioStreamTrack(),
                                         direction="sendonly")
        only(codec, camera_t)
        out_t = relay_out.addTransceiver(kind, direction="sendonly")
        only(codec, out_t)
        sender = PacketSender(out_t.sender)
        c = Chain(camera, relay_in, relay_out, viewer, camera_t.sender, sender,
                  PacketOutput(sender, kind, codec, clock_rate))

        @relay_in.on("track")
        def on_in(track: MediaStreamTrack) -> None:
            receiver = receiver_of(relay_in, track)
            c.source = PacketSource("camera", kind, lambda ssrc: request_keyframe(receiver, ssrc))
            tap_packets(receiver, c.source.deliver)
            c.output.select(c.source)

        @viewer.on("track")
        def on_view(track: MediaStreamTrack) -> None:
            if viewer_taps_frames:
                tap_receiver(receiver_of(viewer, track), c.viewer_frames.append)
            c.viewer_tracks.append(track)

        await asyncio.gather(negotiate(camera, relay_in), negotiate(relay_out, viewer))
        yield c
    finally:
        await asyncio.gather(*(pc.close() for pc in pcs))


async def test_a_tapped_receiver_hands_out_packets_as_they_arrive_and_builds_no_frames(
        decoders_made: list[str]) -> None:
    """Every RTP packet comes out at once, parsed, in sequence, with its codec; no frame is assembled for
    the decoder (the track yields nothing, no decoder is made), and the receiver still reports upstream:
    the camera's sender sees receiver reports counting the packets."""
    tapped: list[TappedPacket] = []
    before = set(threading.enumerate())
    camera, relay = RTCPeerConnection(), RTCPeerConnection()
    try:
        camera_sender = camera.addTrack(PatternTrack())
        received: list[MediaStreamTrack] = []

        @relay.on("track")
        def on_in(track: MediaStreamTrack) -> None:
            tap_packets(receiver_of(relay, track), tapped.append)
            received.append(track)
        await negotiate(camera, relay)
        await until(lambda: len(tapped) >= 30)
        first = tapped[0]
        assert (first.codec, first.clock_rate) == ("VP8", 90_000)
        assert first.packet.payload[0] & 0x10, "the stream starts at a partition start"
        seqs = [t.packet.sequence_number for t in tapped]
        assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(received[0].recv(), 0.5)

        async def reported() -> bool:
            stats = await camera_sender.getStats()
            return any(s.type == "remote-inbound-rtp" and s.packetsReceived > 0 for s in stats.values())
        for _ in range(60):
            if await reported():
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("no receiver report reached the camera")
    finally:
        await asyncio.gather(camera.close(), relay.close())
    assert decoders_made == []
    idle = [t for t in set(threading.enumerate()) - before if t.name == "video-decoder"]
    assert not any(t.is_alive() for t in idle), "closing released the idle decoder thread"


@pytest.mark.parametrize(("codec", "clock_rate"), [("VP8", 90_000), ("H264", 90_000)])
async def test_forwarded_packets_are_decoded_by_the_far_peer(codec: str, clock_rate: int) -> None:
    """Packets taken off one connection and sent, rewritten, on another's sender reach the viewer under
    that sender's SSRC and decode into the camera's pictures, frame after frame. The viewer's receiver
    reports reach aiortc's own handler and its sender reports carry our packet counts."""
    async with chain("video", codec, clock_rate) as c:
        await until(lambda: c.viewer_tracks, 10)
        track = c.viewer_tracks[0]
        frames = [await asyncio.wait_for(track.recv(), 10) for _ in range(40)]
        assert all(isinstance(f, av.VideoFrame) and (f.width, f.height) == (320, 240) for f in frames)
        assert sum(palette_index(f) is not None for f in frames) >= 35, "the camera's colours, decoded"
        receiver = receiver_of(c.viewer, track)
        assert {s.source for s in receiver.getSynchronizationSources()} == {c.sender.ssrc}
        assert c.sender.sent > 0 and c.output.rewriter.forwarded == c.sender.sent

        async def both_reports() -> bool:
            out_stats = (await c.relay_out.getSenders()[0].getStats()).values()
            in_stats = (await receiver.getStats()).values()
            return any(s.type == "remote-inbound-rtp" and s.packetsReceived > 0 for s in out_stats) and \
                any(s.type == "remote-outbound-rtp" and s.packetsSent > 0 for s in in_stats)
        for _ in range(60):
            if await both_reports():
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("receiver and sender reports did not both go through")


async def test_forwarded_opus_plays_at_the_far_peer() -> None:
    """Audio packets forwarded the same way come out of the viewer's decoder as sound frames."""
    async with chain("audio", "opus", 48_000) as c:
        await until(lambda: c.viewer_tracks, 10)
        frames = [await asyncio.wait_for(c.viewer_tracks[0].recv(), 10) for _ in range(20)]
        assert all(isinstance(f, av.AudioFrame) and f.sample_rate == 48_000 for f in frames)


async def test_a_viewers_nack_is_answered_from_the_publishers_cache() -> None:
    """A packet the relay never sent (as if lost) is NACKed by the viewer, found in the publisher's cache
    through the rewrite, and retransmitted as RTX: the viewer ends up with that very frame."""
    async with chain("video", "VP8", 90_000, viewer_taps_frames=True) as c:
        offer, withheld = c.output.offer, []
        nacked: list[int] = []
        answer = c.output.nacked

        def lose_one(source: PacketSource, packet: SourcePacket, arrived: float, ntp: int) -> None:
            payload = packet.head + packet.tail
            if not withheld and source.packets > 30 and packet.marker and payload[0] & 0x10:
                out = c.output.rewriter.forward(source.name, packet, arrived)
                assert out is not None
                withheld.append((out[0], payload[vp8_descriptor(payload).size:]))  # a whole frame in one packet
                return
            offer(source, packet, arrived, ntp)

        def spy(seqs: list[int]) -> None:
            nacked.extend(seqs)
            answer(seqs)
        c.output.offer = lose_one  # type: ignore[method-assign]
        c.sender.on_nack = spy
        await until(lambda: withheld and c.sender.retransmitted, 10)
        assert withheld[0][0] in nacked
        await until(lambda: any(f.data == withheld[0][1] for f in c.viewer_frames), 5)


async def test_a_paused_output_is_offered_nothing_and_resumes_at_a_key_frame() -> None:
    """A viewer's stream that forwards nothing (its video paused) leaves its source's fan-out, so the relay
    does no work for it per packet; selected again, it is back in it, asks for a key frame and the viewer
    decodes on, on the same stream."""
    async with chain("video", "VP8", 90_000) as c:
        await until(lambda: c.viewer_tracks and c.sender.sent > 10, 10)
        track = c.viewer_tracks[0]
        await asyncio.wait_for(track.recv(), 10)
        assert c.source is not None and c.output in c.source.outputs
        c.output.select(None)
        assert c.output not in c.source.outputs
        sent, packets = c.sender.sent, c.source.packets
        await until(lambda: c.source.packets > packets + 20, 5)
        assert c.sender.sent == sent, "nothing was forwarded while paused"
        requests = c.source.keyframe_requests
        c.output.select(c.source)
        assert c.output in c.source.outputs
        await until(lambda: c.sender.sent > sent + 10, 10)
        assert c.source.keyframe_requests > requests
        frames = [await asyncio.wait_for(track.recv(), 10) for _ in range(5)]
        assert {f.width for f in frames} == {320}


async def test_padding_on_a_paused_stream_is_reported_on_sent_again_when_nacked_and_the_video_goes_on() -> None:
    """While a viewer's video is paused the relay may send padding-only packets on its stream: the viewer's
    receiver reports count them (what the layer choice learns the link from), one the viewer lacks is
    sent again when it NACKs it (aiortc's receiver would otherwise wait on it), and the video that
    resumes after them is assembled into frames."""
    async with chain("video", "VP8", 90_000, viewer_taps_frames=True) as c:
        reports: list[StreamReport] = []
        nacked: list[int] = []
        heard, answer, pad = c.sender.on_report, c.sender.on_nack, c.sender.pad

        def spy_report(report: StreamReport) -> None:
            reports.append(report)
            heard(report)

        def spy_nack(seqs: list[int]) -> None:
            nacked.extend(seqs)
            answer(seqs)
        padded: list[int] = []

        def lose_the_fifth(seq: int, timestamp: int) -> None:
            padded.append(seq)
            if len(padded) != 5:
                pad(seq, timestamp)
        c.sender.on_report, c.sender.on_nack, c.sender.pad = spy_report, spy_nack, lose_the_fifth  # type: ignore[method-assign]
        await until(lambda: len(c.viewer_frames) > 10, 10)
        assert c.output.pad() is False, "not while it forwards"
        c.output.select(None)
        for _ in range(20):
            assert c.output.pad()
            await asyncio.sleep(0.05)
        await until(lambda: any(r.highest % 65536 == padded[-1] for r in reports), 5)
        assert padded[4] in nacked and c.sender.retransmitted >= 1
        frames = len(c.viewer_frames)
        c.output.select(c.source)
        await until(lambda: len(c.viewer_frames) > frames + 10, 10)


async def test_a_viewers_keyframe_request_reaches_the_publisher() -> None:
    """PLI from the viewer to relay_out's sender is passed upstream as a PLI for the camera's stream, and
    the camera's sender is asked for a key frame."""
    async with chain("video", "VP8", 90_000) as c:
        asked: list[None] = []
        force = c.camera_sender._send_keyframe

        def spy() -> None:
            asked.append(None)
            force()
        c.camera_sender._send_keyframe = spy  # type: ignore[method-assign]
        await until(lambda: c.viewer_tracks and c.sender.sent > 10, 10)
        await asyncio.sleep(0.6)  # past the rate limit of the first request
        before = len(asked)
        await receiver_of(c.viewer, c.viewer_tracks[0])._send_rtcp_pli(c.sender.ssrc)
        await until(lambda: len(asked) > before, 5)


async def test_the_viewer_decodes_on_across_a_switch_of_source_without_a_gap() -> None:
    """Switching a viewer's stream to another camera (a smaller picture, its own SSRC, sequence numbers
    and timestamps) happens at that camera's key frame and is seamless to the viewer: same SSRC, no
    sequence gap for it to NACK, and its decoder goes straight on with the new camera's pictures."""
    async with chain("video", "VP8", 90_000) as c:
        second, second_in = RTCPeerConnection(), RTCPeerConnection()
        try:
            only("VP8", second.addTransceiver(PatternTrack(160, 120), direction="sendonly"))
            sources: list[PacketSource] = []

            @second_in.on("track")
            def on_in(track: MediaStreamTrack) -> None:
                receiver = receiver_of(second_in, track)
                sources.append(PacketSource("second", "video", lambda ssrc: request_keyframe(receiver, ssrc)))
                tap_packets(receiver, sources[0].deliver)
            nacked: list[int] = []
            answer = c.output.nacked

            def spy(seqs: list[int]) -> None:
                nacked.extend(seqs)
                answer(seqs)
            c.sender.on_nack = spy
            await negotiate(second, second_in)
            await until(lambda: c.viewer_tracks and sources and sources[0].packets > 10, 10)
            track = c.viewer_tracks[0]
            assert (await asyncio.wait_for(track.recv(), 10)).width == 320
            c.output.select(sources[0])
            sizes = [(f.width, f.height) for f in [await asyncio.wait_for(track.recv(), 10) for _ in range(60)]]
            assert sizes[-1] == (160, 120), sizes
            switch = sizes.index((160, 120))
            assert set(sizes[switch:]) == {(160, 120)}, "no picture of the first camera after the switch"
            assert c.output.rewriter.current.source == "second" and sources[0].keyframe_requests >= 1
            receiver = receiver_of(c.viewer, track)
            assert {s.source for s in receiver.getSynchronizationSources()} == {c.sender.ssrc}
            assert nacked == [], "the viewer saw no gap in sequence numbers"
        finally:
            await asyncio.gather(second.close(), second_in.close())


async def test_a_remb_naming_several_streams_is_heard_once_by_the_stream_named_first() -> None:
    """A browser's REMB estimates its whole link and names every stream it gets; aiortc's RTP router hands
    it to each sender it names. Only the sender named first passes the estimate on, so the relay weighs
    one REMB once (it compares the estimate with all it sent the viewer since the REMB before)."""
    relay_out, viewer = RTCPeerConnection(), RTCPeerConnection()
    try:
        senders = [PacketSender(relay_out.addTransceiver("video", direction="sendonly").sender) for _ in range(2)]
        heard: list[tuple[int, int]] = []
        for index, sender in enumerate(senders):
            sender.on_estimate = lambda bps, index=index: heard.append((index, bps))  # type: ignore[misc]
        await negotiate(relay_out, viewer)
        for sender in senders:
            await asyncio.wait_for(sender.wait_ready(), 10)
        receiver = viewer.getTransceivers()[0].receiver
        await until(lambda: relay_out.connectionState == "connected", 10)

        async def remb(bitrate: int, first: int, second: int) -> None:
            await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1234, media_ssrc=0,
                                                     fci=pack_remb_fci(bitrate, [senders[first].ssrc,
                                                                                 senders[second].ssrc])))
        await remb(250_000, 0, 1)
        await until(lambda: heard, 5)
        await remb(400_000, 1, 0)
        await until(lambda: len(heard) >= 2, 5)
        await asyncio.sleep(0.3)  # time for any second delivery of either to arrive
        assert heard == [(0, 250_000), (1, 400_000)]
    finally:
        await asyncio.gather(relay_out.close(), viewer.close())
