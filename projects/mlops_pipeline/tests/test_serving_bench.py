"""The serving benchmark's wrk sweep against a real HTTP server: levels, CPU samples and the
load trace the autoscaling replay reads."""

from __future__ import annotations

import shutil

import pytest
from rollout_standin import StandIn

from mlops_pipeline.autoscaling import trace
from mlops_pipeline.serving.bench import load_trace, parse_wrk, sweep, wrk_script


def test_parse_wrk_reads_rate_percentiles_and_failures():
    """wrk's text report: requests/s, latency percentiles in seconds, non-2xx and socket errors."""
    output = """Running 1s test @ http://127.0.0.1:1
  Latency Distribution
     50%    1.50ms
     75%    2.00ms
     90%  800.00us
     99%    1.20s
  1234 requests in 1.00s, 200.00KB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   1234.50
"""
    parsed = parse_wrk(output)
    assert parsed["rps"] == 1234.5
    assert parsed["p50_s"] == pytest.approx(0.0015)
    assert parsed["p90_s"] == pytest.approx(0.0008)
    assert parsed["p99_s"] == pytest.approx(1.2)
    assert (parsed["requests"], parsed["non_2xx"], parsed["socket_errors"]) == (1234, 7, 6)
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk("connection refused")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (make system-deps)")
def test_a_slow_server_still_gets_enough_levels_for_the_load_trace(tmp_path):
    """p99 far above the objective at one connection: the sweep goes on to `min_levels`, so
    the measured load trace has the samples the HPA replay needs."""
    server = StandIn(tmp_path, "stable", latency_ms=150)
    try:
        script = tmp_path / "predict.lua"
        script.write_text(wrk_script([{"flight_id": 1}, {"flight_id": 2}], "/v1/predict"))
        result = sweep(
            server.url, script, seconds=1, connections=(1, 2, 4, 8), pid=server.process.pid,
            min_levels=3, warmup_s=1,
        )  # fmt: skip
    finally:
        server.stop()
    levels = result["levels"]
    assert [lv["connections"] for lv in levels] == [1, 2, 4]
    assert all(not lv["within_slo"] for lv in levels) and result["max_rps_within_slo"] == 0.0
    assert all(lv["rps"] > 0 and lv["cpu_seconds"] >= 0 for lv in levels)
    document = load_trace(levels, {"cores": 2})
    measured = trace.MeasuredTrace.from_dict(document, source="sweep")
    assert len(measured.rps) == 3 and document["max_rps_at_slo"] is None
