"""Recording muxes the relay's packets as they are: byte for byte, with the right duration, sealed on
disk, and still playable after the process is killed mid-recording."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from media.errors import TamperedRecording
from media.passthrough import EncodedFrame
from media.recorder import Segment, SegmentResult, finalize
from media.relay import Relay
from media.sealed import SealedReader

from ..support.peers import RelayClient, palette_index, until

KEY = secrets.token_bytes(32)
ROOT = Path(__file__).resolve().parents[2]


async def _call(relay: Relay, clients: dict[str, RelayClient], video_codec: str | None = None) -> None:
    for pid in ("doctor", "specialist"):
        clients[pid] = RelayClient(pid, slots=1, video_codec=video_codec)
        await clients[pid].join(relay)
    # Packets flow from the start; frames are assembled only once a recording takes them.
    await until(lambda: len(relay.sources()) == 4 and all(s.packets for s in relay.sources()))


async def _record_call(live: Path, seconds: float, remember: Callable[[EncodedFrame], None], *,
                       video_codec: str = "vp8") -> tuple[SegmentResult, float]:
    """Two participants through a relay of ``video_codec``, recorded for ``seconds`` into ``live``; every
    frame the relay receives meanwhile also goes to ``remember``. The result, and the seconds of media the
    streams covered while recording: the longest span of timestamps among the frames one stream delivered
    meanwhile. That is the time recorded, unless the publishers fell behind and caught up: aiortc's test tracks
    stamp frames by the clock, so after a stall of this busy process they send a burst of frames for the time
    they missed, and the file (rightly) holds that time too."""
    clients: dict[str, RelayClient] = {}
    relay = Relay(video_codec=video_codec, on_layout=lambda pid, layout: clients[pid].on_layout(layout))
    try:
        await _call(relay, clients, video_codec=None if video_codec == "vp8" else video_codec.upper())
        streams: list[list[EncodedFrame]] = []
        for publication in relay.publications():
            publication.sinks.add(remember)
            streams.append([])
            publication.sinks.add(streams[-1].append)
        started = time.monotonic()
        segment = Segment(live, KEY, relay.publications())
        await asyncio.sleep(seconds)
        segment.stop()
        stopped = time.monotonic()
        spans = [(frames[-1].timestamp - frames[0].timestamp) / frames[0].clock_rate
                 for frames in ([f for f in stream if started <= f.arrived <= stopped] for stream in streams)
                 if len(frames) > 1]
        return await asyncio.to_thread(segment.join, 10), max(spans, default=0.0)
    finally:
        await relay.close()
        await asyncio.gather(*(c.close() for c in clients.values()))


def _demux(data: bytes) -> tuple[av.container.InputContainer, list[av.Packet]]:
    container = av.open(io.BytesIO(data))
    return container, [p for p in container.demux() if p.dts is not None]


async def test_recording_holds_the_relayed_packets_unchanged(tmp_path: Path) -> None:
    """Every packet in the file is byte-identical to a frame the relay received (nothing re-encoded),
    the file has both participants' audio and video, its duration matches the media time recorded (±10 %),
    and the video decodes to the publisher's pattern."""
    received: set[bytes] = set()
    result, recorded = await _record_call(tmp_path / "one.live", 4, lambda frame: received.add(frame.data))

    assert result.error is None
    assert sorted((t.participant_id, t.kind) for t in result.tracks) == [
        ("doctor", "audio"), ("doctor", "video"), ("specialist", "audio"), ("specialist", "video")]
    finished = await asyncio.to_thread(finalize, tmp_path / "one.live", tmp_path / "one.rec", KEY)
    assert finished.complete and not (tmp_path / "one.live").exists()
    assert abs(finished.duration - recorded) <= 0.1 * recorded, (finished.duration, recorded)

    container, packets = _demux(SealedReader(tmp_path / "one.rec", KEY).read_all())
    assert {s.type for s in container.streams} == {"audio", "video"} and len(container.streams) == 4
    assert all(s.codec_context.name in ("vp8", "opus") for s in container.streams)
    assert container.duration is not None  # a finished file says how long it is, so players can seek
    assert packets and all(bytes(p) in received for p in packets)
    video = next(s for s in container.streams if s.type == "video")
    frames = [f for p in packets if p.stream.index == video.index for f in video.codec_context.decode(p)]
    assert len(frames) > 60 and all(palette_index(f) is not None for f in frames[5:])


def _annex_b_units(data: bytes) -> list[bytes]:
    # a NAL unit never ends in a zero byte: zeros before a start code belong to the start code
    return [unit.strip(b"\x00") for unit in data.split(b"\x00\x00\x01") if unit.strip(b"\x00")]


def _length_prefixed_units(data: bytes) -> list[bytes]:
    units, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        units.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return units


async def test_h264_recording_is_matroska_with_the_streams_own_parameters(tmp_path: Path) -> None:
    """An H.264 room records into Matroska: CodecPrivate (avcC) comes from the stream's own SPS/PPS, every
    video packet holds exactly the NAL units the relay received (reframed, not re-encoded), the length
    is the media time recorded (±10 %), and the video decodes to the publisher's pattern."""
    received: set[tuple[bytes, ...]] = set()

    def remember(frame: EncodedFrame) -> None:
        if frame.codec == "H264":
            received.add(tuple(_annex_b_units(frame.data)))
    result, recorded = await _record_call(tmp_path / "h264.live", 3, remember, video_codec="h264")

    assert result.error is None and {t.codec for t in result.tracks} == {"H264", "opus"}
    finished = await asyncio.to_thread(finalize, tmp_path / "h264.live", tmp_path / "h264.rec", KEY)
    assert abs(finished.duration - recorded) <= 0.1 * recorded, (finished.duration, recorded)
    data = SealedReader(tmp_path / "h264.rec", KEY).read_all()
    container, packets = _demux(data)
    assert container.format.name.startswith("matroska") and b"webm" not in data[:64]
    video = [s for s in container.streams if s.type == "video"]
    assert len(video) == 2 and all(s.codec_context.name == "h264" for s in video)
    sps = next(u for units in received for u in units if u[0] & 0x1F == 7)
    assert all(s.codec_context.extradata[0] == 1 and sps in s.codec_context.extradata for s in video)  # avcC
    video_packets = [p for p in packets if p.stream.type == "video"]
    assert video_packets and all(tuple(_length_prefixed_units(bytes(p))) in received for p in video_packets)
    frames = [f for p in video_packets if p.stream.index == video[0].index for f in video[0].codec_context.decode(p)]
    assert len(frames) > 45 and all(palette_index(f) is not None for f in frames[5:])


def test_sealed_file_detects_tampering(tmp_path: Path) -> None:
    """A sealed file reads back with its key, whole and by range; intact, it is refused (TamperedRecording) with
    another key; with one bit flipped on disk it is refused with its key or another."""
    from media.sealed import SealedWriter
    writer = SealedWriter(tmp_path / "x", KEY, chunk_bytes=16)
    writer.write(b"consultation recording, private" * 3)
    writer.close()
    reader = SealedReader(tmp_path / "x", KEY)
    assert reader.complete and reader.read_all() == b"consultation recording, private" * 3
    assert b"".join(reader.read_range(10, 40)) == (b"consultation recording, private" * 3)[10:40]
    with pytest.raises(TamperedRecording):
        SealedReader(tmp_path / "x", secrets.token_bytes(32)).read_all()
    raw = bytearray((tmp_path / "x").read_bytes())
    raw[40] ^= 1
    (tmp_path / "x").write_bytes(bytes(raw))
    with pytest.raises(TamperedRecording):
        SealedReader(tmp_path / "x", KEY).read_all()
    with pytest.raises(TamperedRecording):
        SealedReader(tmp_path / "x", secrets.token_bytes(32)).read_all()


def test_recording_survives_sigkill(tmp_path: Path) -> None:
    """Kill the recording process with SIGKILL: the file it was writing still decrypts, opens, and
    holds both tracks up to the last second or so before the kill."""
    child = subprocess.Popen([sys.executable, "-m", "tests.support.recording_child", str(tmp_path), KEY.hex()],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "recording"
        time.sleep(4)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)

    reader = SealedReader(tmp_path / "segment.live", KEY)
    assert not reader.complete  # it was cut off, and says so
    container, packets = _demux(reader.read_all())
    assert len(container.streams) == 4
    last = max(float(p.pts * p.time_base) for p in packets)
    assert last >= 2.5, last
    finished = finalize(tmp_path / "segment.live", tmp_path / "segment.rec", KEY)
    assert not finished.complete and finished.duration >= 2.5
    container, packets = _demux(SealedReader(tmp_path / "segment.rec", KEY).read_all())
    assert container.duration is not None and len(packets) > 100
