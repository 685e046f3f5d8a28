"""The media benchmarks still run and report what they claim (tiny runs; the real figures are in docs)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from media.bench import PipedProcess
from server.devprocs import ROOT


def _bench(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "server.cli", "bench", *args, "--json"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_bench_relay_measures_the_relay_and_its_baselines_side_by_side() -> None:
    """One run measures the packet relay, the frame forwarding it replaced and aiortc's MediaRelay, each
    delivering frames to the probe and to a subscriber in a load process, with the relay's CPU ratio to both
    baselines, the relay's CPU per packet sent, each viewer's layer, and the load generator's own CPU; and,
    at the rate its publisher sent, the floor: a process only woken for each packet, and the floor of forwarding
    below aiortc (SRTP in, and out to each viewer), against the relay."""
    report = _bench("relay", "--subscribers", "2", "--seconds", "2")
    assert [p["mode"] for p in report["points"]] == ["relay", "frames", "mediarelay"]
    for point in report["points"]:
        assert point["subscribers"] == 2 and point["cpu_per_second"] > 0
        assert point["fps_min"] > 0, "frames reached both subscribers, the probe and the one in a load process"
        assert point["delay_ms_median"] is not None
        assert point["load_cpu_per_second"] > 0
    assert report["points"][0]["cpu_ratio_to_mediarelay"] > 0 and report["points"][0]["cpu_ratio_to_frames"] > 0
    relay = report["points"][0]
    assert relay["packets_per_second"] > 0 and relay["cpu_us_per_packet"] > 0, "the relay counts what it sent"
    assert sum(relay["viewers_by_layer"].values()) == 2, relay["viewers_by_layer"]
    assert report["points"][1]["viewers_by_layer"] is None, "the baselines choose no layers"
    assert report["direct_delay_ms"] > 0
    floor = report["wakeup_floor"]
    rate = relay["packets_per_second"] / 2
    assert abs(floor["packets_per_second"] - rate) < rate * 0.2, (floor, rate)
    assert floor["cpu_per_second"] > 0 and floor["cpu_us_per_packet"] > 0
    assert floor["relay_subscribers"] == 2 and floor["relay_cpu_ratio_to_floor"] > 0
    [bare] = report["forwarding_floor"]
    assert bare["viewers"] == 2 and bare["cpu_per_viewer"] > 0 and bare["relay_cpu_ratio_to_floor"] > 0
    assert bare["cpu_per_second"] > floor["cpu_per_second"] / 2, "it does more than the floor: unprotect, sends"
    assert 1.8 <= bare["forwarded_per_packet"] <= 2.0, "every packet went out to both viewers"


def test_subscribers_other_than_the_probe_are_spread_over_at_most_one_load_process_per_core() -> None:
    """The load generator's split: none for the probe alone, one per 150 others, never more than the cores."""
    from media.bench import load_processes

    cores = os.cpu_count() or 1
    assert load_processes(1) == 0
    assert load_processes(2) == 1 and load_processes(151) == 1
    assert load_processes(152) == min(2, cores)
    assert load_processes(10_000) == cores


def test_bench_recording_measures_the_floor_ours_and_mediarecorder() -> None:
    """One run measures receiving alone (the floor), our pass-through recording and aiortc's MediaRecorder,
    and both recordings write bytes."""
    report = _bench("recording", "--seconds", "2")
    assert [p["mode"] for p in report["points"]] == ["receive", "passthrough", "mediarecorder"]
    floor, ours, theirs = report["points"]
    assert floor["bytes_written"] == 0 and ours["bytes_written"] > 0 and theirs["bytes_written"] > 0
    assert report["cpu_ratio_to_mediarecorder"] > 0


def _exit_at_once(conn: object, code: int) -> None:
    """A bench child that dies before it answers anything."""
    os._exit(code)


async def test_a_bench_process_that_dies_ends_the_bench_with_its_exit_code_instead_of_hanging_it() -> None:
    """Guards PipedProcess: the parent closes its copy of the child's pipe end, so a child that dies (here
    before its first answer) makes the next question fail at once, naming the child and its exit code; before,
    the parent's read waited for ever. Stopping it afterwards is quiet."""
    child = PipedProcess("the test's child", _exit_at_once, 3)
    with pytest.raises(RuntimeError, match=r"the test's child exited \(code 3\)"):
        await asyncio.wait_for(child.ask("cpu"), 60)
    await child.stop()
    assert not child.process.is_alive()
