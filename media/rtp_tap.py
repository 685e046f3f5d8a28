"""The one place that reaches into aiortc for RTP packets: taken off a receiver as they arrive, and put out on
a sender's transport as that sender's own stream, with the headers media/rtp_rewrite.py computed.

aiortc has no public API for packets: a receiver's track yields decoded frames, a sender's track must
give frames or whole encoded packets that it packetizes itself (aiortc issue #627: "it does consume your
RTP data"). Taking RTP below the RTCPeerConnection (our own DTLS-SRTP with pylibsrtp) would mean redoing
ICE, DTLS, SDP and RTCP that aiortc does well; instead this module keeps the RTCPeerConnection for all of
that and bends a few internals, each checked by tests/media/test_rtp_tap.py so an upgrade that moves them
fails loudly (docs/packet-forwarding.md has the measurements behind the choice):

1. Receiving. ``RTCRtpReceiver._handle_rtp_packet`` keeps receive statistics (for its receiver reports),
   unwraps RTX, NACKs gaps upstream and depayloads, then hands each packet to its private jitter buffer
   ``_RTCRtpReceiver__jitter_buffer.add(packet)``, which returns ``(pli_wanted, frame_or_None)``.
   :func:`tap_packets` swaps that jitter buffer for a :class:`_PacketTap` that passes every packet on at
   once and returns ``(False, None)``: no reassembly, no wait, and no frame ever reaches the decoder thread.
   While a recording wants frames, the tap also feeds a fresh copy of aiortc's own jitter buffer and returns
   what it returns, so aiortc hands whole frames to the receiver's decoder queue as it always did.
   The packet's codec comes from the receiver's private ``_RTCRtpReceiver__codecs`` (payload type to
   codec, filled by ``receive()``).
2. Sending. :class:`PacketSender` gives a sender a track that never yields (so its ``_run_rtp`` loop waits
   and never creates an encoder), learns the negotiated payload types, RTX and MID by wrapping the
   sender's ``send(parameters)`` (called by the peer connection once connected), and writes packets with
   the sender's SSRC (``_ssrc``, ``_rtx_ssrc``) through ``RTCDtlsTransport._send_rtp`` (SRTP protect and
   send), for every sender of the event loop from one task (:class:`_Outbox`). It keeps the sender's
   private counters (``_RTCRtpSender__ntp_timestamp``, ``__rtp_timestamp``,
   ``__packet_count``, ``__octet_count``) up to date, so the sender reports aiortc sends every second tie
   our RTP clock to wall time as a browser needs for lip sync.
   Where the publisher has sent a sender report, the counters carry its NTP time and its RTP timestamp
   translated to ours instead, so every viewer gets the publisher's own audio/video timing (lip sync).
3. Feedback. aiortc's RTP router delivers RTCP for a sender's SSRC to ``sender._handle_rtcp_packet``;
   :class:`PacketSender` replaces it per sender: NACKs and PLI/FIR go to callbacks (answered from the
   publisher's cache, passed upstream), receiver reports and REMB still reach aiortc's own handler, and
   then tell us the viewer's loss (each report block's fraction and cumulative count lost, and highest
   sequence number) and estimated bitrate (media/layers.py chooses from them). The router
   hands one REMB to every sender it names; only the sender named first passes its estimate on.
   Sender reports from a publisher reach ``receiver._handle_rtcp_packet``; :func:`tap_packets` wraps it to
   hear each one after aiortc has (the publisher's NTP time for its RTP timestamps).
4. Key frames upstream: :func:`request_keyframe` sends a PLI for the source SSRC through the receiver's
   ``_send_rtcp_pli``.
5. For aiortc *clients* of the relay (tests, the impairment benchmark's viewers):
   :func:`route_retransmissions_by_ssrc` adds a receiver's RTX SSRCs (``_RTCRtpReceiver__rtx_ssrc``) to
   its transport's router (``_rtp_router.ssrc_table``), as browsers route retransmissions.

Tested with aiortc 1.16 (the range is pinned in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from aiortc import RTCRtpReceiver, RTCRtpSender, clock
from aiortc.codecs import is_rtx
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
    wrap_rtx,
)

from .layers import StreamReport
from .rtp_rewrite import Outgoing, SourcePacket, keyframe_start
from .rtp_wire import ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, MID_URI, RtpWriter

_JITTER = "_RTCRtpReceiver__jitter_buffer"
_CODECS = "_RTCRtpReceiver__codecs"
_SENDER_COUNTERS = ("_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__rtp_timestamp",
                    "_RTCRtpSender__packet_count", "_RTCRtpSender__octet_count")
_NTP, _RTP, _PACKETS, _OCTETS = _SENDER_COUNTERS


logger = logging.getLogger(__name__)


def _stale(what: str) -> RuntimeError:
    return RuntimeError(f"aiortc no longer has {what}: media/rtp_tap.py must be brought up to date with "
                        f"this aiortc release")


@dataclass(frozen=True, slots=True)
class TappedPacket:
    """One RTP packet of a publisher's stream as it arrived (RTX already unwrapped). ``packet`` is aiortc's
    parsed RtpPacket; nobody may change it, as the cache and every viewer share it."""

    codec: str  # "VP8", "H264", "opus"
    clock_rate: int
    packet: RtpPacket
    arrived: float


class _PacketTap:
    """Stands in for a receiver's jitter buffer: each packet goes to ``deliver`` as it comes, and on to a
    real jitter buffer only while someone wants whole frames (the recorder)."""

    def __init__(self, receiver: RTCRtpReceiver, deliver: Callable[[TappedPacket], None],
                 frames_wanted: Callable[[], bool]) -> None:
        self.codecs = getattr(receiver, _CODECS)
        self.deliver, self.frames_wanted = deliver, frames_wanted
        self._pristine: JitterBuffer = getattr(receiver, _JITTER)  # aiortc's own, sized for the kind, unused
        self._frames: JitterBuffer | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:  # called by aiortc on the event loop
        codec = self.codecs.get(packet.payload_type)
        if codec is not None:
            self.deliver(TappedPacket(codec.name, codec.clockRate, packet, time.monotonic()))
        if not self.frames_wanted():
            self._frames = None  # so frames wanted again start from a clean buffer, not a stale origin
            return False, None
        if self._frames is None:
            if codec is None or not keyframe_start(codec.name, packet.payload):
                # Begun mid-stream, a fresh buffer must start at a key frame's first packet: else the first
                # "frame" it assembles is the tail of one, which no muxer or decoder can use.
                return False, None
            self._frames = copy.deepcopy(self._pristine)
        # aiortc puts a whole frame on the receiver's decoder queue (media/passthrough.py's tap), and sends
        # a PLI when the buffer says the stream broke: both only while recording.
        return self._frames.add(packet)


def tap_packets(receiver: RTCRtpReceiver, deliver: Callable[[TappedPacket], None], *,
                frames_wanted: Callable[[], bool] = lambda: False,
                on_sender_report: Callable[[int, int], None] = lambda ntp, rtp: None) -> None:
    """Send this receiver's RTP packets to ``deliver`` as they arrive, instead of assembling frames.

    Call before media flows (the ``track`` event will do). The receiver still sends receiver reports and
    NACKs upstream. While ``frames_wanted()`` is true, packets also go through aiortc's jitter buffer
    and whole frames come out where the receiver puts them (take them with
    :func:`media.passthrough.tap_receiver`); assembling frames stays off the forwarding path, after each
    packet has been forwarded. ``on_sender_report(ntp, rtp)`` hears each of the publisher's sender
    reports: the NTP time (64-bit) its RTP timestamp ``rtp`` stood for, what keeps its audio and video
    in step."""
    if not isinstance(getattr(receiver, _JITTER, None), JitterBuffer) \
            or not isinstance(getattr(receiver, _CODECS, None), dict):
        raise _stale("RTCRtpReceiver's jitter buffer or codec table")
    setattr(receiver, _JITTER, _PacketTap(receiver, deliver, frames_wanted))
    handle_rtcp = receiver._handle_rtcp_packet

    async def hear_reports(packet: object) -> None:
        await handle_rtcp(packet)
        if isinstance(packet, RtcpSrPacket):
            on_sender_report(packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp)
    receiver._handle_rtcp_packet = hear_reports  # type: ignore[method-assign]


async def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the publisher behind ``receiver`` for a key frame of stream ``media_ssrc`` (RTCP PLI)."""
    await receiver._send_rtcp_pli(media_ssrc)


class _Idle(MediaStreamTrack):
    """A track that yields nothing until stopped: the sender's own RTP loop waits on it and encodes nothing."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self):  # type: ignore[no-untyped-def]
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()


class _Outbox:
    """Packets on their way to the wire, for every :class:`PacketSender` of one event loop, in the order they
    were sent. One task writes them all: a packet forwarded to a hundred viewers is a hundred writes in one
    task, not a hundred tasks (``_send_rtp`` is a coroutine, though it does not wait on loopback or UDP)."""

    def __init__(self) -> None:
        self._queue: deque[tuple[PacketSender, bytes]] = deque()
        self._writing: asyncio.Future[None] | None = None  # the task writing the queue out, while it runs

    def put(self, sender: PacketSender, data: bytes) -> None:
        self._queue.append((sender, data))
        if self._writing is None:
            self._writing = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        queue = self._queue
        try:
            while queue:
                sender, data = queue.popleft()
                try:
                    await sender.sender.transport._send_rtp(data)
                except ConnectionError:
                    pass  # that viewer's connection is closing: its packets are dropped, the others' go on
                except Exception:  # one viewer's broken transport must not stop the others' packets
                    logger.exception("sending an RTP packet failed")
        finally:
            self._writing = None


_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox] = weakref.WeakKeyDictionary()


def _outbox() -> _Outbox:
    loop = asyncio.get_running_loop()
    outbox = _outboxes.get(loop)
    if outbox is None:
        outbox = _outboxes[loop] = _Outbox()
    return outbox


class PacketSender:
    """Sends already-packetized RTP as ``sender``'s stream. Make it before the connection is established
    (right after creating the transceiver, or after ``setRemoteDescription`` for an answerer)."""

    def __init__(self, sender: RTCRtpSender, *, on_nack: Callable[[list[int]], None] = lambda seqs: None,
                 on_keyframe_request: Callable[[], None] = lambda: None) -> None:
        """``on_nack`` and ``on_keyframe_request`` take the viewer's feedback; set ``on_report`` (what each
        receiver report says of this stream: a :class:`media.layers.StreamReport`) and ``on_estimate`` (the
        bitrate, in bits per second, the viewer's REMB says its link carries; heard by the sender of the
        first stream a REMB names, so once per REMB however many of the viewer's streams it names) to learn
        about the viewer's link."""
        if not hasattr(sender, "_ssrc") or not hasattr(sender, "_rtx_ssrc") \
                or not all(hasattr(sender, name) for name in _SENDER_COUNTERS):
            raise _stale("RTCRtpSender's SSRCs or report counters")
        self.sender = sender
        self.on_nack, self.on_keyframe_request = on_nack, on_keyframe_request
        self.on_report: Callable[[StreamReport], None] = lambda report: None
        self.on_estimate: Callable[[int], None] = lambda bps: None
        self.payload_type: int | None = None
        self.rtx_payload_type: int | None = None
        self.mid: str | None = None
        self.sent = self.retransmitted = self.padded = 0
        self._extensions = HeaderExtensionsMap()
        self._writer: RtpWriter | None = None
        self._counters = vars(sender)  # the report counters, written per packet: by key, not by setattr
        self._rtx_seq = 0
        self._octets = 0
        self._outbox: _Outbox | None = None  # this event loop's, once connected
        self.ready = False  # negotiated and connected: packets can go out
        self._ready = asyncio.Event()
        sender.replaceTrack(_Idle(sender.kind))
        send, handle_rtcp = sender.send, sender._handle_rtcp_packet

        async def send_with(parameters: RTCRtpSendParameters) -> None:
            self._configure(parameters)
            await send(parameters)
        sender.send = send_with  # type: ignore[method-assign]
        self._aiortc_rtcp = handle_rtcp
        sender._handle_rtcp_packet = self._handle_rtcp  # type: ignore[method-assign]

    @property
    def ssrc(self) -> int:
        return self.sender._ssrc

    @property
    def octets(self) -> int:
        """Payload bytes sent so far (not counting retransmissions)."""
        return self._octets

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def forward(self, sequence_number: int, timestamp: int, packet: SourcePacket, head: bytes, ntp: int,
                report: tuple[int, int] | None = None) -> None:
        """Queue a packet for the wire now, under this sender's SSRC and payload type: ``packet`` as a viewer's
        stream rewrote it (its sequence number, timestamp, and ``head`` in place of ``packet.head``), its
        audio level as the publisher sent it, ``ntp`` (64-bit NTP, now) as its abs-send-time. ``report``:
        the (NTP, RTP timestamp) pair the sender reports of this stream will carry, the publisher's own
        translated to this stream's timestamps; without it, they tie this packet's timestamp to ``ntp``.
        Dropped while not yet connected."""
        writer, outbox = self._writer, self._outbox
        if writer is None or outbox is None:
            return
        outbox.put(self, writer.packet(sequence_number, timestamp, packet.marker, head, packet.tail,
                                       packet.audio_level, ntp))
        self.sent += 1
        self._octets += len(head) + len(packet.tail)
        counters = self._counters
        if report is None:
            counters[_NTP], counters[_RTP] = ntp, timestamp
        else:
            counters[_NTP], counters[_RTP] = report
        counters[_PACKETS] = self.sent
        counters[_OCTETS] = self._octets

    def retransmit(self, out: Outgoing, source: RtpPacket | None = None) -> None:
        """Send ``out`` again for a NACK: as RTX when negotiated (RFC 4588), else as it was."""
        if self._outbox is None:
            return
        packet = self._packet(out, source)
        if self.rtx_payload_type is not None:
            packet = wrap_rtx(packet, payload_type=self.rtx_payload_type, sequence_number=self._rtx_seq,
                              ssrc=self.sender._rtx_ssrc)
            self._rtx_seq = (self._rtx_seq + 1) % (1 << 16)
        self._outbox.put(self, packet.serialize(self._extensions))  # (an RtpPacket: NACKs are rare)
        self.retransmitted += 1

    def pad(self, sequence_number: int, timestamp: int) -> None:
        """Queue a padding-only packet (no payload, one byte of padding: RFC 3550 section 5.1) as this
        stream's ``sequence_number``: a receiver counts it, and reports what it lost, as for any packet.
        Dropped while not yet connected."""
        if self._outbox is None:
            return
        packet = self._packet(Outgoing(self.sender._ssrc, sequence_number, timestamp, False, b""), None)
        self._outbox.put(self, packet.serialize(self._extensions))
        self.padded += 1

    # ---- internals ----

    def _configure(self, parameters: RTCRtpSendParameters) -> None:
        main = parameters.codecs[0]
        self.payload_type, self.mid = main.payloadType, parameters.muxId
        self.rtx_payload_type = next((c.payloadType for c in parameters.codecs
                                      if is_rtx(c) and c.parameters.get("apt") == main.payloadType), None)
        self._extensions.configure(parameters)
        ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
        self._writer = RtpWriter(main.payloadType, self.sender._ssrc, mid=self.mid, mid_id=ids.get(MID_URI, 0),
                                 abs_send_time_id=ids.get(ABS_SEND_TIME_URI, 0),
                                 audio_level_id=ids.get(AUDIO_LEVEL_URI, 0))
        self._outbox = _outbox()
        self.ready = True
        self._ready.set()

    def _packet(self, out: Outgoing, source: RtpPacket | None) -> RtpPacket:
        packet = RtpPacket(payload_type=self.payload_type or 0, marker=int(out.marker),
                           sequence_number=out.sequence_number, timestamp=out.timestamp,
                           ssrc=self.sender._ssrc, payload=out.payload)
        packet.extensions.mid = self.mid
        packet.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
        if not out.payload:
            packet.padding_size = 1  # padding only (as RTX, sent again, the original sequence number is all)
        if source is not None:
            packet.extensions.audio_level = source.extensions.audio_level
        return packet

    async def _handle_rtcp(self, packet: object) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.on_nack(list(packet.lost))
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            self.on_keyframe_request()
        else:  # receiver reports (round-trip time, loss), REMB: aiortc keeps its statistics, we learn too
            await self._aiortc_rtcp(packet)
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for report in packet.reports:
                    if report.ssrc == self.sender._ssrc:
                        self.on_report(StreamReport(report.fraction_lost / 256, report.packets_lost,
                                                    report.highest_sequence))
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                with suppress(ValueError):
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                    # One REMB estimates the viewer's whole link and names every stream it carries; the
                    # router hands it to each sender named. Only the first passes it on, so it counts once.
                    if ssrcs and ssrcs[0] == self.sender._ssrc:
                        self.on_estimate(bitrate)


def route_retransmissions_by_ssrc(receiver: RTCRtpReceiver) -> None:
    """For an aiortc *client* of the relay: aiortc's RTP router knows a receiver's RTX stream only by its
    payload type, which every video slot shares, so with two slots or more it drops every retransmission
    (browsers route by SSRC). Once the receiver is registered, route its RTX by SSRC as browsers do, so
    loss is repaired as in a browser. (The tests' clients and the impairment benchmark's viewers.)"""
    receive = receiver.receive

    async def receive_and_route(parameters: RTCRtpReceiveParameters) -> None:
        await receive(parameters)
        router = receiver.transport._rtp_router
        for rtx_ssrc in getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {}):
            router.ssrc_table[rtx_ssrc] = receiver
    receiver.receive = receive_and_route  # type: ignore[method-assign]
