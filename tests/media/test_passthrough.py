"""Guards the aiortc internals media/passthrough.py bends, by what they do between real peer connections in
one process (as aiortc's own tests run them): if an aiortc upgrade changes them, these fail by name instead
of the relay silently decoding, re-encoding or dropping every frame, or losing key frame requests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiortc
import av
import pytest
from aiortc import (
    AudioStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription

from media.passthrough import (
    EncodedFrame,
    is_keyframe,
    offered_direction,
    on_keyframe_request,
    pin_codec,
    request_keyframe,
    tap_receiver,
)

from ..support.peers import PatternTrack, until


@asynccontextmanager
async def peers(count: int = 2) -> AsyncIterator[list[RTCPeerConnection]]:
    pcs = [RTCPeerConnection() for _ in range(count)]
    try:
        yield pcs
    finally:
        await asyncio.gather(*(pc.close() for pc in pcs))


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection,
                    before_answer: Callable[[], None] = lambda: None) -> None:
    """Offer and answer; ``before_answer`` runs where the relay pins codecs and makes slots."""
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    before_answer()
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def tap_tracks(pc: RTCPeerConnection, deliver: Callable[[EncodedFrame], None]) -> list[RTCRtpReceiver]:
    """Tap each of ``pc``'s receivers on its ``track`` event, as the relay does; returns them as they come."""
    tapped: list[RTCRtpReceiver] = []

    @pc.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
        tap_receiver(receiver, deliver)
        tapped.append(receiver)
    return tapped


def only(codec: str, transceiver: RTCRtpTransceiver) -> None:
    """Offer just ``codec`` (and RTX) on ``transceiver``, as a browser limited to it would."""
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities(transceiver.kind).codecs
                                     if c.mimeType.lower() in (f"{transceiver.kind}/{codec}".lower(), "video/rtx")])


class PacketTrack(MediaStreamTrack):
    """Sends tapped frames on as av.Packets, the way ForwardedTrack does, with no timeline of its own."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.frames: asyncio.Queue[EncodedFrame] = asyncio.Queue()

    async def recv(self) -> av.Packet:  # type: ignore[override]
        return (await self.frames.get()).to_packet()


def test_aiortc_version_is_the_one_pinned() -> None:
    """pyproject.toml pins aiortc to the range these behaviours were checked against."""
    assert aiortc.__version__.startswith("1.16."), aiortc.__version__


@pytest.mark.parametrize(("codec", "data", "key"), [
    ("VP8", b"\x10\x02\x00\x9d\x01\x2a", True),  # P bit 0: key frame
    ("VP8", b"\x31\x02\x00", False),
    ("VP8", b"", False),
    ("H264", b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88", True),  # SPS then IDR
    ("H264", b"\x00\x00\x00\x01\x41\x9a", False),  # a non-IDR slice
    ("opus", b"\xfc", True),  # audio frames stand alone
])
def test_keyframe_detection(codec: str, data: bytes, key: bool) -> None:
    """Subscribers are gated to key frames: a frame counted as key that is not would show them garbage."""
    assert is_keyframe(codec, data) is key


# ---- receiving: frames come out encoded, and nothing is decoded ----


async def test_untapped_receiver_decodes(decoders_made: list[str]) -> None:
    """The control for the next test: without the tap, aiortc creates a VP8 decoder and the track yields
    pictures, so the spy is watching the place where aiortc decodes."""
    async with peers() as (camera, viewer):
        camera.addTrack(PatternTrack())
        tracks: list[MediaStreamTrack] = []
        viewer.on("track", tracks.append)
        await negotiate(camera, viewer)
        await until(lambda: tracks)
        assert isinstance(await asyncio.wait_for(tracks[0].recv(), 10), av.VideoFrame)
        assert decoders_made == ["VP8"]


async def test_tapped_receiver_hands_out_encoded_frames_and_its_decoder_thread_stays_idle(
        decoders_made: list[str]) -> None:
    """Frames come out whole and encoded, in order, the first a VP8 key frame; meanwhile no decoder is
    created and the track yields no picture. Closing releases the idle decoder thread, and the track ends."""
    frames: list[EncodedFrame] = []
    before = set(threading.enumerate())
    async with peers() as (camera, relay):
        camera.addTrack(PatternTrack())
        tapped = tap_tracks(relay, frames.append)
        await negotiate(camera, relay)
        await until(lambda: len(frames) >= 20)
        assert frames[0].codec == "VP8" and frames[0].keyframe and frames[0].clock_rate == 90_000
        assert [f.timestamp for f in frames] == sorted(f.timestamp for f in frames)
        track = tapped[0].track
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(track.recv(), 0.5)
        assert len(frames) > 20, "frames kept coming meanwhile"
        assert decoders_made == []
        decoder_threads = [t for t in set(threading.enumerate()) - before if t.name == "video-decoder"]
        assert len(decoder_threads) == 1 and decoder_threads[0].is_alive()
    assert not decoder_threads[0].is_alive()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 5)


# ---- sending: encoded frames go out as they came in ----


@pytest.mark.parametrize(("kind", "codec"), [("video", "VP8"), ("video", "H264"), ("audio", "opus")])
async def test_a_sender_given_packets_sends_them_unchanged(kind: str, codec: str) -> None:
    """Frames tapped from one connection and handed to another's sender as av.Packets reach the far end
    byte for byte, with the same key frames and spacing in time: packetized, never decoded or re-encoded."""
    tapped: list[EncodedFrame] = []
    received: list[EncodedFrame] = []
    forwarded = PacketTrack(kind)

    def keep_and_forward(frame: EncodedFrame) -> None:
        tapped.append(frame)
        forwarded.frames.put_nowait(frame)

    async with peers(4) as (camera, relay_in, relay_out, viewer):
        only(codec, camera.addTransceiver(PatternTrack() if kind == "video" else AudioStreamTrack(),
                                          direction="sendonly"))
        only(codec, relay_out.addTransceiver(forwarded, direction="sendonly"))
        tap_tracks(relay_in, keep_and_forward)
        tap_tracks(viewer, received.append)
        await asyncio.gather(negotiate(camera, relay_in), negotiate(relay_out, viewer))
        await until(lambda: len(received) >= 20, 20)

    assert {f.codec for f in received} == {codec}
    start = next(i for i, f in enumerate(tapped) if f.data == received[0].data)
    sent = tapped[start:start + len(received)]
    assert [f.data for f in received] == [f.data for f in sent]
    assert [f.keyframe for f in received] == [f.keyframe for f in sent]
    assert [f.timestamp - received[0].timestamp for f in received] == [f.timestamp - sent[0].timestamp
                                                                        for f in sent]


# ---- key frame requests ----


async def test_a_pli_sent_by_request_keyframe_fires_the_senders_keyframe_callback() -> None:
    """request_keyframe sends a PLI for the stream a receiver gets, and on_keyframe_request makes the far
    sender call back instead of flagging its (absent) encoder: the frame-level forwarding's two hooks."""
    asked: list[None] = []
    async with peers() as (camera, relay):
        sender = camera.addTrack(PatternTrack())
        on_keyframe_request(sender, lambda: asked.append(None))
        receivers = tap_tracks(relay, lambda frame: None)
        await negotiate(camera, relay)
        await until(lambda: receivers and receivers[0].getSynchronizationSources())
        await request_keyframe(receivers[0])
        await until(lambda: asked)
    assert asked


# ---- negotiation: codec pinning and offered directions ----


async def test_pinned_codec_is_the_only_one_answered_and_the_one_that_flows() -> None:
    """aiortc offers VP8 before H.264; an answerer that pins H.264 answers H.264 (one variant) and its RTX
    only, and the frames that arrive are H.264."""
    frames: list[EncodedFrame] = []
    async with peers() as (camera, relay):
        camera.addTrack(PatternTrack())
        tap_tracks(relay, frames.append)
        pinned: list[bool] = []
        await negotiate(camera, relay, lambda: pinned.append(pin_codec(relay.getTransceivers()[0], "video/H264")))
        assert pinned == [True]
        answered = SessionDescription.parse(relay.localDescription.sdp).media[0].rtp.codecs
        h264, rtx = answered
        assert (h264.mimeType, rtx.mimeType) == ("video/H264", "video/rtx")
        assert rtx.parameters["apt"] == h264.payloadType
        await until(lambda: frames)
        assert {f.codec for f in frames} == {"H264"}


async def test_pinning_a_codec_the_offer_lacks_says_so_and_changes_nothing() -> None:
    """The relay refuses a browser that did not offer the room's codec: pin_codec says False, and the
    answer is what it would have been."""
    async with peers() as (camera, relay):
        only("VP8", camera.addTransceiver(PatternTrack(), direction="sendonly"))
        pinned: list[bool] = []
        await negotiate(camera, relay, lambda: pinned.append(pin_codec(relay.getTransceivers()[0], "video/H264")))
        assert pinned == [False]
        answered = SessionDescription.parse(relay.localDescription.sdp).media[0].rtp.codecs
        assert [c.mimeType for c in answered] == ["video/VP8", "video/rtx"]


async def test_offered_direction_is_the_direction_the_remote_offered() -> None:
    """The relay makes slots of the transceivers a browser offered receive-only: offered_direction gives
    each transceiver the direction the remote's offer wrote, and None where no offer said anything."""
    directions = ["recvonly", "sendonly", "sendrecv", "inactive"]
    async with peers() as (browser, relay):
        for direction in directions:
            browser.addTransceiver(VideoStreamTrack() if "send" in direction else "video", direction=direction)
        unoffered = relay.addTransceiver("audio")
        assert offered_direction(unoffered) is None
        await browser.setLocalDescription(await browser.createOffer())
        await relay.setRemoteDescription(browser.localDescription)
        assert [offered_direction(t) for t in relay.getTransceivers() if t.kind == "video"] == directions
        assert offered_direction(unoffered) is None
