"""The media benchmarks still run and report what they claim (tiny runs; the real figures are in docs)."""

from __future__ import annotations

import json
import subprocess
import sys

from server.devprocs import ROOT


def _bench(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "server.cli", "bench", *args, "--json"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_bench_relay_measures_the_relay_and_its_baselines_side_by_side() -> None:
    """One run measures the packet relay, the frame forwarding it replaced and aiortc's MediaRelay, each
    delivering frames, with the relay's CPU ratio to both baselines, and the relay's CPU per packet sent."""
    report = _bench("relay", "--subscribers", "1", "--seconds", "2")
    assert [p["mode"] for p in report["points"]] == ["relay", "frames", "mediarelay"]
    for point in report["points"]:
        assert point["subscribers"] == 1 and point["cpu_per_second"] > 0
        assert point["fps_min"] > 0, "frames reached the subscriber"
        assert point["delay_ms_median"] is not None
    assert report["points"][0]["cpu_ratio_to_mediarelay"] > 0 and report["points"][0]["cpu_ratio_to_frames"] > 0
    relay = report["points"][0]
    assert relay["packets_per_second"] > 0 and relay["cpu_us_per_packet"] > 0, "the relay counts what it sent"
    assert report["direct_delay_ms"] > 0


def test_bench_recording_measures_the_floor_ours_and_mediarecorder() -> None:
    """One run measures receiving alone (the floor), our pass-through recording and aiortc's MediaRecorder,
    and both recordings write bytes."""
    report = _bench("recording", "--seconds", "2")
    assert [p["mode"] for p in report["points"]] == ["receive", "passthrough", "mediarecorder"]
    floor, ours, theirs = report["points"]
    assert floor["bytes_written"] == 0 and ours["bytes_written"] > 0 and theirs["bytes_written"] > 0
    assert report["cpu_ratio_to_mediarecorder"] > 0
