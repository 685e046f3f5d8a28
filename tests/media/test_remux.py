"""Splitting a recording by participant copies packets (nothing decoded or re-encoded), keeps the
recording's clock, and gives each participant's file that participant's picture."""

from __future__ import annotations

import asyncio
import io
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import pytest

from media import remux
from media.recorder import PARTICIPANT_TAG
from media.remux import MP4, WEBM, ensure_parts, part_format, split
from media.sealed import SealedReader

from ..support.peers import palette_index
from ..support.recorded_call import RecordedCall, record_call

KEY = secrets.token_bytes(32)
PEOPLE = ("doctor", "specialist", "patient")


@pytest.fixture(scope="module", params=["vp8", "h264"])
def call(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordedCall]:
    """Three participants, each a camera of its own colour, recorded for three seconds (once per codec)."""
    directory = tmp_path_factory.mktemp(request.param)
    with ThreadPoolExecutor(1) as pool:  # a loop of its own: module fixtures outlive each test's loop
        yield pool.submit(asyncio.run, record_call(directory, KEY, PEOPLE, 3.0, video_codec=request.param)).result()


def _groups(call: RecordedCall) -> list[list[int]]:
    """Stream indexes of each participant, in PEOPLE's order (the recorder's tracks are in file order)."""
    return [[i for i, t in enumerate(call.result.tracks) if t.participant_id == pid] for pid in PEOPLE]


def _packets(container: av.container.InputContainer) -> list[tuple[str, int, bytes]]:
    return [(p.stream.type, int(p.pts * p.time_base * 1000), bytes(p)) for p in container.demux() if p.dts is not None]


def _source(call: RecordedCall) -> bytes:
    return SealedReader(call.path, KEY).read_all()


def test_the_recording_says_whose_each_track_is(call: RecordedCall) -> None:
    """The recorder names each track's participant in the file itself, and finishing the file keeps it:
    what a recording recovered after a crash (from the file alone) needs to pair audio with video."""
    container = av.open(io.BytesIO(_source(call)))
    owners = [s.metadata.get(PARTICIPANT_TAG) for s in container.streams]
    assert owners == [t.participant_id for t in call.result.tracks]
    assert [s["participant_id"] for s in call.finished.streams] == owners
    assert sorted(set(owners)) == sorted(PEOPLE)


def test_each_participants_file_holds_their_packets_unchanged(call: RecordedCall) -> None:
    """Every packet of a participant's tracks, in order, with the same bytes and the same time (so the
    parts line up on the recording's clock), and nobody else's; the codec parameters are the source's."""
    source = av.open(io.BytesIO(_source(call)))
    by_stream: dict[int, list[tuple[str, int, bytes]]] = {}
    for packet in source.demux():
        if packet.dts is not None:
            by_stream.setdefault(packet.stream.index, []).append(
                (packet.stream.type, int(packet.pts * packet.time_base * 1000), bytes(packet)))
    groups = _groups(call)
    parts = split(io.BytesIO(_source(call)), groups)

    for indexes, part in zip(groups, parts, strict=True):
        assert part.format == (MP4 if call.finished.streams[1]["codec"] == "h264" else WEBM)
        output = av.open(io.BytesIO(part.data))
        assert output.format.name.startswith("mov" if part.format is MP4 else "matroska")
        assert [s.type for s in output.streams] == [source.streams[i].type for i in indexes]
        for copy, i in zip(output.streams, indexes, strict=True):
            original = source.streams[i].codec_context
            assert copy.codec_context.name == original.name
            assert copy.codec_context.extradata == original.extradata  # OpusHead, avcC: copied, not rebuilt
            if copy.type == "video":
                assert (copy.codec_context.width, copy.codec_context.height) == (original.width, original.height)
        got = _packets(output)
        for kind in ("audio", "video"):
            expected = [p for i in indexes for p in by_stream[i] if p[0] == kind]
            assert [p for p in got if p[0] == kind] == expected
        assert part.packets == len(got) and part.payload_bytes == sum(len(p[2]) for p in got)
    assert sum(p.packets for p in parts) == sum(len(v) for v in by_stream.values())


def test_each_participants_file_shows_that_participant(call: RecordedCall) -> None:
    """Decoded, a participant's video is their own camera's colour, and their audio decodes."""
    parts = split(io.BytesIO(_source(call)), _groups(call))
    for pid, part in zip(PEOPLE, parts, strict=True):
        container = av.open(io.BytesIO(part.data))
        frames = [f for f in container.decode(video=0)]
        assert len(frames) > 30
        assert {palette_index(f) for f in frames[3:]} == {call.colours[pid]}, pid
        container = av.open(io.BytesIO(part.data))
        assert sum(f.samples for f in container.decode(audio=0)) > 48_000  # over a second of sound


@pytest.mark.parametrize(("codecs", "expected"), [
    (("opus", "vp8"), WEBM), (("opus",), WEBM), (("vp8",), WEBM), (("opus", "h264"), MP4), (("H264",), MP4)])
def test_the_container_follows_the_video_codec(codecs: tuple[str, ...], expected: remux.PartFormat) -> None:
    """Each row: a part's codecs and its container: H.264 video (in either case) goes in MP4; VP8, or Opus alone, in
    WebM."""
    assert part_format(codecs) == expected


def test_parts_are_made_once_and_sealed(call: RecordedCall, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent players split a recording once; the parts are sealed like the recording, and a part
    already made is never replaced (a reader may be in the middle of it)."""
    splits: list[int] = []
    real_split = remux.split
    started = threading.Barrier(4)

    def counted(source, parts):  # type: ignore[no-untyped-def]
        splits.append(1)
        return real_split(source, parts)

    monkeypatch.setattr(remux, "split", counted)
    targets = [tmp_path / "parts" / f"{n}.rec" for n in range(3)]

    def build() -> None:
        started.wait()
        ensure_parts(call.path, KEY, _groups(call), targets)

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(build) for _ in range(4)]:
            future.result()
    assert splits == [1]
    inodes = [t.stat().st_ino for t in targets]
    assert not any(t.read_bytes().startswith(b"\x1a\x45\xdf\xa3") for t in targets)  # no plaintext WebM at rest
    made = split(io.BytesIO(_source(call)), _groups(call))  # the same packets (a muxer picks random track UIDs)
    assert [_packets(av.open(io.BytesIO(SealedReader(t, KEY).read_all()))) for t in targets] == \
        [_packets(av.open(io.BytesIO(p.data))) for p in made]
    ensure_parts(call.path, KEY, _groups(call), targets)
    assert [t.stat().st_ino for t in targets] == inodes and splits == [1]
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == [".lock", "0.rec", "1.rec", "2.rec"]
