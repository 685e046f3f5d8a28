"""An outgoing RTP packet's bytes, written in one go for each viewer's stream (RFC 3550 header, RFC 8285
header extensions), without building and serializing aiortc's ``RtpPacket`` for every packet and viewer.

:class:`RtpWriter` holds one stream's header as a template (version, SSRC, and the header extensions the
relay sends: MID, abs-send-time, audio level, in aiortc's order and encoding, so the bytes are the ones
aiortc's serializer would give, as tests/media/test_rtp_wire.py checks against it) and fills in per packet
only what changes: marker, payload type, sequence number, timestamp, the send time and the audio level.
Pure: no I/O, no aiortc.
"""

from __future__ import annotations

import struct
import time

ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)

_MARKER_SEQ_TS = struct.Struct("!BHL")  # the second byte of the header (marker, payload type) to the timestamp
_WORD = struct.Struct("!L")


def ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp, to the microsecond: what aiortc's ``clock.current_ntp_time``
    gives, at a fraction of its cost (it goes through ``datetime``)."""
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    return ((seconds + NTP_EPOCH_OFFSET) << 32) | ((micros << 32) // 1_000_000)


def audio_level_byte(level: tuple[bool, int] | None) -> int | None:
    """aiortc's parsed audio level (voice activity, level in -dBov) as the RFC 6464 byte, or None."""
    return None if level is None else (0x80 if level[0] else 0) | (level[1] & 0x7F)


def _extensions(elements: list[tuple[int, bytes]]) -> tuple[int, bytes, list[int]]:
    """Header extension elements packed as aiortc's ``pack_header_extensions`` packs them: the profile, the
    bytes, and where each element's value starts in them."""
    if not elements:
        return 0, b"", []
    one_byte = all(0 < x_id <= 14 and 0 < len(value) <= 16 for x_id, value in elements)
    data, at = bytearray(), []
    for x_id, value in elements:
        data += bytes([(x_id << 4) | (len(value) - 1)]) if one_byte else bytes([x_id, len(value)])
        at.append(len(data))
        data += value
    data += bytes(-len(data) % 4)
    return (0xBEDE if one_byte else 0x1000), bytes(data), at


class _Template:
    """The header of one stream's packets with or without an audio level: bytes to copy, places to fill."""

    __slots__ = ("abs_at", "abs_high", "data", "level_at")

    def __init__(self, ssrc: int, mid: str | None, mid_id: int, abs_id: int, level_id: int) -> None:
        elements, names = [], []
        if mid is not None and mid_id:
            elements.append((mid_id, mid.encode("utf8")))
            names.append("mid")
        if abs_id:
            elements.append((abs_id, b"\0\0\0"))
            names.append("abs")
        if level_id:
            elements.append((level_id, b"\0"))
            names.append("level")
        profile, value, at = _extensions(elements)
        head = bytearray(struct.pack("!BBHLL", 0x90 if value else 0x80, 0, 0, 0, ssrc))
        if value:
            head += struct.pack("!HH", profile, len(value) >> 2) + value
        where = {name: 16 + offset for name, offset in zip(names, at, strict=True)}
        self.data = head
        self.abs_at = where.get("abs", 0)
        self.abs_high = head[self.abs_at - 1] << 24 if self.abs_at else 0  # the byte before the value stays
        self.level_at = where.get("level", 0)


class RtpWriter:
    """One outgoing stream's packets as bytes: its payload type and SSRC, and the header extensions
    negotiated for it (ids, 0 when not negotiated) with the stream's MID."""

    def __init__(self, payload_type: int, ssrc: int, *, mid: str | None = None, mid_id: int = 0,
                 abs_send_time_id: int = 0, audio_level_id: int = 0) -> None:
        self.payload_type, self.ssrc = payload_type, ssrc
        self._plain = _Template(ssrc, mid, mid_id, abs_send_time_id, 0)
        self._with_level = _Template(ssrc, mid, mid_id, abs_send_time_id, audio_level_id) if audio_level_id \
            else self._plain

    def packet(self, sequence_number: int, timestamp: int, marker: bool, head: bytes, tail: bytes,
               audio_level: int | None, ntp: int) -> bytes:
        """The packet whose payload is ``head`` then ``tail``; ``audio_level`` (the RFC 6464 byte) goes in
        when negotiated, ``ntp`` (the time of sending, 64-bit NTP) as its abs-send-time."""
        template = self._plain if audio_level is None else self._with_level
        data = template.data
        _MARKER_SEQ_TS.pack_into(data, 1, (marker << 7) | self.payload_type, sequence_number, timestamp)
        if template.abs_at:
            _WORD.pack_into(data, template.abs_at - 1, template.abs_high | ((ntp >> 14) & 0xFFFFFF))
        if template.level_at:
            data[template.level_at] = audio_level
        return b"".join((data, head, tail))
