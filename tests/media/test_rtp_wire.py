"""media/rtp_wire.py: each viewer's packets written in one go are, byte for byte, what aiortc's own
serializer wrote for the relay before (an ``RtpPacket`` with the stream's header extensions, serialized per
viewer); and the whole per-viewer path (one shared parse, ``StreamRewriter.forward``, the writer) gives the
packets the old path gave (the rewriter as it was before, kept below as the reference, then aiortc's
serializer), across switches of source."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest
from aiortc import clock
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media.rtp_rewrite import SourcePacket, StreamRewriter, keyframe_start, seq_newer, vp8_descriptor
from media.rtp_wire import ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, MID_URI, RtpWriter, audio_level_byte, ntp_now

NTP = 0xE8A3_1C2D_5A5A_1234  # an NTP time of 2023, with a fraction


def aiortc_bytes(ids: dict[str, int], mid: str | None, payload_type: int, ssrc: int, marker: bool, seq: int,
                 ts: int, payload: bytes, level: tuple[bool, int] | None, ntp: int) -> bytes:
    """What media/rtp_tap.py's PacketSender wrote before the fast path: aiortc's RtpPacket, serialized."""
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpSendParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=x_id, uri=uri) for uri, x_id in ids.items()]))
    packet = RtpPacket(payload_type=payload_type, marker=int(marker), sequence_number=seq, timestamp=ts, ssrc=ssrc,
                       payload=payload)
    packet.extensions.mid = mid
    packet.extensions.abs_send_time = (ntp >> 14) & 0x00FFFFFF
    packet.extensions.audio_level = level
    return packet.serialize(extensions)


def writer(ids: dict[str, int], mid: str | None, payload_type: int, ssrc: int) -> RtpWriter:
    return RtpWriter(payload_type, ssrc, mid=mid, mid_id=ids.get(MID_URI, 0),
                     abs_send_time_id=ids.get(ABS_SEND_TIME_URI, 0), audio_level_id=ids.get(AUDIO_LEVEL_URI, 0))


VIDEO = {MID_URI: 1, ABS_SEND_TIME_URI: 2}  # what aiortc negotiates for video
AUDIO = {MID_URI: 1, AUDIO_LEVEL_URI: 10}  # and for audio (Chrome's ids)


@pytest.mark.parametrize(("ids", "mid", "level"), [
    (VIDEO, "1", None),
    (AUDIO, "0", (True, 127)),
    (AUDIO, "0", (False, 3)),
    (AUDIO, "0", None),  # a publisher that sends no level: none goes out
    ({**VIDEO, AUDIO_LEVEL_URI: 3}, "2", (True, 40)),  # every extension at once
    ({}, "0", (True, 1)),  # nothing negotiated: no extension block
    ({MID_URI: 4}, None, None),  # no MID yet: nothing to say
    ({ABS_SEND_TIME_URI: 14}, "1", None),  # the highest one-byte id
    ({MID_URI: 15, ABS_SEND_TIME_URI: 2}, "1", None),  # an id beyond 14: the two-byte form (RFC 8285)
    (VIDEO, "a-mid-longer-than-16", None),  # a value beyond 16 bytes: the two-byte form
    (AUDIO, "x" * 255, (True, 0)),
])
@pytest.mark.parametrize(("marker", "seq", "ts", "head", "tail"), [
    (False, 0, 0, b"", b"\x01" * 1100),
    (True, 65535, 0xFFFF_FFFF, b"\x90\x80\x81\x02", b"\x10\x02\x9d"),
    (True, 1234, 90_000, b"", b""),
])
def test_a_written_packet_is_the_bytes_aiortcs_serializer_gives(ids: dict[str, int], mid: str | None,
                                                                 level: tuple[bool, int] | None, marker: bool,
                                                                 seq: int, ts: int, head: bytes,
                                                                 tail: bytes) -> None:
    """Header, every header extension (which go in, in what order and form, padding) and payload: the same
    bytes as aiortc's RtpPacket serialized, for every stream the relay sends."""
    w = writer(ids, mid, 96, 0xDEAD_BEEF)
    got = w.packet(seq, ts, marker, head, tail, audio_level_byte(level), NTP)
    assert got == aiortc_bytes(ids, mid, 96, 0xDEAD_BEEF, marker, seq, ts, head + tail, level, NTP)
    assert isinstance(got, bytes), "pylibsrtp protects bytes only"


def test_a_writer_reused_packet_after_packet_carries_nothing_over() -> None:
    """The writer fills one template in place: a packet without an audio level after one with it, or with
    the marker clear after one with it set, has none of the earlier packet's fields."""
    w = writer({**VIDEO, AUDIO_LEVEL_URI: 3}, "1", 111, 7)
    first = w.packet(1, 960, True, b"", b"a", audio_level_byte((True, 9)), NTP)
    second = w.packet(2, 1920, False, b"", b"b", None, NTP + (1 << 32))
    assert first == aiortc_bytes({**VIDEO, AUDIO_LEVEL_URI: 3}, "1", 111, 7, True, 1, 960, b"a", (True, 9), NTP)
    assert second == aiortc_bytes({**VIDEO, AUDIO_LEVEL_URI: 3}, "1", 111, 7, False, 2, 1920, b"b", None,
                                  NTP + (1 << 32))


def test_the_ntp_clock_is_aiortcs() -> None:
    """The sender reports and abs-send-time carry the wall clock as aiortc's clock gives it, to the
    microsecond, from a cheaper read of the same clock."""
    for _ in range(100):
        before = clock.current_ntp_time()
        now = ntp_now()
        after = clock.current_ntp_time()
        assert before <= now <= after


@dataclass
class _OldSegment:
    source: str
    first_in: int
    seq_offset: int
    ts_offset: int
    last_in: int
    pid_in: int = -1
    pid_out: int = 0
    tl0_offset: int = -1


class OldRewriter:
    """media/rtp_rewrite.py's StreamRewriter.rewrite as it was before the fast path (at 79579a9): each
    viewer parsed every packet and copied its payload; the reference the fast path must equal."""

    def __init__(self, ssrc: int, first_sequence: int, first_timestamp: int) -> None:
        self.ssrc, self.selected, self.current = ssrc, None, None
        self._next_seq, self._last_ts = first_sequence, (first_timestamp - 3000) % (1 << 32)
        self._last_arrival: float | None = None
        self._last_pid = self._last_tl0 = -1

    def rewrite(self, source: str, seq: int, ts: int, marker: bool, payload: bytes,
                arrival: float) -> tuple[int, int, bool, bytes] | None:
        segment = self.current
        if source == self.selected and (segment is None or segment.source != source) \
                and keyframe_start("VP8", payload):
            step = 3000
            if self._last_arrival is not None:
                step = max(step, round(min(max(arrival - self._last_arrival, 0.0), 10) * 90_000))
            out_ts = (self._last_ts + step) % (1 << 32)
            segment = self.current = _OldSegment(source, seq, (self._next_seq - seq) % 65536, (out_ts - ts) % (1 << 32),
                                                 (seq - 1) % 65536)
        elif segment is None or segment.source != source:
            return None
        elif not seq_newer(seq, segment.first_in) and seq != segment.first_in:
            return None
        out = ((seq + segment.seq_offset) % 65536, (ts + segment.ts_offset) % (1 << 32), bool(marker),
               self._vp8(segment, payload))
        if seq_newer(seq, segment.last_in):
            segment.last_in = seq
            self._next_seq, self._last_ts, self._last_arrival = (out[0] + 1) % 65536, out[1], arrival
        return out

    def _vp8(self, segment: _OldSegment, payload: bytes) -> bytes:
        try:
            d = vp8_descriptor(payload)
        except ValueError:
            return payload
        data = bytearray(payload)
        if d.picture_id is not None:
            if segment.pid_in < 0:
                segment.pid_in = d.picture_id
                segment.pid_out = d.picture_id if self._last_pid < 0 else (self._last_pid + 1) % (1 << 15)
            width = 1 << d.picture_id_bits
            delta = (d.picture_id - segment.pid_in) % width
            if delta >= width // 2:
                delta -= width
            pid = (segment.pid_out + delta) % (1 << 15)
            if delta > 0:
                segment.pid_in, segment.pid_out = d.picture_id, pid
            if segment is self.current and delta >= 0:
                self._last_pid = segment.pid_out
            if d.picture_id_bits == 15:
                data[d.picture_id_at:d.picture_id_at + 2] = bytes([0x80 | ((pid >> 8) & 0x7F), pid & 0xFF])
            else:
                data[d.picture_id_at] = pid & 0x7F
        if d.tl0picidx is not None:
            if segment.tl0_offset < 0:
                segment.tl0_offset = 0 if self._last_tl0 < 0 else (self._last_tl0 + 1 - d.tl0picidx) % 256
            tl0 = (d.tl0picidx + segment.tl0_offset) % 256
            if segment is self.current:
                self._last_tl0 = tl0 if self._last_tl0 < 0 or (tl0 - self._last_tl0) % 256 < 128 else self._last_tl0
            data[d.tl0picidx_at] = tl0
        return bytes(data)


def vp8(picture_id: int | None, *, bits: int = 15, tl0: int | None = None, key: bool = False, start: bool = True,
        body: bytes = b"\x00" * 40) -> bytes:
    """A VP8 payload (RFC 7741 descriptor; on a partition's start, the frame header's first byte)."""
    ext = (0x80 if picture_id is not None else 0) | (0x40 if tl0 is not None else 0)
    data = bytearray([(0x80 if ext else 0) | (0x10 if start else 0)])
    if ext:
        data.append(ext)
    if picture_id is not None:
        data += struct.pack("!H", 0x8000 | picture_id) if bits == 15 else bytes([picture_id & 0x7F])
    if tl0 is not None:
        data.append(tl0)
    return bytes(data + (bytes([0x10 if key else 0x11]) if start else b"") + body)


def frames(source: str, first_seq: int, first_ts: int, first_pid: int, count: int, *, bits: int = 15,
           tl0: int | None = None, start_key: bool = True) -> list[tuple[str, int, int, bool, bytes]]:
    """``count`` frames of two packets each from ``source``: (source, seq, timestamp, marker, payload)."""
    out = []
    for n in range(count):
        pid = (first_pid + n) % (1 << bits)
        key = start_key and n == 0
        seq = (first_seq + 2 * n) % 65536
        ts = (first_ts + 3000 * n) % (1 << 32)
        t = None if tl0 is None else (tl0 + n) % 256
        out.append((source, seq, ts, False, vp8(pid, bits=bits, tl0=t, key=key)))
        out.append((source, (seq + 1) % 65536, ts, True, vp8(pid, bits=bits, tl0=t, start=False)))
    return out


SEQUENCES = {
    "one source, 15-bit ids": frames("a", 65530, 0xFFFF_F000, 32760, 10),
    "one source, 7-bit ids and TL0PICIDX wrapping": frames("a", 10, 5, 120, 20, bits=7, tl0=250),
    "a switch to a second source at its key frame": frames("a", 100, 0, 5, 4) + frames("b", 7000, 123_456, 900, 1,
                                                                                        start_key=False)
    + frames("b", 7002, 126_456, 901, 5),
    "a switch back and forth, ids of different widths": frames("a", 1, 0, 10, 3, tl0=3)
    + frames("b", 500, 9, 100, 3, bits=7, tl0=77) + frames("a", 7, 9000, 13, 3, tl0=6),
    "no picture ids at all": [("a", n, n // 2 * 3000, n % 2 == 1, vp8(None, key=n == 0)) for n in range(8)],
}


@pytest.mark.parametrize("name", SEQUENCES)
def test_the_fast_path_gives_each_viewer_the_packets_the_old_path_gave(name: str) -> None:
    """The same packets to viewers' streams the old way (each viewer parses each packet and copies it,
    aiortc serializes an RtpPacket) and the relay's way now (the packet parsed once and shared by every
    viewer, ``forward``, the writer; and ``rewrite``, which the NACK path and tools use): byte for byte the
    same packets, across switches of source (sequence numbers, timestamps, picture ids, TL0PICIDX)."""
    ids = VIDEO
    old = OldRewriter(0x1111, 40_000, 77)
    again = StreamRewriter(0x1111, "video", "VP8", 90_000, first_sequence=40_000, first_timestamp=77)
    viewers = [StreamRewriter(0x1111, "video", "VP8", 90_000, first_sequence=40_000, first_timestamp=77),
               StreamRewriter(0x2222, "video", "VP8", 90_000, first_sequence=3, first_timestamp=1)]
    writers = [writer(ids, "1", 96, 0x1111), writer(ids, "4", 100, 0x2222)]
    sequence = SEQUENCES[name]
    sent = 0
    for n, (source, seq, ts, marker, payload) in enumerate(sequence):
        if n == 0 or source != sequence[n - 1][0]:
            old.selected = source
            for rewriter in (again, *viewers):
                rewriter.select(source)
        arrival = n / 60
        expected = old.rewrite(source, seq, ts, marker, payload, arrival)
        shared = SourcePacket.parse("VP8", seq, ts, marker, payload)
        got = [v.forward(source, shared, arrival) for v in viewers]
        rewritten = again.rewrite(source, seq, ts, marker, payload, arrival)
        if expected is None:
            assert got == [None, None] and rewritten is None
            continue
        sent += 1
        out_seq, out_ts, _, out_payload = expected
        assert got[0] is not None and got[1] is not None and rewritten is not None
        assert (rewritten.sequence_number, rewritten.timestamp, rewritten.payload) == (out_seq, out_ts, out_payload)
        first = writers[0].packet(got[0][0], got[0][1], shared.marker, got[0][2], shared.tail, None, NTP + n)
        assert first == aiortc_bytes(ids, "1", 96, 0x1111, marker, out_seq, out_ts, out_payload, None, NTP + n)
        # the other viewer's stream has its own numbers (its own start), the same picture ids, and the
        # packet's shared parts came to it intact
        second = writers[1].packet(got[1][0], got[1][1], shared.marker, got[1][2], shared.tail, None, NTP + n)
        assert second == aiortc_bytes(ids, "4", 100, 0x2222, marker, (out_seq - 40_000 + 3) % 65536,
                                      (out_ts - 77 + 1) % (1 << 32), out_payload, None, NTP + n)
    assert sent >= len(SEQUENCES[name]) // 2
