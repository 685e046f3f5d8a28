"""Packet-level forwarding without I/O: what each outgoing RTP stream rewrites to stay continuous.

A viewer's slot is one outgoing RTP stream (one SSRC, one sequence space, one RTP clock). Behind it the
relay may forward one source, then another (a different publisher, or another layer of the same one).
:class:`StreamRewriter` makes that invisible to the viewer's jitter buffer and decoder:

- **Sequence numbers** run on by one across a switch; within a source, gaps (losses) are kept, so the
  viewer NACKs exactly the packets it lacks and :meth:`StreamRewriter.original` maps them back.
- **Timestamps** step forward across a switch by the wall time since the last packet forwarded (at least
  one frame: 3000 ticks of 90 kHz video, 960 of 48 kHz Opus), and keep the source's own spacing within it.
- **SSRC** is the outgoing stream's own.
- **VP8 picture id and TL0PICIDX** (RFC 7741) run on by one frame across a switch, in the field width the
  source used, so a viewer's decoder does not see a picture id go backwards and drop frames as stale.
- **Key frames:** a stream switches to a new source only at the first packet of a key frame of that source
  (VP8: S=1, PID=0 and the P bit clear; H.264: SPS, or the start of an IDR slice, alone, in STAP-A or in
  FU-A; Opus: any packet). Until then it goes on forwarding the old source (a layer switch without a gap)
  or nothing (a new viewer); :attr:`StreamRewriter.waiting` says so, for the caller to ask for a key frame.

:class:`SourcePacket` is what every viewer's copy of one source packet is made from, parsed once for all of
them (sequence number, timestamp, whether a stream may start there, the VP8 descriptor, and the payload
split into the few bytes a stream may rewrite and the rest, shared as it is);
:meth:`StreamRewriter.forward` is the per-viewer step, which works on it and builds nothing else.
:class:`PacketCache` is a publisher's ring of recent packets by original sequence number, shared by every
viewer of that source, from which NACKs are answered. The module knows nothing of aiortc or sockets.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
FRAME_TICKS = {"audio": 960, "video": 3000}  # 20 ms of Opus at 48 kHz; 1/30 s at 90 kHz
MAX_STEP_SECONDS = 10  # a longer silence still steps the clock by at most this much
SEGMENTS_KEPT = 8  # switches remembered for mapping NACKs back

T = TypeVar("T")


def seq_newer(a: int, b: int) -> bool:
    """Whether sequence number ``a`` comes after ``b`` (RFC 3550 16-bit serial arithmetic)."""
    return a != b and (a - b) % SEQ_MOD < SEQ_MOD // 2


# ---- codec payloads ----


class Vp8Descriptor(NamedTuple):
    """Where the fields of a VP8 payload descriptor (RFC 7741 4.2) are, and what they hold. (A named tuple:
    one is made for every packet forwarded, and a frozen dataclass costs several times as much to make.)"""

    start: bool  # S: first packet of a partition
    partition: int  # PID
    picture_id: int | None
    picture_id_bits: int  # 7 or 15 (0 when absent)
    picture_id_at: int
    tl0picidx: int | None
    tl0picidx_at: int
    size: int  # bytes of descriptor before the VP8 payload


def vp8_descriptor(payload: bytes) -> Vp8Descriptor:
    """Parse a VP8 payload descriptor; ValueError if the payload is too short to hold what it announces."""
    if not payload:
        raise ValueError("empty VP8 payload")
    first = payload[0]
    pos = 1
    picture_id = tl0 = None
    bits = pid_at = tl0_at = 0
    if first & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            raise ValueError("VP8 descriptor truncated")
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id
            if len(payload) <= pos:
                raise ValueError("VP8 picture id truncated")
            pid_at = pos
            if payload[pos] & 0x80:  # M: 15 bits
                if len(payload) <= pos + 1:
                    raise ValueError("VP8 picture id truncated")
                picture_id, bits = ((payload[pos] & 0x7F) << 8) | payload[pos + 1], 15
                pos += 2
            else:
                picture_id, bits = payload[pos] & 0x7F, 7
                pos += 1
        if ext & 0x40:  # L: TL0PICIDX
            if len(payload) <= pos:
                raise ValueError("VP8 TL0PICIDX truncated")
            tl0, tl0_at = payload[pos], pos
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX byte
            pos += 1
    if len(payload) < pos:
        raise ValueError("VP8 descriptor truncated")
    return Vp8Descriptor(bool(first & 0x10), first & 0x07, picture_id, bits, pid_at, tl0, tl0_at, pos)


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether this packet begins a VP8 key frame: first partition's start, and the frame header's P bit 0."""
    try:
        d = vp8_descriptor(payload)
    except ValueError:
        return False
    return d.start and d.partition == 0 and len(payload) > d.size and not payload[d.size] & 0x01


H264_IDR, H264_SPS, H264_STAP_A, H264_FU_A = 5, 7, 24, 28


def h264_keyframe_start(payload: bytes) -> bool:
    """Whether a decoder may start at this packet (RFC 6184): it carries an SPS, or starts an IDR slice,
    as a single NAL unit, inside a STAP-A, or as the first fragment of an FU-A."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (H264_IDR, H264_SPS):
        return True
    if nal_type == H264_STAP_A:
        pos = 1
        while pos + 2 < len(payload):
            (size,) = struct.unpack_from("!H", payload, pos)
            if size == 0 or pos + 2 + size > len(payload):
                return False
            if payload[pos + 2] & 0x1F in (H264_IDR, H264_SPS):
                return True
            pos += 2 + size
        return False
    if nal_type == H264_FU_A:
        return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F == H264_IDR
    return False


def keyframe_start(codec: str, payload: bytes) -> bool:
    """Whether a stream may switch to its source at this packet. Audio: any packet."""
    name = codec.upper()
    if name == "VP8":
        return vp8_keyframe_start(payload)
    if name == "H264":
        return h264_keyframe_start(payload)
    return True


def _write_vp8_ids(payload: bytes, d: Vp8Descriptor, picture_id: int | None, tl0: int | None) -> bytes:
    """``payload`` with ``picture_id`` and ``tl0`` written where descriptor ``d`` has them (the same bytes
    when they change nothing: a stream whose first source this is keeps its ids)."""
    if (picture_id is None or d.picture_id is None
            or picture_id & ((1 << d.picture_id_bits) - 1) == d.picture_id) \
            and (tl0 is None or d.tl0picidx is None or tl0 & 0xFF == d.tl0picidx):
        return payload
    data = bytearray(payload)
    if picture_id is not None and d.picture_id is not None:
        if d.picture_id_bits == 15:
            data[d.picture_id_at] = 0x80 | ((picture_id >> 8) & 0x7F)
            data[d.picture_id_at + 1] = picture_id & 0xFF
        else:
            data[d.picture_id_at] = picture_id & 0x7F
    if tl0 is not None and d.tl0picidx is not None:
        data[d.tl0picidx_at] = tl0 & 0xFF
    return bytes(data)


# ---- one outgoing stream ----


@dataclass(slots=True)
class SourcePacket:
    """One packet of a source as every viewer's stream reads it, parsed once for all of them.

    ``head`` is the part of the payload a stream may rewrite (a VP8 descriptor carrying a picture id or
    TL0PICIDX; empty otherwise) and ``tail`` the rest, which every viewer's copy shares as it is.
    ``audio_level`` is the RFC 6464 byte the publisher sent with it (audio), for the viewers' copies."""

    sequence_number: int
    timestamp: int
    marker: bool
    keyframe: bool  # a stream may switch to its source here (see keyframe_start)
    vp8: Vp8Descriptor | None  # when it carries a picture id or TL0PICIDX to rewrite
    head: bytes
    tail: bytes
    audio_level: int | None = None

    @classmethod
    def parse(cls, codec: str, sequence_number: int, timestamp: int, marker: bool, payload: bytes,
              audio_level: int | None = None) -> SourcePacket:
        name = codec.upper()
        if name != "VP8":
            return cls(sequence_number, timestamp, bool(marker), keyframe_start(name, payload), None, b"", payload,
                       audio_level)
        try:
            d = vp8_descriptor(payload)
        except ValueError:
            return cls(sequence_number, timestamp, bool(marker), False, None, b"", payload, audio_level)
        key = d.start and d.partition == 0 and len(payload) > d.size and not payload[d.size] & 0x01
        if d.picture_id is None and d.tl0picidx is None:
            return cls(sequence_number, timestamp, bool(marker), key, None, b"", payload, audio_level)
        return cls(sequence_number, timestamp, bool(marker), key, d, payload[:d.size], payload[d.size:],
                   audio_level)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A packet as the viewer gets it: the caller puts these fields and the payload into its RTP header."""

    ssrc: int
    sequence_number: int
    timestamp: int
    marker: bool
    payload: bytes


@dataclass(slots=True)
class _Segment:
    """The run of one source in the outgoing stream, from the key frame it started at."""

    source: Hashable
    first_in: int  # the source's sequence number where it started
    first_out: int
    seq_offset: int
    ts_offset: int
    pid_in: int = -1  # the newest source picture id seen (-1: none yet), in the source's width
    pid_out: int = 0  # what it went out as, 15 bits
    tl0_offset: int = -1  # fixed at this segment's first TL0PICIDX
    last_in: int = 0  # highest source sequence number forwarded so far


class StreamRewriter:
    """One outgoing stream: offer it every packet of the sources it might carry, in arrival order, with
    :meth:`forward` (or :meth:`rewrite`); it forwards those of the selected source, rewritten, and None
    for the rest."""

    def __init__(self, ssrc: int, kind: str, codec: str, clock_rate: int, *, first_sequence: int = 0,
                 first_timestamp: int = 0) -> None:
        self.ssrc, self.kind, self.codec, self.clock_rate = ssrc, kind, codec.upper(), clock_rate
        self.selected: Hashable | None = None  # the source wanted
        self.current: _Segment | None = None  # the source being forwarded
        self.segments: list[_Segment] = []
        self.forwarded = self.dropped = 0
        self._next_seq = first_sequence % SEQ_MOD
        self._last_ts = (first_timestamp - FRAME_TICKS.get(kind, 3000)) % TS_MOD
        self._last_arrival: float | None = None
        self._last_pid = self._last_tl0 = -1

    @property
    def waiting(self) -> bool:
        """A source is selected whose key frame has not come yet: ask it for one."""
        return self.selected is not None and (self.current is None or self.current.source != self.selected)

    def select(self, source: Hashable | None) -> None:
        """Forward ``source`` from its next key frame on (None: stop now). The current source goes on
        until then, so a layer switch leaves no gap."""
        self.selected = source
        if source is None:
            self.current = None

    def forward(self, source: Hashable, packet: SourcePacket, arrival: float) -> tuple[int, int, bytes] | None:
        """This stream's sequence number, timestamp and payload head for ``packet`` (its payload is the head
        followed by ``packet.tail``), or None when it is not to be sent. The per-viewer step of the relay:
        it allocates nothing but the result (and a rewritten VP8 descriptor)."""
        segment = self.current
        seq = packet.sequence_number
        if segment is None or segment.source != source:
            if source != self.selected or not packet.keyframe:
                self.dropped += 1
                return None
            segment = self._switch(source, seq, packet.timestamp, arrival)
        elif seq != segment.first_in and (seq - segment.first_in) % SEQ_MOD >= SEQ_MOD // 2:
            self.dropped += 1  # older than the key frame this segment began at: the viewer never needs it
            return None
        seq_out = (seq + segment.seq_offset) % SEQ_MOD
        ts_out = (packet.timestamp + segment.ts_offset) % TS_MOD
        head = packet.head if packet.vp8 is None else self._vp8(segment, packet.vp8, packet.head)
        if seq != segment.last_in and (seq - segment.last_in) % SEQ_MOD < SEQ_MOD // 2:  # seq_newer, inlined
            segment.last_in = seq
            self._next_seq = (seq_out + 1) % SEQ_MOD
            self._last_ts = ts_out
            self._last_arrival = arrival
        self.forwarded += 1
        return seq_out, ts_out, head

    def rewrite(self, source: Hashable, sequence_number: int, timestamp: int, marker: bool, payload: bytes,
                arrival: float) -> Outgoing | None:
        """The packet as this stream sends it, or None when it is not to be sent (:meth:`forward` on a
        packet of its own)."""
        packet = SourcePacket.parse(self.codec, sequence_number, timestamp, marker, payload)
        out = self.forward(source, packet, arrival)
        if out is None:
            return None
        return Outgoing(self.ssrc, out[0], out[1], packet.marker, out[2] + packet.tail if out[2] else payload)

    def padding(self) -> tuple[int, int] | None:
        """The sequence number and timestamp of a padding-only packet on this stream while it forwards
        nothing (paused, or its slot empty): its next sequence number, its last timestamp. None while a
        source is forwarded (its packets keep the sequence)."""
        if self.current is not None:
            return None
        seq = self._next_seq
        self._next_seq = (seq + 1) % SEQ_MOD
        return seq, self._last_ts

    def original(self, sequence_number: int) -> tuple[Hashable, int] | None:
        """Which source packet (source, its sequence number) went out as ``sequence_number``: for NACKs."""
        for segment in reversed(self.segments):
            if segment.first_out == sequence_number or seq_newer(sequence_number, segment.first_out):
                last_out = (segment.last_in + segment.seq_offset) % SEQ_MOD
                if sequence_number != last_out and seq_newer(sequence_number, last_out):
                    return None  # never sent
                return segment.source, (sequence_number - segment.seq_offset) % SEQ_MOD
        return None

    def again(self, source: Hashable, sequence_number: int, timestamp: int, marker: bool,
              payload: bytes) -> Outgoing | None:
        """A cached source packet rewritten exactly as it was the first time (for a retransmission)."""
        for segment in reversed(self.segments):
            if segment.source == source and (sequence_number == segment.first_in
                                             or seq_newer(sequence_number, segment.first_in)):
                packet = SourcePacket.parse(self.codec, sequence_number, timestamp, marker, payload)
                head = packet.head if packet.vp8 is None else self._vp8(segment, packet.vp8, packet.head)
                return Outgoing(self.ssrc, (sequence_number + segment.seq_offset) % SEQ_MOD,
                                (timestamp + segment.ts_offset) % TS_MOD, packet.marker,
                                head + packet.tail if head else payload)
        return None

    def _switch(self, source: Hashable, sequence_number: int, timestamp: int, arrival: float) -> _Segment:
        step = FRAME_TICKS.get(self.kind, 3000)
        if self._last_arrival is not None:
            elapsed = min(max(arrival - self._last_arrival, 0.0), MAX_STEP_SECONDS)
            step = max(step, round(elapsed * self.clock_rate))
        out_ts = (self._last_ts + step) % TS_MOD
        segment = _Segment(source, sequence_number, self._next_seq, (self._next_seq - sequence_number) % SEQ_MOD,
                           (out_ts - timestamp) % TS_MOD, last_in=(sequence_number - 1) % SEQ_MOD)
        self.current = segment
        self.segments = [*self.segments[-(SEGMENTS_KEPT - 1):], segment]
        return segment

    def _vp8(self, segment: _Segment, d: Vp8Descriptor, head: bytes) -> bytes:
        """``head`` (the payload up to the end of descriptor ``d``) with this stream's picture id and
        TL0PICIDX written in."""
        pid = tl0 = None
        if d.picture_id is not None:
            if segment.pid_in < 0:
                # the stream's first source keeps its own ids; later ones run on from the last sent
                segment.pid_in = d.picture_id
                segment.pid_out = d.picture_id if self._last_pid < 0 else (self._last_pid + 1) % (1 << 15)
            # unwrap in the source's width (a 7-bit id wraps every 128 frames), go on in 15 bits
            width = 1 << d.picture_id_bits
            delta = (d.picture_id - segment.pid_in) % width
            if delta >= width // 2:
                delta -= width  # an older frame (reordered or retransmitted)
            pid = (segment.pid_out + delta) % (1 << 15)
            if delta > 0:
                segment.pid_in, segment.pid_out = d.picture_id, pid
            if segment is self.current and delta >= 0:
                self._last_pid = segment.pid_out
        if d.tl0picidx is not None:
            if segment.tl0_offset < 0:
                segment.tl0_offset = 0 if self._last_tl0 < 0 else (self._last_tl0 + 1 - d.tl0picidx) % 256
            tl0 = (d.tl0picidx + segment.tl0_offset) % 256
            if segment is self.current:
                self._last_tl0 = tl0 if self._last_tl0 < 0 or (tl0 - self._last_tl0) % 256 < 128 \
                    else self._last_tl0
        return _write_vp8_ids(head, d, pid, tl0)


# ---- a publisher's recent packets ----


class PacketCache(Generic[T]):
    """The last ``size`` packets of one source by sequence number, for answering NACKs. Holds whatever the
    caller stores (aiortc's RtpPacket in the relay); a slot holds the newest packet with its number."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._slots: list[tuple[int, T] | None] = [None] * size

    def put(self, sequence_number: int, packet: T) -> None:
        self._slots[sequence_number % self.size] = (sequence_number, packet)

    def get(self, sequence_number: int) -> T | None:
        slot = self._slots[sequence_number % self.size]
        return slot[1] if slot is not None and slot[0] == sequence_number else None


class RateLimit:
    """At most one event per ``interval`` seconds: key frame requests to one publisher."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval, self._clock = interval, clock
        self._last = float("-inf")

    def allow(self) -> bool:
        now = self._clock()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True
