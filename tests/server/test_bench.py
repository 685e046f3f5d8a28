"""The signaling benchmark still runs and reports what it claims (a tiny run; the real figures are in docs)."""

from __future__ import annotations

import json
import subprocess
import sys

from server.devprocs import ROOT


def test_bench_signaling_reports_both_setups_as_json() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "bench", "signaling", "--clients", "20", "--rate", "50",
         "--seconds", "1", "--json"],
        capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["nodes"] for s in report["setups"]] == [1, 2]
    for setup in report["setups"]:
        assert setup["held"] == 20
        phase = setup["phases"][0]
        assert phase["offered_per_second"] == 50
        assert phase["delivered"] == phase["sent"] > 0, "every relayed message arrived"
        assert 0 < phase["latency_ms_p50"] <= phase["latency_ms_p99"]
    assert isinstance(report["redis_added_latency_ms_p50"], float)
