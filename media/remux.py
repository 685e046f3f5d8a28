"""Each participant's share of a recording as a file of its own, packets copied and never decoded.

A recording is one file holding every participant's audio and video, and a browser's ``<video>`` plays one
video track of a file. So that a player can show everyone at once, the recording is split, one file per
participant, each holding that participant's audio and video with the packets and timestamps exactly as
they are in the recording: every part keeps the segment's clock, so the parts line up when played side by
side. VP8 parts are WebM; H.264 parts are MP4 (H.264 with Opus in MP4 plays in Chromium, Firefox and
Safari, where Matroska plays in Chromium alone).

One demuxing pass reads the sealed recording a chunk at a time and writes every part; each part is held in
memory until it is complete (its muxer goes back to write sizes and the seek index) and then sealed on disk
beside the others, so splitting a segment holds at most the segment's size, as finishing it did.
"""

from __future__ import annotations

import fcntl
import io
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av

from .sealed import CHUNK_BYTES, SealedReader, SealedWriter


@dataclass(frozen=True)
class PartFormat:
    muxer: str  # FFmpeg's name for the container
    media_type: str
    extension: str


WEBM = PartFormat("webm", "video/webm", "webm")
MP4 = PartFormat("mp4", "video/mp4", "mp4")


def part_format(codecs: Iterable[str]) -> PartFormat:
    """WebM for VP8 and Opus; MP4 when the video is H.264 (WebM allows only VP8, VP9 and AV1)."""
    return MP4 if "h264" in {c.lower() for c in codecs} else WEBM


@dataclass(frozen=True)
class Part:
    """One participant's file: its bytes, and what went into it."""

    data: bytes
    format: PartFormat
    packets: int
    payload_bytes: int  # the packets' own bytes, without the container around them


def split(source: io.RawIOBase | io.BufferedIOBase, parts: Sequence[Sequence[int]]) -> list[Part]:
    """Read a recording (WebM or Matroska) once and write each group of its streams (by index) into a file
    of its own, copying every packet with its timestamps; streams in no group are left out."""
    container = av.open(source, "r", format="matroska")
    try:
        owner: dict[int, int] = {}
        buffers, outputs, formats = [], [], []
        mapping: dict[int, av.stream.Stream] = {}
        for number, indexes in enumerate(parts):
            streams = [container.streams[i] for i in indexes]
            fmt = part_format(s.codec_context.name for s in streams)
            buffer = io.BytesIO()
            output = av.open(buffer, "w", format=fmt.muxer)
            for stream in streams:
                # A template copies the codec's parameters (size, Opus head, H.264's avcC) and opens no
                # codec: nothing here can decode or encode.
                copy = output.add_stream_from_template(stream)
                copy.time_base = stream.time_base
                mapping[stream.index], owner[stream.index] = copy, number
            buffers.append(buffer)
            outputs.append(output)
            formats.append(fmt)
        packets, payload = [0] * len(parts), [0] * len(parts)
        for packet in container.demux():
            if packet.dts is None or packet.stream.index not in mapping:
                continue  # the flush packet at the end of each stream, or a stream nobody asked for
            number = owner[packet.stream.index]
            packets[number] += 1
            payload[number] += packet.size
            packet.stream = mapping[packet.stream.index]
            outputs[number].mux(packet)
        for output in outputs:
            output.close()
    finally:
        container.close()
    made = []
    for number, fmt in enumerate(formats):
        made.append(Part(buffers[number].getvalue(), fmt, packets[number], payload[number]))
        buffers[number].close()  # one copy of each part at a time, not two
    return made


def ensure_parts(recording: Path, key: bytes, parts: Sequence[Sequence[int]], targets: Sequence[Path]) -> None:
    """Make sure every target holds its part of ``recording``, sealed under ``key``: split it unless an
    earlier call already did.

    Concurrent callers (a player asks for every participant at once, and several people may watch) wait
    for one another on a lock file, so a recording is split once. A finished part is linked into place
    only if none is there yet, never replaced: a reader holds a part's chunk offsets and reopens the file
    for each chunk, so a part must not change under it."""
    if all(target.exists() for target in targets):
        return
    directory = targets[0].parent
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
        if all(target.exists() for target in targets):
            return
        made: list[Part | None] = list(split(SealedReader(recording, key).stream(), parts))
        for number, target in enumerate(targets):
            part, made[number] = made[number], None  # let each part go once it is sealed
            assert part is not None
            if target.exists():
                continue
            partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
            writer = SealedWriter(partial, key)
            data = memoryview(part.data)
            for at in range(0, len(data), CHUNK_BYTES):  # a chunk at a time: the writer copies what it is given
                writer.write(data[at:at + CHUNK_BYTES])
            del data, part
            writer.close()
            try:
                os.link(partial, target)
            except FileExistsError:
                pass  # another node sharing the directory made it first: theirs stays
            finally:
                partial.unlink()
