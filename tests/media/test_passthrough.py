"""Guards the aiortc internals media/passthrough.py relies on: if an aiortc upgrade moves them, these
fail by name instead of the relay silently decoding (or dropping) every frame."""

from __future__ import annotations

import asyncio

import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSessionDescription, VideoStreamTrack

from media.passthrough import EncodedFrame, is_keyframe, offered_direction, tap_receiver

from ..support.peers import PatternTrack


def test_aiortc_version_is_the_one_pinned() -> None:
    """pyproject.toml pins aiortc to the range this hook was tested against."""
    assert aiortc.__version__.startswith("1.16."), aiortc.__version__


def test_receiver_and_sender_have_the_hooks() -> None:
    assert "_handle_rtp_packet" in vars(RTCRtpReceiver)
    assert "_send_rtcp_pli" in vars(RTCRtpReceiver)
    assert "_send_keyframe" in vars(RTCRtpSender)
    assert "_next_encoded_frame" in vars(RTCRtpSender)


def test_keyframe_detection() -> None:
    assert is_keyframe("VP8", b"\x10\x02\x00\x9d\x01\x2a")  # P bit 0: key frame
    assert not is_keyframe("VP8", b"\x31\x02\x00")
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88")  # SPS then IDR
    assert not is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a")
    assert is_keyframe("opus", b"\xfc")


async def test_tapped_receiver_hands_out_encoded_frames_and_never_decodes() -> None:
    """Frames come out whole and encoded (the first a VP8 key frame); the track's decoded-frame queue
    stays empty, so no decoder ran."""
    sender_pc, receiver_pc = RTCPeerConnection(), RTCPeerConnection()
    sender_pc.addTrack(PatternTrack())
    frames: list[EncodedFrame] = []
    tapped: list[RTCRtpReceiver] = []

    @receiver_pc.on("track")
    def _on_track(track) -> None:
        receiver = next(t.receiver for t in receiver_pc.getTransceivers() if t.receiver.track is track)
        tap_receiver(receiver, frames.append)
        tapped.append(receiver)

    try:
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(RTCSessionDescription(sender_pc.localDescription.sdp, "offer"))
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(RTCSessionDescription(receiver_pc.localDescription.sdp, "answer"))
        for _ in range(100):
            if len(frames) >= 20:
                break
            await asyncio.sleep(0.1)
        assert len(frames) >= 20
        assert frames[0].codec == "VP8" and frames[0].keyframe and frames[0].clock_rate == 90_000
        assert [f.timestamp for f in frames] == sorted(f.timestamp for f in frames)
        assert tapped[0].track._queue.empty()  # nothing was decoded
    finally:
        await asyncio.gather(sender_pc.close(), receiver_pc.close())


async def test_offered_direction_is_the_direction_the_remote_offered() -> None:
    """The relay makes slots of the transceivers a browser offered receive-only: offered_direction gives
    each transceiver the direction the remote's offer wrote, and None where no offer said anything."""
    directions = ["recvonly", "sendonly", "sendrecv", "inactive"]
    browser, relay = RTCPeerConnection(), RTCPeerConnection()
    try:
        for direction in directions:
            browser.addTransceiver(VideoStreamTrack() if "send" in direction else "video", direction=direction)
        unoffered = relay.addTransceiver("audio")
        assert offered_direction(unoffered) is None
        await browser.setLocalDescription(await browser.createOffer())
        await relay.setRemoteDescription(browser.localDescription)
        assert [offered_direction(t) for t in relay.getTransceivers() if t.kind == "video"] == directions
        assert offered_direction(unoffered) is None
    finally:
        await asyncio.gather(browser.close(), relay.close())
