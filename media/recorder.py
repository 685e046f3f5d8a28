"""Recording without transcoding: the relay's encoded frames muxed by PyAV into WebM, sealed on disk.

VP8 rooms give WebM; H.264 rooms give Matroska (WebM allows only VP8/VP9/AV1), whose CodecPrivate is
built by the muxer from the SPS and PPS of the stream's first key frame, so it matches the real stream.

A *segment* is one file holding every participant's audio and video from one stretch of a recording.
Muxing, sealing and fsync run on the segment's own thread, fed by a queue, so the event loop (and every
peer on it) never waits for the disk; aiortc's MediaRecorder encodes on the loop and stalls them all.

While a segment is written it is WebM in "live" form (no seeking back to patch sizes), flushed and
fsynced about once a second: if the process dies, everything up to the last flush still opens and
plays. When a segment ends it is remuxed (packets copied, never decoded) into an ordinary WebM with
cues, so browsers can seek, and sealed again.
"""

from __future__ import annotations

import io
import logging
import queue
import struct
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av

from .errors import RecordingError
from .forwarding import Publication
from .passthrough import EncodedFrame, h264_nal_types
from .sealed import SealedReader, SealedWriter, take_over

log = logging.getLogger(__name__)

MS = Fraction(1, 1000)
FLUSH_SECONDS = 1.0  # at most this much is lost if the process is killed
WAIT_FOR_KEYFRAME_SECONDS = 2.0  # a camera that sends no key frame by then is left out of the segment
_STOP = object()
PARTICIPANT_TAG = "title"  # Matroska's track name: the participant id of the track's publisher


@dataclass(frozen=True)
class TrackInfo:
    participant_id: str
    kind: str
    codec: str
    width: int = 0
    height: int = 0


@dataclass
class SegmentResult:
    path: Path
    started_at: float  # wall clock
    tracks: list[TrackInfo]
    packets: int = 0
    error: str | None = None


def vp8_size(data: bytes) -> tuple[int, int]:
    """Width and height from a VP8 key frame's header (RFC 6386 9.1)."""
    width, height = struct.unpack_from("<HH", data, 6)
    return width & 0x3FFF, height & 0x3FFF


def opus_template() -> av.audio.stream.AudioStream:
    """A stream that says "Opus, stereo, 48 kHz" with its OpusHead, for the muxer to copy.

    PyAV's add_mux_stream cannot set an audio stream's channels, and an Opus track in WebM needs them and
    the OpusHead. Rather than open an encoder to get them, read them from the smallest Ogg Opus file:
    the two header pages and one empty packet (RFC 7845)."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 0, 48_000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 7) + b"telemed" + struct.pack("<I", 0)
    data = _ogg_page(head, 0, 0x02, 0) + _ogg_page(tags, 1, 0, 0) + _ogg_page(b"\xfc", 2, 0x04, 960)
    return av.open(io.BytesIO(data)).streams.audio[0]


def h264_template(keyframe: bytes) -> av.video.stream.VideoStream | None:
    """A stream describing an H.264 track (size, profile, and SPS/PPS as extradata) read from its first
    key frame, for the muxer to copy; None if that key frame carries no SPS and PPS to read.

    WebRTC senders put SPS and PPS in front of every IDR frame, in Annex B form as aiortc hands them on;
    Matroska's muxer turns that extradata into the avcC CodecPrivate and the packets into length-prefixed
    NAL units as it writes them."""
    types = h264_nal_types(keyframe)
    if 7 not in types or 8 not in types:
        return None
    return av.open(io.BytesIO(keyframe), format="h264").streams.video[0]


def container_format(codecs: set[str]) -> str:
    """WebM when every track is VP8 and Opus; Matroska (its superset) when H.264 is in it."""
    return "matroska" if "h264" in {c.lower() for c in codecs} else "webm"


def _muxed_stream(container: av.container.OutputContainer, kind: str, codec: str, width: int,
                  height: int, template: av.stream.Stream | None = None) -> av.stream.Stream:
    """An output stream for packets as they are: no codec context is opened, so nothing can encode."""
    if template is not None:
        stream = container.add_stream_from_template(template)
    elif kind == "video":
        stream = container.add_mux_stream(codec, width=width, height=height)
    else:
        stream = container.add_stream_from_template(opus_template())
    stream.time_base = MS
    return stream


def _ogg_page(packet: bytes, sequence: int, flags: int, granule: int) -> bytes:
    lacing = bytes([255] * (len(packet) // 255) + [len(packet) % 255])
    page = b"OggS" + struct.pack("<BBqIIIB", 0, flags, granule, 1, sequence, 0, len(lacing)) + lacing + packet
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


@dataclass
class _Track:
    publication: Publication
    info: TrackInfo | None = None  # known once the first usable frame arrived
    template: av.stream.Stream | None = None  # H.264: read from the first key frame
    stream: av.stream.Stream | None = None
    first_arrival: float = 0.0
    first_timestamp: int = 0
    last_pts: int = -1
    pending: list[EncodedFrame] = field(default_factory=list)


class Segment:
    """One recording file, written by its own thread from frames the relay hands it."""

    def __init__(self, path: Path, key: bytes, publications: list[Publication]) -> None:
        self.path = path
        self.publications = list(publications)
        self.origin = time.monotonic()
        self.result = SegmentResult(path, time.time(), [])
        self._tracks = {id(p): _Track(p) for p in publications}
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._key = key
        self._sinks = {id(p): self._sink(id(p)) for p in publications}
        self._thread = threading.Thread(target=self._run, name=f"recorder-{path.name}", daemon=True)
        self._thread.start()
        for publication in publications:
            publication.sinks.add(self._sinks[id(publication)])
            publication.request_keyframe()

    def _sink(self, key: int):
        publication, started = self._tracks[key].publication, False

        def sink(frame: EncodedFrame) -> None:  # on the event loop
            nonlocal started
            if not started and not frame.keyframe:
                publication.request_keyframe()  # rate-limited there; asked until one comes
                return
            started = True
            self._queue.put((key, frame))
        return sink

    def stop(self) -> None:
        """Stop taking frames; the thread writes what it has and closes the file (see ``join``)."""
        for track in self._tracks.values():
            track.publication.sinks.discard(self._sinks[id(track.publication)])
        self._queue.put(_STOP)

    def join(self, timeout: float | None = None) -> SegmentResult:
        self._thread.join(timeout)
        return self.result

    # ---- the writer thread ----

    def _run(self) -> None:
        sealed = SealedWriter(self.path, self._key)
        container: av.container.OutputContainer | None = None
        last_flush = time.monotonic()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.25)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if item is not None:
                    key, frame = item  # type: ignore[misc]
                    self._take(self._tracks[key], frame)
                if container is None and self._ready():
                    container = self._open(sealed)
                if container is not None:
                    self._mux_pending(container)
                    if time.monotonic() - last_flush >= FLUSH_SECONDS:
                        sealed.flush()
                        last_flush = time.monotonic()
            if container is None and any(t.info for t in self._tracks.values()):
                container = self._open(sealed)
            if container is not None:
                self._mux_pending(container)
                container.close()
        except Exception as exc:  # the recording must never take the relay down with it
            log.exception("recording %s failed", self.path.name)
            self.result.error = str(exc)
        finally:
            sealed.close()

    def _take(self, track: _Track, frame: EncodedFrame) -> None:
        if track.stream is None and track.info is None:
            if track.publication.kind == "video" and not frame.keyframe:
                return  # a video track starts at a key frame
            width, height = vp8_size(frame.data) if frame.codec == "VP8" else (0, 0)
            if frame.codec == "H264":
                track.template = h264_template(frame.data)
                if track.template is None:
                    return  # no SPS/PPS in front of this IDR: wait for a key frame that has them
                width, height = track.template.codec_context.width, track.template.codec_context.height
            track.info = TrackInfo(track.publication.participant_id, track.publication.kind, frame.codec,
                                   width, height)
            track.first_arrival, track.first_timestamp = frame.arrived, frame.timestamp
        if track.info is not None:
            track.pending.append(frame)

    def _ready(self) -> bool:
        if all(t.info is not None for t in self._tracks.values()):
            return True
        return time.monotonic() - self.origin > WAIT_FOR_KEYFRAME_SECONDS and any(t.info for t in self._tracks.values())

    def _open(self, sealed: SealedWriter) -> av.container.OutputContainer:
        # live: no seeking back (the sealed file is append-only); flush_packets: hand each packet to the
        # sealed writer at once; max_interleave_delta: a silent track must not hold the others back.
        codecs = {t.info.codec for t in self._tracks.values() if t.info is not None}
        container = av.open(sealed, "w", format=container_format(codecs), options={
            "live": "1", "flush_packets": "1", "cluster_time_limit": "1000", "max_interleave_delta": "1000000",
        })
        for track in self._tracks.values():
            if track.info is None:
                continue  # never sent a usable frame in time: not in this segment
            track.stream = _muxed_stream(container, track.info.kind, track.info.codec.lower(), track.info.width,
                                         track.info.height, track.template)
            # Whose track this is, in the file itself: a segment a crash cut off is finished from the file
            # alone, and its player still needs to know which audio goes with which video.
            track.stream.metadata[PARTICIPANT_TAG] = track.info.participant_id
            self.result.tracks.append(track.info)
        return container

    def _mux_pending(self, container: av.container.OutputContainer) -> None:
        for track in self._tracks.values():
            if track.stream is None:
                track.pending.clear()
                continue
            for frame in track.pending:
                container.mux(self._packet(track, frame))
                self.result.packets += 1
            track.pending.clear()

    def _packet(self, track: _Track, frame: EncodedFrame) -> av.Packet:
        """A packet of our own (mux() rewrites timing in place), timed on the segment's clock: the track's
        first frame by when it arrived, the rest by their RTP timestamps, never going backwards."""
        offset_ms = (track.first_arrival - self.origin) * 1000
        pts = round(offset_ms + (frame.timestamp - track.first_timestamp) * 1000 / frame.clock_rate)
        pts = max(pts, track.last_pts + 1, 0)
        track.last_pts = pts
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = pts
        packet.time_base = MS
        packet.is_keyframe = frame.keyframe
        packet.stream = track.stream
        return packet


@dataclass(frozen=True)
class Finished:
    duration: float  # seconds
    sha256: str  # of the WebM a download gives
    size: int
    complete: bool  # False: the segment was cut off by a crash, and holds what was flushed
    streams: list[dict[str, object]]  # kind, codec (and size), and whose (participant_id) if the file says


def finalize(live: Path, final: Path, key: bytes, *, held: BinaryIO | None = None) -> Finished:
    """Remux a segment, packets copied as they are, into a seekable WebM (or Matroska, for H.264); seal
    it; remove the live file. The live file's lock is held throughout (``held``, when the caller took it
    already), so no other process finishes the same segment meanwhile; RecordingError if one holds it."""
    lock = held if held is not None else take_over(live)
    if lock is None:
        raise RecordingError(f"{live.name} is being finished by another process")
    try:
        reader = SealedReader(live, key)
        source = av.open(reader.stream(), "r", format="matroska")
        out_buffer = io.BytesIO()
        output = av.open(out_buffer, "w", format=container_format({s.codec_context.name for s in source.streams}))
        mapping: dict[int, av.stream.Stream] = {}
        streams: list[dict[str, object]] = []
        for stream in source.streams:
            streams.append(_described(stream))
            mapping[stream.index] = _muxed_stream(output, stream.type, stream.codec_context.name,
                                                  stream.codec_context.width if stream.type == "video" else 0,
                                                  stream.codec_context.height if stream.type == "video" else 0,
                                                  stream if stream.codec_context.name == "h264" else None)
            if owner := stream.metadata.get(PARTICIPANT_TAG):
                mapping[stream.index].metadata[PARTICIPANT_TAG] = owner
        end = 0.0
        for packet in source.demux():
            if packet.dts is None or packet.stream.index not in mapping:
                continue  # the flush packet at the end of each stream
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            packet.stream = mapping[packet.stream.index]
            output.mux(packet)
        output.close()
        source.close()
        data = out_buffer.getvalue()
        writer = SealedWriter(final, key)
        writer.write(data)
        writer.close()
        digest = SealedReader(final, key).sha256()
        live.unlink()  # before the lock goes: a process waiting for it then finds no file
    finally:
        if held is None:
            lock.close()
    return Finished(duration=end, sha256=digest, size=len(data), complete=reader.complete, streams=streams)


def examine(final: Path, key: bytes) -> Finished:
    """What ``finalize`` returned for a segment already finished (``final``, sealed and seekable) whose
    process died before it was recorded anywhere: its length, hash, size and streams, read back from it."""
    reader = SealedReader(final, key)
    if not reader.complete:
        raise RecordingError(f"{final.name} was cut off while it was being finished")
    source = av.open(reader.stream(), "r", format="matroska")
    try:
        streams = [_described(stream) for stream in source.streams]
        end = 0.0
        for packet in source.demux():
            if packet.dts is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    finally:
        source.close()
    return Finished(duration=end, sha256=reader.sha256(), size=reader.size, complete=False, streams=streams)


def _described(stream: av.stream.Stream) -> dict[str, object]:
    """A stream as a recording's row keeps it: kind, codec (and size), and whose, if the file says."""
    owner = stream.metadata.get(PARTICIPANT_TAG)  # absent in files recorded before it was written
    return {"kind": stream.type, "codec": stream.codec_context.name,
            **({"width": stream.codec_context.width, "height": stream.codec_context.height}
               if stream.type == "video" else {}),
            **({"participant_id": owner} if owner else {})}
