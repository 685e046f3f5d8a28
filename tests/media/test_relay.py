"""Real aiortc peers through the relay: every subscriber decodes the publisher's pattern, forwarded packet
by packet (nothing decoded, encoded or assembled into frames in between), and a late joiner gets a key
frame at once."""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator, Callable

import pytest
from aiortc import RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_FIR, RtcpPsfbPacket, RtcpSrPacket

from media import passthrough, rtp_forward
from media.errors import NegotiationFailed, NotInRelay
from media.load_camera import LoadCamera
from media.passthrough import EncodedFrame
from media.recorder import vp8_size
from media.relay import Relay
from media.rtp_forward import PacketOutput

from ..support.peers import PALETTE, RelayClient, palette_index, until

SLOTS = 3


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, dict[str, RelayClient]]]:
    clients: dict[str, RelayClient] = {}
    relay = Relay(on_layout=lambda pid, layout: clients[pid].on_layout(layout))
    yield relay, clients
    await relay.close()
    await asyncio.gather(*(c.close() for c in clients.values()))


async def _join(relay: Relay, clients: dict[str, RelayClient], pid: str, *, camera: bool,
                video_codec: str | None = None) -> RelayClient:
    client = clients[pid] = RelayClient(pid, slots=SLOTS, camera=camera, video_codec=video_codec)
    await client.join(relay)
    return client


async def test_one_publisher_three_subscribers_each_decode_the_pattern(relay) -> None:
    """Three subscribers each decode the publisher's colour cycle intact: every frame is one of the
    palette's colours (no corruption from forwarding) and the colours change (live, not one frozen frame).
    The relay forwarded packets and assembled no frame, as nobody was recording."""
    relay_, clients = relay
    await _join(relay_, clients, "doctor", camera=True)
    subscribers = [await _join(relay_, clients, f"viewer{i}", camera=False) for i in range(3)]

    seen = await asyncio.gather(*(s.decoded_pattern("doctor", 45) for s in subscribers))

    for pattern in seen:
        assert None not in pattern, pattern
        assert len(set(pattern)) >= 2, pattern
    peer = relay_.peers["doctor"]
    source = peer.sources["high"]
    assert source.packets >= 45 and source.codec == "VP8"
    assert all(len(pattern) == 45 for pattern in seen)
    assert set(PALETTE) and peer.publications["video"].frames == 0
    for viewer in (f"viewer{i}" for i in range(3)):
        slot = next(s for s in relay_.peers[viewer].slots if s.owner == "doctor")
        assert slot.video.selected is source and slot.video.rewriter.forwarded >= 45


async def test_late_joiner_gets_a_keyframe_within_a_second(relay) -> None:
    """Once the publisher's encoder has stopped sending key frames, a newcomer still sees video within a
    second of connecting: the relay gates it to a key frame and asks the publisher for one."""
    relay_, clients = relay
    await _join(relay_, clients, "doctor", camera=True)
    early = await _join(relay_, clients, "early", camera=False)
    await early.decoded_pattern("doctor", 60)  # two seconds in: the encoder has long warmed up
    source = relay_.peers["doctor"].sources["high"]
    requests_before = source.keyframe_requests

    late = await _join(relay_, clients, "late", camera=False)
    await late.wait_for_slot("doctor")
    first = await asyncio.wait_for(late.video_of("doctor").recv(), 5)
    loop = asyncio.get_running_loop()
    assert late.connected_at is not None
    assert loop.time() - late.connected_at < 1.0
    assert palette_index(first) is not None
    assert source.keyframe_requests > requests_before


async def test_leaving_frees_the_slot_and_others_keep_flowing(relay) -> None:
    """A participant who leaves is taken out of everyone's layout; the remaining streams go on."""
    relay_, clients = relay
    await _join(relay_, clients, "doctor", camera=True)
    await _join(relay_, clients, "specialist", camera=True)
    patient = await _join(relay_, clients, "patient", camera=True)
    await patient.wait_for_slot("doctor")
    await patient.wait_for_slot("specialist")

    await relay_.remove("specialist")
    assert "specialist" not in patient.layout.values()
    assert "specialist" not in clients["doctor"].layout.values()
    pattern = await patient.decoded_pattern("doctor", 30)
    assert None not in pattern


async def test_h264_room_forwards_h264_untouched() -> None:
    """A relay pinned to H.264 answers H.264 even to peers that would rather send VP8 (aiortc offers VP8
    first, as Chromium does), and its subscribers decode the publisher's pattern from H.264 frames."""
    clients: dict[str, RelayClient] = {}
    relay_ = Relay(video_codec="h264", on_layout=lambda pid, layout: clients[pid].on_layout(layout))
    try:
        await _join(relay_, clients, "doctor", camera=True)
        subscribers = [await _join(relay_, clients, f"viewer{i}", camera=False) for i in range(2)]
        seen = await asyncio.gather(*(s.decoded_pattern("doctor", 45) for s in subscribers))
        assert relay_.peers["doctor"].sources["high"].codec == "H264"
        for pattern in seen:
            assert None not in pattern and len(set(pattern)) >= 2, pattern
        for client in clients.values():
            video = [t for t in client.pc.getTransceivers() if t.kind == "video"]
            assert all(c.mimeType in ("video/H264", "video/rtx") for t in video for c in t._codecs)
    finally:
        await relay_.close()
        await asyncio.gather(*(c.close() for c in clients.values()))


async def test_the_relay_asks_every_sender_for_opus_with_fec_and_dtx(relay) -> None:
    """Each audio section of the relay's answer asks for in-band FEC and DTX, so lost audio is rebuilt from
    the next packet and silence costs next to nothing, on the publisher's leg and every viewer's."""
    relay_, clients = relay
    client = await _join(relay_, clients, "doctor", camera=True)
    answer = client.pc.remoteDescription.sdp
    opus = re.search(r"a=rtpmap:(\d+) opus/48000", answer)
    assert opus is not None
    fmtps = re.findall(rf"a=fmtp:{opus.group(1)} (.*)", answer)
    assert len(fmtps) == 1 + SLOTS  # the microphone's section and each slot's
    assert all("useinbandfec=1" in f and "usedtx=1" in f for f in fmtps), fmtps


async def test_a_recording_begun_mid_stream_gets_whole_frames_from_a_key_frame_on(relay) -> None:
    """Frames are assembled only while a recording takes them, from a fresh jitter buffer; begun while a
    frame of many packets is in flight, it must start at a key frame's first packet: the first frame the
    recorder gets is a whole key frame of the camera's size, never the tail of one."""
    relay_, clients = relay
    doctor = RelayClient("doctor", slots=SLOTS)
    clients["doctor"] = doctor
    camera = next(t.sender for t in doctor.pc.getTransceivers() if t.sender.track is doctor.camera)
    camera.replaceTrack(LoadCamera(640, 480, noise=True))  # frames of a dozen packets or more
    await doctor.join(relay_)
    await until(lambda: "high" in relay_.peers["doctor"].sources
                and relay_.peers["doctor"].sources["high"].packets > 100)
    publication = relay_.peers["doctor"].publications["video"]
    frames: list[EncodedFrame] = []
    for _ in range(3):  # three starts, each at a moment the stream is mid-frame more often than not
        frames.clear()
        publication.sinks.add(frames.append)
        publication.request_keyframe()
        await until(lambda: len(frames) >= 2)
        publication.sinks.discard(frames.append)
        await asyncio.sleep(0.2)  # frames stop being assembled; the next start is afresh
        assert frames[0].keyframe and vp8_size(frames[0].data) == (640, 480), frames[0].data[:10]


async def test_offer_without_the_rooms_codec_is_refused_clearly(relay) -> None:
    """A browser that cannot send the room's codec is told so; the relay and the others go on."""
    relay_, clients = relay
    doctor = await _join(relay_, clients, "doctor", camera=True)
    stranger = clients["h264-only"] = RelayClient("h264-only", slots=SLOTS, video_codec="H264")
    with pytest.raises(NegotiationFailed, match="VP8 video"):
        await stranger.join(relay_)
    assert "h264-only" not in relay_.peers
    viewer = await _join(relay_, clients, "viewer", camera=False)
    assert None not in await viewer.decoded_pattern("doctor", 15)
    assert doctor.participant_id in relay_.peers


async def test_an_offer_that_is_not_sdp_is_refused_and_the_connection_kept(relay) -> None:
    """aiortc would answer "hello" with an SDP with no media: the relay says NegotiationFailed instead,
    and a participant's working connection survives its bad offer."""
    relay_, clients = relay
    client = await _join(relay_, clients, "doctor", camera=True)
    peer = relay_.peers["doctor"]
    for junk in ("hello", "", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"):
        with pytest.raises(NegotiationFailed):
            await relay_.answer("doctor", junk)
    assert relay_.peers["doctor"] is peer and client.pc.connectionState != "closed"


async def test_a_candidate_before_any_offer_is_refused_even_the_last(relay) -> None:
    """End of candidates (None) from someone with no connection is an error too, not silence."""
    relay_, _ = relay
    for candidate in (None, "", "candidate:1 1 udp 1 127.0.0.1 5000 typ host"):
        with pytest.raises(NotInRelay):
            await relay_.add_candidate("nobody", candidate, "0", 0)


# ---- key frame requests: a subscriber's PLI or FIR reaches the relay, and the relay asks the publisher ----


async def send_pli(receiver: RTCRtpReceiver) -> None:
    await passthrough.request_keyframe(receiver)


async def send_fir(receiver: RTCRtpReceiver) -> None:
    # As aiortc routes it, by the media source SSRC; the FCI names the same SSRC and a sequence number.
    ssrc = max(receiver.getSynchronizationSources(), key=lambda s: s.timestamp).source
    await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_FIR, ssrc=1, media_ssrc=ssrc,
                                             fci=struct.pack("!LB3x", ssrc, 1)))


@pytest.mark.parametrize("send_feedback", [send_pli, send_fir], ids=["PLI", "FIR"])
async def test_a_subscribers_keyframe_request_reaches_the_relay_and_then_the_publisher(
        send_feedback: Callable[[RTCRtpReceiver], object], monkeypatch: pytest.MonkeyPatch) -> None:
    """PLI or FIR sent over the wire to the relay's sender for a slot reaches that slot's packet output
    (media/rtp_tap.py's feedback hook), and the relay passes it on to the publisher as a PLI: a subscriber
    that lost a picture gets a key frame, not a frozen slot."""
    monkeypatch.setattr(rtp_forward, "KEYFRAME_REQUEST_INTERVAL", 0)  # pass every request on, to count them
    wanted: list[PacketOutput] = []
    keyframe_wanted = PacketOutput.keyframe_wanted

    def spy(output: PacketOutput) -> None:
        wanted.append(output)
        keyframe_wanted(output)
    monkeypatch.setattr(PacketOutput, "keyframe_wanted", spy)

    clients: dict[str, RelayClient] = {}
    relay = Relay(on_layout=lambda pid, layout: clients[pid].on_layout(layout))
    doctor = clients["doctor"] = RelayClient("doctor", slots=1)
    viewer = clients["viewer"] = RelayClient("viewer", slots=1, camera=False)
    camera_sender = next(t.sender for t in doctor.pc.getTransceivers() if t.sender.track is doctor.camera)
    asked: list[None] = []
    force_keyframe = camera_sender._send_keyframe

    def publisher_asked() -> None:
        asked.append(None)
        force_keyframe()
    passthrough.on_keyframe_request(camera_sender, publisher_asked)
    try:
        await doctor.join(relay)
        await viewer.join(relay)
        await viewer.wait_for_slot("doctor")
        seen = viewer.video_of("doctor")
        receiver = next(t.receiver for t in viewer.pc.getTransceivers() if t.receiver.track is seen)
        await until(lambda: receiver.getSynchronizationSources())
        slot_track = relay.peers["viewer"].slots[0].video
        wanted_before, asked_before = len(wanted), len(asked)

        await send_feedback(receiver)
        await until(lambda: len(wanted) > wanted_before and len(asked) > asked_before)
        assert slot_track in wanted[wanted_before:]
    finally:
        await relay.close()
        await asyncio.gather(*(c.close() for c in clients.values()))


async def test_viewers_get_the_publishers_own_sender_reports_in_their_streams_timestamps(relay) -> None:
    """Lip sync: the sender reports a viewer gets for a publisher's audio and video carry the publisher's
    own NTP times, with the RTP timestamps moved by exactly the offset the relay applies to that stream,
    so the viewer lines audio up with video as the publisher had them (not as the relay forwarded them)."""
    relay_, clients = relay
    await _join(relay_, clients, "doctor", camera=True)
    viewer = await _join(relay_, clients, "viewer", camera=False)
    await viewer.wait_for_slot("doctor")
    heard: dict[int, list[tuple[int, int]]] = {}
    for transceiver in viewer.pc.getTransceivers():
        receiver = transceiver.receiver
        handle = receiver._handle_rtcp_packet

        async def spy(packet, handle=handle) -> None:  # type: ignore[no-untyped-def]
            if isinstance(packet, RtcpSrPacket):
                heard.setdefault(packet.ssrc, []).append(
                    (packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp))
            await handle(packet)
        receiver._handle_rtcp_packet = spy
    slot = next(s for s in relay_.peers["viewer"].slots if s.owner == "doctor")
    outputs = {"audio": slot.audio, "video": slot.video}
    published: dict[str, dict[int, int]] = {"audio": {}, "video": {}}  # the publisher's reports: NTP -> RTP
    def matched(kind: str) -> bool:
        output = outputs[kind]
        if output.selected is not None and output.selected.reported is not None:  # (sent about once a second)
            ntp, rtp = output.selected.reported
            published[kind][ntp] = rtp
        offset = output.rewriter.current.ts_offset if output.rewriter.current is not None else None
        return offset is not None and any(
            ntp in published[kind] and rtp == (published[kind][ntp] + offset) % (1 << 32)
            for ntp, rtp in heard.get(output.sender.ssrc, []))
    await until(lambda: matched("audio") and matched("video"), seconds=15)
