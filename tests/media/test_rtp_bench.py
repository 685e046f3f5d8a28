"""media/rtp_bench.py still measures what docs/packet-forwarding.md reports (a tiny run; figures in docs)."""

from __future__ import annotations

from media.rtp_bench import bench


async def test_the_latency_bench_measures_frames_and_packets_against_direct_in_one_run() -> None:
    """Both servers, and the direct connection beside each, deliver decoded frames to their probes; both
    servers report CPU; the per-packet costs are measured."""
    report = await bench(seconds=1.5, subscribers=1, warmup=1.5)
    assert [p["mode"] for p in report["points"]] == ["frames", "packets"]
    for point in report["points"]:
        assert point["frames"] > 10, "frames reached both probes"
        assert point["delay_ms_median"] > 0 and point["direct_ms_median"] > 0
        assert point["added_ms_median"] is not None and point["server_cpu_per_second"] > 0
        assert point["fps_min"] > 10
    assert set(report["per_packet"]) >= {"srtp_protect_us", "forward_us", "write_us", "viewer_us", "aiortc_receiver_us"}
    assert all(cost > 0 for cost in report["per_packet"].values())
