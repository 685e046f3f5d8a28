"""What splitting a recording by participant costs: ``python -m media.remux_bench [--minutes M] [--json]``.

A segment as long as the recorder makes them (15 minutes by default) is put together from real VP8 and
Opus packets: ten seconds of a moving 640x480 picture encoded once at about the bitrate a browser sends
(the recording benchmark's stream), and ten seconds of sound, their packets repeated with advancing
timestamps for each participant, muxed and sealed as the recorder leaves a finished segment. Then, in a
child process of its own so its CPU time and peak memory are its own, ``ensure_parts`` splits it the way
the first viewing does: decrypt, demux, mux each participant's file, seal. A second call, which finds
the parts made, is timed too: what every later viewing pays.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import resource
import secrets
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from .recorder import PARTICIPANT_TAG, opus_template
from .remux import ensure_parts
from .sealed import SealedWriter

WIDTH, HEIGHT, FPS = 640, 480, 30
CLIP_SECONDS = 10
VIDEO_BITRATE = 420_000  # about what the recording benchmark's 640x480 stream carries (527,917 bytes in 10 s)
MS = Fraction(1, 1000)


def _clip() -> tuple[av.video.stream.VideoStream, list[tuple[int, bytes, bool]], list[tuple[int, bytes]]]:
    """Ten seconds of VP8 (a moving gradient, so the encoder has real work) and of Opus, as packets."""
    output = av.open(io.BytesIO(), "w", format="webm")
    video = output.add_stream("libvpx", rate=FPS, options={"deadline": "realtime", "cpu-used": "8"})
    video.width, video.height, video.pix_fmt, video.bit_rate = WIDTH, HEIGHT, "yuv420p", VIDEO_BITRATE
    video.codec_context.gop_size = FPS * CLIP_SECONDS  # one key frame, at the start of each repeat
    frames: list[tuple[int, bytes, bool]] = []
    for n in range(FPS * CLIP_SECONDS):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(bytes((x * 2 + y + n * 3) & 0xFF for y in range(HEIGHT // 16) for x in range(
            frame.planes[0].line_size)) * 16)
        frame.pts = n
        for packet in video.encode(frame):
            frames.append((int(packet.pts * 1000 / FPS), bytes(packet), packet.is_keyframe))
    for packet in video.encode(None):
        frames.append((int(packet.pts * 1000 / FPS), bytes(packet), packet.is_keyframe))
    audio_encoder = av.CodecContext.create("libopus", "w")
    audio_encoder.sample_rate, audio_encoder.layout, audio_encoder.format = 48_000, "stereo", "s16"
    audio_encoder.bit_rate = 32_000
    sound: list[tuple[int, bytes]] = []
    for n in range(50 * CLIP_SECONDS):
        samples = av.AudioFrame(format="s16", layout="stereo", samples=960)
        samples.planes[0].update(bytes((i * (n % 7 + 1)) & 0x7F for i in range(960 * 4)))
        samples.sample_rate, samples.pts = 48_000, n * 960
        sound += [(n * 20, bytes(p)) for p in audio_encoder.encode(samples)]
    return video, frames, sound


def make_segment(path: Path, key: bytes, participants: int, seconds: float) -> int:
    """A sealed, finished segment of ``participants`` people (audio and video each) lasting ``seconds``;
    returns its plaintext size."""
    template, frames, sound = _clip()
    buffer = io.BytesIO()
    output = av.open(buffer, "w", format="webm")
    streams = []
    for person in range(participants):
        audio = output.add_stream_from_template(opus_template())
        video = output.add_mux_stream("vp8", width=WIDTH, height=HEIGHT)
        for stream in (audio, video):
            stream.time_base = MS
            stream.metadata[PARTICIPANT_TAG] = f"participant-{person}"
        streams.append((audio, video))
    repeats = int(seconds // CLIP_SECONDS)
    for repeat in range(repeats):
        base = repeat * CLIP_SECONDS * 1000
        timeline = [(base + t, "v", data, key_) for t, data, key_ in frames] + \
                   [(base + t, "a", data, False) for t, data in sound]
        for at, kind, data, keyframe in sorted(timeline, key=lambda item: item[0]):
            for person, (audio, video) in enumerate(streams):
                packet = av.Packet(data)
                packet.pts = packet.dts = at + person  # each participant a millisecond apart, as they arrive
                packet.time_base = MS
                packet.is_keyframe = keyframe
                packet.stream = video if kind == "v" else audio
                output.mux(packet)
    output.close()
    data = buffer.getvalue()
    writer = SealedWriter(path, key)
    writer.write(data)
    writer.close()
    return len(data)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _split_child(recording: str, key: bytes, groups: list[list[int]], targets: list[str],
                 conn: Any) -> None:
    # Sampled, not ru_maxrss: that is kept across fork and exec, so a child starts with its parent's peak.
    base, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss_mb())
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started, cpu = time.perf_counter(), time.process_time()
    ensure_parts(Path(recording), key, groups, [Path(t) for t in targets])
    first = {"wall_seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}
    done.set()
    sampler.join()
    started = time.perf_counter()
    ensure_parts(Path(recording), key, groups, [Path(t) for t in targets])
    conn.send({**first, "peak_rss_growth_mb": max(peak[0], _rss_mb()) - base,
               "again_seconds": time.perf_counter() - started})


def bench(minutes: float, participants: int) -> dict[str, Any]:
    key = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        size = make_segment(root / "segment.rec", key, participants, minutes * 60)
        groups = [[2 * p, 2 * p + 1] for p in range(participants)]
        targets = [str(root / "parts" / f"{p}.webm.rec") for p in range(participants)]
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_split_child, args=(str(root / "segment.rec"), key, groups, targets, sender))
        child.start()
        result = receiver.recv()
        child.join()
        parts = sum(Path(t).stat().st_size for t in targets)
    return {"minutes": minutes, "participants": participants, "segment_mb": round(size / 2**20, 1),
            "parts_sealed_mb": round(parts / 2**20, 1),
            **{k: round(v, 3) for k, v in result.items()},
            "cpu_seconds_per_recorded_minute": round(result["cpu_seconds"] / minutes, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m media.remux_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="segment length (default 15, the recorder's)")
    parser.add_argument("--participants", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = bench(args.minutes, args.participants)
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
