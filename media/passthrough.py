"""The one place that reaches into aiortc: encoded frames out of a receiver, and into a sender, untouched.

aiortc decodes every received frame and encodes every sent one. A relay that did that would spend a
core per handful of viewers (aiortc issues #1015, #1155, #559), so this module bends a few of aiortc's
internals, all checked by tests/media/test_passthrough.py so an upgrade that moves them fails loudly:

1. Receiving. ``RTCRtpReceiver._handle_rtp_packet`` puts each reassembled frame, as ``(codec,
   JitterFrame)``, on the private ``_RTCRtpReceiver__decoder_queue``, which ``receive()`` hands to its
   decoder thread. On the ``track`` event (fired before ``receive()``), :func:`tap_receiver` swaps that
   queue for a :class:`_FrameTap`: frames go to our callback on the event loop, and the decoder thread
   blocks in ``get()`` until the receiver stops, so no decoder is ever created.
2. Sending. ``RTCRtpSender`` packetizes anything that is not an ``av.Frame`` through its encoder's
   ``pack()``, which only reads the bytes, ``pts`` and ``time_base`` (no encoding). A subscriber's
   PLI/FIR calls ``RTCRtpSender._send_keyframe()``, which on that path would set a flag nobody reads;
   :func:`on_keyframe_request` replaces it per sender so the request reaches the publisher instead,
   and :func:`request_keyframe` sends that publisher a PLI through the receiver's ``_send_rtcp_pli``.
3. Codecs. Frames are forwarded as they are, so every leg of a room must carry the same video codec;
   aiortc chooses from the offer's order with no say for the answerer. :func:`pin_codec` trims the
   transceiver's negotiated ``_codecs`` (set by ``setRemoteDescription``, read by ``createAnswer``) to
   one codec and its retransmission format; :func:`ask_opus_resilience` sets Opus's FEC and DTX there.
4. Directions. aiortc keeps what the remote offer asked of each transceiver, seen from our side, in
   ``_offerDirection`` (set by ``setRemoteDescription``, read by ``createAnswer``) and has no public
   equivalent before the answer. :func:`offered_direction` reads it back as the remote peer wrote it.

Tested with aiortc 1.16 (the range is pinned in pyproject.toml).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import av
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver

_QUEUE_ATTRIBUTE = "_RTCRtpReceiver__decoder_queue"


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One whole encoded frame as it came off the wire. Immutable, so every subscriber and the recorder
    can share it (PyAV's mux() rewrites a packet's timing in place, so each consumer makes its own)."""

    codec: str  # "VP8", "H264", "opus"
    data: bytes
    timestamp: int  # RTP clock units, counted from the stream's first frame
    clock_rate: int
    keyframe: bool
    arrived: float = field(default_factory=time.monotonic)

    def to_packet(self, timestamp: int | None = None) -> av.Packet:
        """A fresh av.Packet for a sender's pack() or a muxer, at ``timestamp`` (default: the frame's own)."""
        packet = av.Packet(self.data)
        packet.pts = packet.dts = self.timestamp if timestamp is None else timestamp
        packet.time_base = Fraction(1, self.clock_rate)
        packet.is_keyframe = self.keyframe
        return packet


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether a frame can be decoded on its own: a VP8 key frame, or H.264 with an IDR slice."""
    if codec == "VP8":
        return bool(data) and not data[0] & 0x01  # RFC 6386 9.1: the P bit is 0 on key frames
    if codec == "H264":
        return any(nal_type == 5 for nal_type in h264_nal_types(data))
    return True  # audio: every frame stands alone


def h264_nal_types(data: bytes) -> list[int]:
    """The type of each NAL unit in an Annex B frame (5: IDR slice, 7: SPS, 8: PPS)."""
    types, start = [], 0
    while (start := data.find(b"\x00\x00\x01", start)) != -1:
        start += 3
        if start < len(data):
            types.append(data[start] & 0x1F)
    return types


class _FrameTap:
    """Stands in for the receiver's decoder queue: whole frames go to ``deliver`` and never to a decoder."""

    def __init__(self, deliver: Callable[[EncodedFrame], None]) -> None:
        self.deliver = deliver
        self.stopped = threading.Event()

    def put(self, item: object) -> None:  # called by aiortc on the event loop
        if item is None:  # the receiver is stopping: release the idle decoder thread
            self.stopped.set()
            return
        codec, frame = item  # type: ignore[misc]
        self.deliver(EncodedFrame(codec.name, frame.data, frame.timestamp, codec.clockRate,
                                  is_keyframe(codec.name, frame.data)))

    def get(self) -> None:  # called by aiortc's decoder thread, which must get nothing to decode
        self.stopped.wait()


def tap_receiver(receiver: RTCRtpReceiver, deliver: Callable[[EncodedFrame], None]) -> None:
    """Send this receiver's encoded frames to ``deliver``; call from the ``track`` event."""
    if not hasattr(receiver, _QUEUE_ATTRIBUTE):
        raise RuntimeError("aiortc's RTCRtpReceiver no longer has a decoder queue: media/passthrough.py "
                           "must be brought up to date with this aiortc release")
    setattr(receiver, _QUEUE_ATTRIBUTE, _FrameTap(deliver))


async def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """Ask the sender at the other end for a key frame (RTCP PLI to the stream's SSRC)."""
    sources = receiver.getSynchronizationSources()
    if sources:
        latest = max(sources, key=lambda s: s.timestamp)
        await receiver._send_rtcp_pli(latest.source)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the subscriber behind ``sender`` sends PLI or FIR."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def pin_codec(transceiver: RTCRtpTransceiver, mime_type: str) -> bool:
    """Keep only ``mime_type`` (its first offered variant) and its RTX in what the answer will accept.

    Call between ``setRemoteDescription`` and ``createAnswer``. False if the offer lacks the codec."""
    codecs = getattr(transceiver, "_codecs", None)
    if codecs is None:
        raise RuntimeError("aiortc's RTCRtpTransceiver no longer keeps _codecs: media/passthrough.py must be "
                           "brought up to date with this aiortc release")
    chosen = next((c for c in codecs if c.mimeType.lower() == mime_type.lower()), None)
    if chosen is None:
        return False
    retransmission = [c for c in codecs if c.mimeType.lower().endswith("/rtx")
                      and c.parameters.get("apt") == chosen.payloadType]
    transceiver._codecs = [chosen, *retransmission]
    return True


# In an answer, Opus's format parameters say what the answerer takes: in-band forward error correction
# (a lost 20 ms is rebuilt from the next packet) and discontinuous transmission (near nothing sent in
# silence). The relay forwards Opus as it comes, so every viewer's decoder gets both (RFC 7587 7.1).
OPUS_RESILIENCE = {"useinbandfec": 1, "usedtx": 1}


def ask_opus_resilience(transceiver: RTCRtpTransceiver) -> None:
    """Ask the sender of this audio transceiver for Opus with in-band FEC and DTX. Call after
    :func:`pin_codec` (the answer then carries them in its fmtp)."""
    for codec in transceiver._codecs:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters = {**codec.parameters, **OPUS_RESILIENCE}


_REVERSED = {"sendonly": "recvonly", "recvonly": "sendonly"}


def offered_direction(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction the remote peer's offer gave this transceiver, as the remote wrote it ("recvonly" for a
    browser's receive-only slot); None if no offer has been applied. Valid from ``setRemoteDescription``
    of an offer."""
    if not hasattr(transceiver, "_offerDirection"):
        raise RuntimeError("aiortc's RTCRtpTransceiver no longer keeps _offerDirection: media/passthrough.py must "
                           "be brought up to date with this aiortc release")
    ours = transceiver._offerDirection  # the offer's direction reversed to our side: its recvonly is our sendonly
    return None if ours is None else _REVERSED.get(ours, ours)
