"""The mixed benchmark (signaling beside relayed media) still runs and reports what it claims: a tiny run;
the real figures are in docs/benchmarks.md."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from server.devprocs import ROOT

pytestmark = pytest.mark.alone  # a benchmark: its figures need the machine to themselves


def test_bench_mixed_measures_signaling_alone_and_beside_relayed_streams_in_both_relay_setups() -> None:
    """Both setups (relay on the node's loop, relay in workers) run; the node says it forwards at least the
    video streams asked for while the second measure runs; every signaling message arrives each time."""
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "bench", "mixed", "--clients", "20", "--rate", "50",
         "--seconds", "1", "--streams", "10", "--json"],
        capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert [s["relay_workers"] for s in report["setups"]] == ["0", "one per core"]
    for setup in report["setups"]:
        assert setup["streams_forwarded"]["video"] >= 10, setup
        for phase in (setup["alone"], setup["with_media"]):
            assert phase["delivered"] == phase["sent"] > 0, phase
            assert 0 < phase["latency_ms_p50"] <= phase["latency_ms_p99"]
    assert report["workers_p99_with_media_ratio"] > 0
