"""media/rtp_rewrite.py: what an outgoing stream rewrites, table-tested without any network."""

from __future__ import annotations

import struct

import pytest

from media.rtp_rewrite import (
    PacketCache,
    RateLimit,
    StreamRewriter,
    h264_keyframe_start,
    keyframe_start,
    seq_newer,
    vp8_descriptor,
    vp8_keyframe_start,
)


def vp8(*, key: bool = False, start: bool = True, partition: int = 0, picture_id: int | None = None,
        bits: int = 15, tl0: int | None = None, tid: bool = False, body: bytes = b"\x00\x00") -> bytes:
    """A VP8 RTP payload: descriptor (RFC 7741) and the first byte of the frame header (P bit)."""
    extended = picture_id is not None or tl0 is not None or tid
    data = bytearray([(0x80 if extended else 0) | (0x10 if start else 0) | partition])
    if extended:
        data.append((0x80 if picture_id is not None else 0) | (0x40 if tl0 is not None else 0)
                    | (0x20 if tid else 0))
        if picture_id is not None:
            data += struct.pack("!H", 0x8000 | picture_id) if bits == 15 else bytes([picture_id & 0x7F])
        if tl0 is not None:
            data.append(tl0)
        if tid:
            data.append(0x40)
    data.append(0x10 if key else 0x11)  # frame tag: P bit 0 on key frames
    return bytes(data + body)


def nal(nal_type: int, size: int = 3) -> bytes:
    return bytes([0x60 | nal_type]) + b"\xaa" * (size - 1)


def stap_a(*nals: bytes) -> bytes:
    return b"\x18" + b"".join(struct.pack("!H", len(n)) + n for n in nals)


def fu_a(nal_type: int, *, start: bool, end: bool = False) -> bytes:
    return bytes([0x7C, (0x80 if start else 0) | (0x40 if end else 0) | nal_type]) + b"\xbb\xbb"


@pytest.mark.parametrize(("a", "b", "newer"), [
    (1, 0, True), (0, 1, False), (5, 5, False), (0, 65535, True), (65535, 0, False),
    (32767, 0, True), (32768, 0, False),
])
def test_sequence_numbers_compare_across_the_wrap(a: int, b: int, newer: bool) -> None:
    """Which packet is newer decides what is forwarded after a switch; a stream wraps every 65536 packets."""
    assert seq_newer(a, b) is newer


@pytest.mark.parametrize(("payload", "expected"), [
    (vp8(key=True), (True, 0, None, 0, None, 1)),
    (vp8(picture_id=0x1234, bits=15), (True, 0, 0x1234, 15, None, 4)),
    (vp8(picture_id=0x55, bits=7), (True, 0, 0x55, 7, None, 3)),
    (vp8(picture_id=300, tl0=9, tid=True, start=False, partition=2), (False, 2, 300, 15, 9, 6)),
    (vp8(tl0=200), (True, 0, None, 0, 200, 3)),
])
def test_vp8_descriptor_fields_are_found(payload: bytes, expected: tuple) -> None:
    """Picture id and TL0PICIDX are rewritten in place, so their positions and widths must be exact."""
    d = vp8_descriptor(payload)
    assert (d.start, d.partition, d.picture_id, d.picture_id_bits, d.tl0picidx, d.size) == expected


@pytest.mark.parametrize("payload", [b"", b"\x80", b"\x80\x80", b"\x80\x80\x80", b"\x80\x40"])
def test_truncated_vp8_descriptors_are_refused(payload: bytes) -> None:
    """A short packet must not be read past its end (nor rewritten)."""
    with pytest.raises(ValueError):
        vp8_descriptor(payload)


@pytest.mark.parametrize(("payload", "key"), [
    (vp8(key=True), True),
    (vp8(key=True, picture_id=7, tl0=1, tid=True), True),
    (vp8(key=False, picture_id=7), False),
    (vp8(key=True, start=False), False),  # a later packet of a key frame: not a place to start
    (vp8(key=True, partition=1), False),
    (vp8(key=True, picture_id=7, body=b"")[:-1], False),  # descriptor only, no frame header
    (b"", False),
])
def test_vp8_key_frame_starts(payload: bytes, key: bool) -> None:
    """A viewer switched onto a source at anything but a key frame's first packet sees garbage."""
    assert vp8_keyframe_start(payload) is key


@pytest.mark.parametrize(("payload", "key"), [
    (nal(5), True),  # IDR slice, single NAL unit
    (nal(7), True),  # SPS
    (nal(1), False),  # non-IDR slice
    (nal(8), False),  # PPS alone
    (nal(6), False),  # SEI
    (stap_a(nal(7), nal(8)), True),  # SPS and PPS aggregated, as browsers send them
    (stap_a(nal(6), nal(8), nal(5, 10)), True),
    (stap_a(nal(6), nal(8)), False),
    (b"\x18\x00\x09" + nal(7), False),  # STAP-A announcing more than it holds
    (fu_a(5, start=True), True),
    (fu_a(5, start=False), False),  # the middle of an IDR slice
    (fu_a(5, start=False, end=True), False),
    (fu_a(1, start=True), False),
    (b"\x7c", False),
    (b"", False),
])
def test_h264_key_frame_starts(payload: bytes, key: bool) -> None:
    """H.264 decoders can start at an SPS or an IDR slice's first fragment, whichever way it is packed."""
    assert h264_keyframe_start(payload) is key
    assert keyframe_start("H264", payload) is key


def test_any_audio_packet_is_a_place_to_start() -> None:
    """Opus frames stand alone: audio never waits."""
    assert keyframe_start("opus", b"\x78\x01") and keyframe_start("opus", b"")


# ---- one outgoing stream ----


class Feed:
    """Drives a rewriter the way the relay does: packets in arrival order, each from a source."""

    def __init__(self, rewriter: StreamRewriter) -> None:
        self.rewriter, self.now = rewriter, 100.0

    def __call__(self, source: str, seq: int, ts: int, payload: bytes = b"\x00", marker: bool = True,
                 after: float = 1 / 30):
        self.now += after
        return self.rewriter.rewrite(source, seq, ts, marker, payload, self.now)


def test_a_new_viewer_gets_nothing_until_a_key_frame_then_a_continuous_stream() -> None:
    """Video starts at a key frame (the viewer could decode nothing before it), with the stream's own
    SSRC, first sequence number and timestamp; after that sequence numbers and timestamps keep the
    source's spacing, including a gap where a packet was lost (so the viewer NACKs it)."""
    rw = StreamRewriter(0xABC, "video", "VP8", 90_000, first_sequence=1000, first_timestamp=50_000)
    feed = Feed(rw)
    rw.select("alice")
    assert rw.waiting
    assert feed("alice", 10, 9000, vp8()) is None
    first = feed("alice", 11, 12000, vp8(key=True))
    assert first is not None and not rw.waiting
    assert (first.ssrc, first.sequence_number, first.timestamp) == (0xABC, 1000, 50_000)
    assert feed("alice", 12, 12000, vp8(start=False), marker=True).sequence_number == 1001
    after_loss = feed("alice", 14, 15000, vp8())
    assert (after_loss.sequence_number, after_loss.timestamp) == (1003, 53_000)
    assert (rw.forwarded, rw.dropped) == (3, 1)


def test_a_switch_keeps_the_old_source_until_the_new_one_has_a_key_frame_and_runs_on_by_one() -> None:
    """A layer or speaker switch leaves no gap and no jump: the old source goes on until the new source's
    key frame, whose first packet is the next sequence number, its timestamp one elapsed interval on."""
    rw = StreamRewriter(1, "video", "VP8", 90_000)
    feed = Feed(rw)
    rw.select("high")
    feed("high", 500, 1_000_000, vp8(key=True))
    feed("high", 501, 1_003_000, vp8())
    rw.select("low")
    assert rw.waiting
    assert feed("low", 70, 777, vp8(), after=0.001) is None  # not a key frame: not yet
    kept = feed("high", 502, 1_006_000, vp8(), after=0.032)
    assert kept is not None and kept.sequence_number == 2
    switched = feed("low", 71, 4000, vp8(key=True), after=0.050)
    assert switched.sequence_number == 3
    assert switched.timestamp == 6000 + round(0.050 * 90_000)
    assert feed("high", 503, 1_009_000, vp8()) is None  # the old source is no longer forwarded
    assert feed("low", 72, 7000, vp8()).timestamp == switched.timestamp + 3000
    assert feed("low", 69, 1000, vp8(key=True), after=0) is None  # from before the switch point


def test_a_switch_right_after_a_packet_still_steps_one_frame() -> None:
    """Two frames a viewer must tell apart never share a timestamp: the step is at least one frame."""
    rw = StreamRewriter(1, "audio", "opus", 48_000)
    feed = Feed(rw)
    rw.select("a")
    last = feed("a", 1, 960)
    rw.select("b")
    first_b = feed("b", 900, 5, after=0.0001)  # audio switches at once, at any packet
    assert first_b.timestamp == last.timestamp + 960 and first_b.sequence_number == last.sequence_number + 1


def test_a_long_silence_steps_the_clock_by_the_silence_but_no_more_than_a_bound() -> None:
    """The RTP clock follows wall time across a pause, so the viewer's jitter buffer does not see a burst."""
    rw = StreamRewriter(1, "audio", "opus", 48_000)
    feed = Feed(rw)
    rw.select("a")
    feed("a", 1, 0)
    rw.select("b")
    assert feed("b", 1, 0, after=2.0).timestamp == 2 * 48_000
    rw.select("a")
    assert feed("a", 2, 960, after=60).timestamp == 2 * 48_000 + 10 * 48_000


def test_sequence_numbers_and_timestamps_wrap() -> None:
    """Sources and the outgoing stream both wrap at 16 and 32 bits without a jump."""
    rw = StreamRewriter(1, "video", "VP8", 90_000, first_sequence=65535, first_timestamp=2**32 - 1000)
    feed = Feed(rw)
    rw.select("a")
    a = feed("a", 65534, 2**32 - 10, vp8(key=True))
    b = feed("a", 65535, 2990, vp8())  # the source's clock wrapped
    c = feed("a", 0, 5990, vp8())
    assert [p.sequence_number for p in (a, b, c)] == [65535, 0, 1]
    assert [p.timestamp for p in (a, b, c)] == [2**32 - 1000, 2000, 5000]


def test_vp8_picture_ids_run_on_across_a_switch_in_each_sources_width() -> None:
    """A decoder drops a frame whose picture id goes backwards; after a switch ids continue by one from
    the last sent, in the width the new source uses, and TL0PICIDX likewise."""
    rw = StreamRewriter(1, "video", "VP8", 90_000)
    feed = Feed(rw)
    rw.select("a")
    feed("a", 1, 0, vp8(key=True, picture_id=30000, tl0=250))
    sent = feed("a", 2, 3000, vp8(picture_id=30001, tl0=251))
    assert vp8_descriptor(sent.payload).picture_id == 30001  # a first source keeps its own ids
    rw.select("b")
    first = feed("b", 40, 0, vp8(key=True, picture_id=5, tl0=7))
    second = feed("b", 41, 0, vp8(start=False, picture_id=5, tl0=7))  # same frame: same id
    third = feed("b", 42, 3000, vp8(picture_id=6, tl0=8))
    ids = [vp8_descriptor(p.payload) for p in (first, second, third)]
    assert [(d.picture_id, d.tl0picidx) for d in ids] == [(30002, 252), (30002, 252), (30003, 253)]
    assert first.payload[5:] == vp8(key=True, picture_id=5, tl0=7)[5:], "only the ids change"
    rw.select("c")
    narrow = feed("c", 1, 0, vp8(key=True, picture_id=100, bits=7))
    d = vp8_descriptor(narrow.payload)
    assert (d.picture_id_bits, d.picture_id) == (7, 30004 % 128)
    assert len(narrow.payload) == len(vp8(key=True, picture_id=100, bits=7))


def test_a_seven_bit_picture_id_that_wraps_still_runs_on_in_fifteen_bits() -> None:
    """A source with 7-bit picture ids wraps every 128 frames; the next source must still continue from
    the last id sent, not from where the 7-bit value happened to stand."""
    rw = StreamRewriter(1, "video", "VP8", 90_000)
    feed = Feed(rw)
    rw.select("narrow")
    feed("narrow", 1, 0, vp8(key=True, picture_id=126, bits=7))
    feed("narrow", 2, 3000, vp8(picture_id=127, bits=7))
    wrapped = feed("narrow", 3, 6000, vp8(picture_id=0, bits=7))
    assert vp8_descriptor(wrapped.payload).picture_id == 0
    late = rw.again("narrow", 2, 3000, True, vp8(picture_id=127, bits=7))
    assert vp8_descriptor(late.payload).picture_id == 127
    rw.select("wide")
    first = feed("wide", 50, 0, vp8(key=True, picture_id=9000))
    assert vp8_descriptor(first.payload).picture_id == 129  # 126, 127, 128 (sent as 0), then 129


def test_a_nacked_sequence_number_maps_back_to_its_source_packet_and_is_rewritten_the_same() -> None:
    """A viewer's NACK names outgoing numbers; the relay answers from the publisher's cache, so each must
    map to the source packet it was, across switches, and come out again byte for byte."""
    rw = StreamRewriter(9, "video", "VP8", 90_000, first_sequence=100)
    feed = Feed(rw)
    rw.select("a")
    a1 = feed("a", 7, 0, vp8(key=True, picture_id=1))
    feed("a", 8, 3000, vp8(picture_id=2))
    rw.select("b")
    b1 = feed("b", 300, 0, vp8(key=True, picture_id=90))
    feed("b", 302, 3000, vp8(picture_id=91))  # 301 lost upstream: outgoing 103 never sent... yet
    assert rw.original(100) == ("a", 7)
    assert rw.original(101) == ("a", 8)
    assert rw.original(102) == ("b", 300)
    assert rw.original(103) == ("b", 301)  # in the gap: the cache may have it (RTX upstream)
    assert rw.original(104) == ("b", 302)
    assert rw.original(105) is None and rw.original(99) is None
    assert rw.again("a", 7, 0, True, vp8(key=True, picture_id=1)) == a1
    assert rw.again("b", 300, 0, True, vp8(key=True, picture_id=90)) == b1


def test_deselecting_stops_at_once_and_the_next_start_waits_for_a_key_frame() -> None:
    """A viewer moved to audio only gets no more video packets; coming back waits for a key frame."""
    rw = StreamRewriter(1, "video", "H264", 90_000)
    feed = Feed(rw)
    rw.select("a")
    assert feed("a", 1, 0, stap_a(nal(7), nal(8))) is not None
    rw.select(None)
    assert not rw.waiting
    assert feed("a", 2, 0, fu_a(5, start=True)) is None
    rw.select("a")
    assert feed("a", 3, 3000, nal(1)) is None
    back = feed("a", 4, 6000, fu_a(5, start=True))
    assert back is not None and back.sequence_number == 1


def test_padding_on_a_paused_stream_takes_the_next_numbers_and_the_video_goes_on_after_them() -> None:
    """While a stream forwards nothing, padding takes its next sequence numbers at its last timestamp (so
    the viewer's reports go on counting, and the stream stays continuous); none while it forwards; the
    video that resumes goes on after the padding, and a NACK for a padding number maps to no source
    packet."""
    rw = StreamRewriter(1, "video", "VP8", 90_000, first_sequence=500)
    feed = Feed(rw)
    rw.select("a")
    last = feed("a", 40, 9000, vp8(key=True))
    assert rw.padding() is None, "not while it forwards"
    rw.select(None)
    assert [rw.padding() for _ in range(3)] == [(501, last.timestamp), (502, last.timestamp), (503, last.timestamp)]
    rw.select("a")
    back = feed("a", 50, 39000, vp8(key=True), after=1.0)
    assert back.sequence_number == 504 and back.timestamp != last.timestamp
    assert rw.padding() is None
    assert rw.original(502) is None and rw.original(504) == ("a", 50)


def test_the_cache_keeps_the_newest_packets_by_sequence_number() -> None:
    """A NACK for a packet the ring has overwritten gets nothing, not a different packet."""
    cache: PacketCache[str] = PacketCache(4)
    for seq in range(65534, 65536 + 3):
        cache.put(seq % 65536, f"p{seq % 65536}")
    assert [cache.get(s) for s in (65534, 65535, 0, 1, 2)] == [None, "p65535", "p0", "p1", "p2"]
    assert cache.get(6) is None


def test_rate_limit_allows_one_request_per_interval() -> None:
    """Ten late joiners in a moment cause one key frame request to the publisher, not ten."""
    now = [0.0]
    limit = RateLimit(0.5, lambda: now[0])
    assert [limit.allow() for _ in range(3)] == [True, False, False]
    now[0] = 0.6
    assert limit.allow()
