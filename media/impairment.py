"""The relay under a really impaired link: ``telemed bench impairment`` reports it, tests/media/test_impairment.py
checks it, both through :func:`run`.

A publisher sends a two-layer camera through the relay (:class:`media.relay.Relay`, in this process): a
high layer no 300 kbit/s link can carry (noise, at the encoder's full bitrate) and a light low layer. Two
viewers (media/impairment_viewer.py, each a process of its own) receive it: *steady* on this host's own
network, *weak* in a network namespace behind a link (media/netns.py) that is clear, then capped at
300 kbit/s with 5 % loss, then clear again. Per viewer and phase: the layer the relay gave it over time,
video frames decoded per second, frozen time (gaps of more than 200 ms between decoded frames), and audio
packets received and lost with the sound concealed (milliseconds missing between decoded frames); and how
long the weak viewer took to come back to the high layer once the cap was lifted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import (
    AudioStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from .load_camera import LoadCamera
from .netns import CAP, LOSS_PERCENT, ImpairedLink, NamespaceUnavailable
from .relay import Relay

FROZEN_GAP = 0.2  # seconds between decoded frames that a viewer sees as a frozen picture
HIGH_SIZE, LOW_SIZE = (320, 240), (160, 120)
SAMPLE_SECONDS = 0.05  # how often the relay's choice for each viewer is read
ROOT = Path(__file__).resolve().parents[1]  # where ``python -m media.impairment_viewer`` is found
VIEWERS = ("weak", "steady")


@dataclass
class Seen:
    """What one viewer reported: each video frame (time, size), each audio frame (time, ms missing before
    it), the audio packet counts at each report (time, received, lost); and the relay's layer for it over
    time (time, layer), noted where it changed."""

    video: list[tuple[float, str]] = field(default_factory=list)
    audio: list[tuple[float, float]] = field(default_factory=list)
    packets: list[tuple[float, int, int]] = field(default_factory=list)
    layers: list[tuple[float, str]] = field(default_factory=list)

    def take(self, report: dict[str, Any]) -> None:
        self.video.extend((t, size) for t, size in report["video"])
        self.audio.extend((t, missing) for t, missing in report["audio"])
        self.packets.append((report["t"], report["audio_received"], report["audio_lost"]))

    def layer_at(self, t: float) -> str | None:
        layer = None
        for at, value in self.layers:
            if at > t:
                break
            layer = value
        return layer


def _counts_at(packets: list[tuple[float, int, int]], t: float) -> tuple[int, int]:
    """The audio packet counts of the last report at or before ``t`` (the first report's, if none)."""
    received, lost = (packets[0][1], packets[0][2]) if packets else (0, 0)
    for at, r, lo in packets:
        if at > t:
            break
        received, lost = r, lo
    return received, lost


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def figures(seen: Seen, start: float, end: float) -> dict[str, Any]:
    """What a viewer got between ``start`` and ``end`` (monotonic seconds). Frozen time is the part of
    the span covered by gaps of more than FROZEN_GAP between decoded video frames (a gap running over the
    span's edges counts within them); ``frozen_outside_pause_s`` leaves out the time the relay had paused
    the viewer's video on purpose."""
    seconds = end - start
    layer_seconds: Counter[str] = Counter()
    marks = [(t, layer) for t, layer in seen.layers if t < end]
    for (t, layer), following in zip(marks, [*marks[1:], (end, "")], strict=True):
        if layer:
            layer_seconds[layer] += _overlap((t, following[0]), (start, end))
    paused = []
    for (t, layer), following in zip(marks, [*marks[1:], (end, "")], strict=True):
        if layer == "paused":
            paused.append((max(t, start), min(following[0], end)))

    frames = [t for t, _ in seen.video if start <= t < end]
    before = [t for t, _ in seen.video if t < start]
    edges = [before[-1] if before else start, *frames, end]
    freezes = [(max(a, start), b) for a, b in zip(edges, edges[1:], strict=False) if b - a > FROZEN_GAP]
    frozen = sum(b - a for a, b in freezes)
    frozen_paused = sum(_overlap(freeze, pause) for freeze in freezes for pause in paused)
    received = [_counts_at(seen.packets, t) for t in (start, end)]
    audio = [missing for t, missing in seen.audio if start <= t < end]
    return {
        "seconds": round(seconds, 2),
        "layer_seconds": {layer: round(s, 2) for layer, s in sorted(layer_seconds.items()) if round(s, 2) > 0},
        "fps": round(len(frames) / seconds, 1) if seconds > 0 else 0.0,
        "sizes": dict(Counter(size for t, size in seen.video if start <= t < end)),
        "frozen_s": round(frozen, 2),
        "frozen_outside_pause_s": round(max(0.0, frozen - frozen_paused), 2),
        "longest_freeze_s": round(max((b - a for a, b in freezes), default=0.0), 2),
        "audio_frames_per_s": round(len(audio) / seconds, 1) if seconds > 0 else 0.0,
        "audio_received": received[1][0] - received[0][0],
        "audio_lost": max(0, received[1][1] - received[0][1]),
        "audio_concealed_ms": round(sum(audio)),
    }


class ViewerProcess:
    """media/impairment_viewer.py in a process of its own (in a namespace if ``link`` is given)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process, self.seen = process, Seen()
        self._reading: asyncio.Future[None] | None = None

    @classmethod
    async def start(cls, slots: int, link: ImpairedLink | None = None) -> ViewerProcess:
        argv = [sys.executable, "-m", "media.impairment_viewer", str(slots)]
        process = await asyncio.create_subprocess_exec(
            *(link.command(*argv) if link is not None else argv),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                            os.environ.get("PYTHONPATH")]))})
        return cls(process)

    async def join(self, relay: Relay, participant_id: str) -> None:
        assert self.process.stdout is not None and self.process.stdin is not None
        offer = json.loads(await asyncio.wait_for(self.process.stdout.readline(), 30))["offer"]
        answer = await relay.answer(participant_id, offer)
        self.process.stdin.write((json.dumps({"answer": answer}) + "\n").encode())
        await self.process.stdin.drain()
        self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.seen.take(json.loads(line))

    async def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
        if self._reading is not None:
            await asyncio.wait_for(asyncio.gather(self._reading, return_exceptions=True), 5)


async def _until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds:g} s")
        await asyncio.sleep(SAMPLE_SECONDS)


def _layer(relay: Relay, viewer: str) -> str | None:
    return next(iter(relay.video_layout(viewer).values()), None)


async def _publish(relay: Relay) -> RTCPeerConnection:
    publisher = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    publisher.addTransceiver(AudioStreamTrack(), direction="sendonly")
    publisher.addTransceiver(LoadCamera(*HIGH_SIZE, noise=True), direction="sendonly")
    publisher.addTransceiver(LoadCamera(*LOW_SIZE, noise=False), direction="sendonly")
    await publisher.setLocalDescription(await publisher.createOffer())
    answer = await relay.answer("publisher", publisher.localDescription.sdp)
    await publisher.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return publisher


async def run(link: ImpairedLink, *, clear_seconds: float = 5, capped_seconds: float = 20,
              recovery_seconds: float = 60, settled_seconds: float = 10, browser: bool = False) -> dict[str, Any]:
    """The scenario on an open ``link``; the report (times in seconds from when the cap was applied).
    Phases: *clear* before the cap, *capped*, *recovering* from the lift until the relay gives the weak
    viewer the high layer again, and *recovered*: ``settled_seconds`` from when its first high-layer frame
    is decoded again (absent if it never came back within ``recovery_seconds``). ``browser``: the weak
    viewer is Chromium (media/impairment_browser.py), as a patient's would be, not an aiortc peer."""
    from .impairment_browser import BrowserViewer

    relay = Relay()
    publisher = await _publish(relay)
    weak_viewer = await (BrowserViewer if browser else ViewerProcess).start(2, link)
    viewers: dict[str, ViewerProcess | BrowserViewer] = {"weak": weak_viewer, "steady": await ViewerProcess.start(2)}
    sampling: asyncio.Future[None] | None = None
    try:
        for name, viewer in viewers.items():
            await viewer.join(relay, name)

        async def sample() -> None:
            while True:
                now = time.monotonic()
                for name, viewer in viewers.items():
                    layer = _layer(relay, name)
                    if layer is not None and (not viewer.seen.layers or viewer.seen.layers[-1][1] != layer):
                        viewer.seen.layers.append((now, layer))
                await asyncio.sleep(SAMPLE_SECONDS)
        sampling = asyncio.ensure_future(sample())
        high = "x".join(map(str, HIGH_SIZE))
        await _until(lambda: all(_layer(relay, name) == "high" and
                                 sum(size == high for _, size in viewer.seen.video) > 30
                                 for name, viewer in viewers.items()), 45, "both viewers on the high layer")

        clear_at = time.monotonic()
        await asyncio.sleep(clear_seconds)
        capped_at = time.monotonic()
        await link.impair()
        try:
            await asyncio.sleep(capped_seconds)
        finally:
            lifted_at = time.monotonic()
            await link.lift()
        weak = viewers["weak"].seen
        back_at: float | None = None
        high_frames_at: float | None = None
        try:
            await _until(lambda: _layer(relay, "weak") == "high", recovery_seconds, "the weak viewer back on high")
            back_at = time.monotonic()
            await _until(lambda: any(t > back_at and size == high for t, size in weak.video), 10,
                         "the high layer decoded again")
            high_frames_at = next(t for t, size in weak.video if t > back_at and size == high)
        except TimeoutError:
            pass
        settled_from = high_frames_at or time.monotonic()
        await asyncio.sleep(max(0.0, settled_from + settled_seconds - time.monotonic()) + 1)  # + the last report
    finally:
        if sampling is not None:
            sampling.cancel()
        await relay.close()
        await publisher.close()
        for viewer in viewers.values():
            await viewer.close()

    phases = {"clear": (clear_at, capped_at), "capped": (capped_at, lifted_at),
              "recovering": (lifted_at, back_at or settled_from)}
    if back_at is not None:
        phases["recovered"] = (settled_from, settled_from + settled_seconds)

    def since_cap(t: float | None) -> float | None:
        return None if t is None else round(t - capped_at, 2)
    return {
        "link": {"cap": " ".join(CAP), "loss_percent": LOSS_PERCENT, "frozen_gap_s": FROZEN_GAP},
        "weak_viewer": "chromium" if browser else "aiortc",
        "phases": {name: [since_cap(a), since_cap(b)] for name, (a, b) in phases.items()},
        "viewers": {name: {"layers": [[since_cap(t), layer] for t, layer in viewer.seen.layers],
                           "phases": {phase: figures(viewer.seen, a, b) for phase, (a, b) in phases.items()}}
                    for name, viewer in viewers.items()},
        "recovery": {"to_high_layer_s": None if back_at is None else round(back_at - lifted_at, 2),
                     "to_high_frames_s": None if high_frames_at is None else round(high_frames_at - lifted_at, 2)},
    }


def as_text(report: dict[str, Any]) -> str:
    link = report["link"]
    weak = report.get("weak_viewer", "aiortc")  # (runs recorded before the field are aiortc's)
    lines = [f"one publisher (two layers) relayed to two viewers; the weak one ({weak}) has its "
             f"link capped ({link['cap']}) with {link['loss_percent']} % loss from t=0 to "
             f"t={report['phases']['capped'][1]} s", ""]
    for name, viewer in report["viewers"].items():
        changes = ", ".join(f"{layer} at {t:+.1f} s" for t, layer in viewer["layers"])
        lines.append(f"{name} viewer: {changes}")
        lines.append(f"  {'phase':<11} {'from':>7} {'to':>7}  {'layers (s)':<32} {'fps':>5} {'frozen s':>8} "
                     f"{'not paused':>10}  {'audio rx':>8} {'lost':>5} {'concealed ms':>12}")
        for phase, row in viewer["phases"].items():
            start, end = report["phases"][phase]
            layers = " ".join(f"{layer} {s:g}" for layer, s in row["layer_seconds"].items())
            lines.append(f"  {phase:<11} {start:>+7.1f} {end:>+7.1f}  {layers:<32} {row['fps']:>5} "
                         f"{row['frozen_s']:>8} {row['frozen_outside_pause_s']:>10}  {row['audio_received']:>8} "
                         f"{row['audio_lost']:>5} {row['audio_concealed_ms']:>12}")
        lines.append("")
    recovery = report["recovery"]
    lines.append(f"after the cap was lifted: back on the high layer in {recovery['to_high_layer_s']} s, "
                 f"its frames decoded in {recovery['to_high_frames_s']} s")
    return "\n".join(lines)


def main(as_json: bool, *, clear_seconds: float, capped_seconds: float, recovery_seconds: float,
         settled_seconds: float, browser: bool = False) -> int:
    """``telemed bench impairment``: 1 with the reason where no impaired link (or no browser) can be made."""
    from .impairment_browser import BrowserUnavailable

    try:
        link = ImpairedLink().open()
    except NamespaceUnavailable as error:
        print(f"telemed bench impairment: {error}", file=sys.stderr)
        return 1
    try:
        report = asyncio.run(run(link, clear_seconds=clear_seconds, capped_seconds=capped_seconds,
                                 recovery_seconds=recovery_seconds, settled_seconds=settled_seconds,
                                 browser=browser))
    except (TimeoutError, BrowserUnavailable) as error:  # the viewers never got going: nothing to measure
        print(f"telemed bench impairment: {error}", file=sys.stderr)
        return 1
    finally:
        link.close()
    print(json.dumps(report, indent=2) if as_json else as_text(report))
    return 0
