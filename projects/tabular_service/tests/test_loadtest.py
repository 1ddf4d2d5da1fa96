"""The open-loop generator, the SLO check and the sweep, against tiny real servers on loopback.

The tiny server's capacity is set by a sleep, not by the CPU, so "offer more than it can serve"
is a fact these tests can rely on; the only timing bounds are generous ones.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import free_port
from tinyserver import TinyServer

from tabular_service.loadtest import cli
from tabular_service.loadtest.openloop import (
    Endpoint,
    LoadResult,
    _read_response,
    encode_request,
    json_body,
    run_open_loop,
)
from tabular_service.loadtest.server import ManagedServer, ServerStartError, probe
from tabular_service.loadtest.slo import DEFAULT_SLO, Slo, check, load_slo
from tabular_service.loadtest.sweep import parse_rates, sweep
from tabular_service.schema import EXAMPLE_APPLICATION

PROJECT = Path(__file__).resolve().parents[1]


def _request(url: str, body: bytes = b'{"x":1}') -> bytes:
    return encode_request(Endpoint.parse(url), body)


def _result(**overrides: object) -> LoadResult:
    """A step that meets the default SLO, with `overrides` applied."""
    values: dict[str, object] = dict(
        url="http://127.0.0.1:1/",
        offered_rps=1000.0,
        achieved_rps=1000.0,
        duration_s=5.0,
        count=5000,
        ok=5000,
        errors=0,
        error_rate=0.0,
        p50_ms=1.0,
        p90_ms=2.0,
        p95_ms=3.0,
        p99_ms=5.0,
        max_ms=9.0,
        mean_ms=1.2,
    )
    values.update(overrides)
    return LoadResult(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ request encoding
def test_encode_request_is_a_complete_http11_post():
    body = json_body(EXAMPLE_APPLICATION)
    raw = encode_request(Endpoint.parse("http://127.0.0.1:8000/v1/predict"), body)
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/predict HTTP/1.1"
    assert "Host: 127.0.0.1:8000" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(rest) == EXAMPLE_APPLICATION


@pytest.mark.parametrize("url", ["https://x:1/a", "ftp://x/", "127.0.0.1:8000", "http:///path"])
def test_endpoint_rejects_what_it_cannot_speak(url):
    with pytest.raises(ValueError, match="http://"):
        Endpoint.parse(url)


@pytest.mark.parametrize(
    ("wire", "status", "keep"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, True),
        (
            b"HTTP/1.1 422 Unprocessable\r\ncontent-length: 2\r\nConnection: close\r\n\r\n{}",
            422,
            False,
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, True),
        (b"HTTP/1.0 204 No Content\r\n\r\n", 204, False),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil-close", 200, False),
    ],
)
def test_response_parser_reads_exactly_one_response(wire, status, keep):
    async def parse() -> tuple[int, bool, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(wire + (b"" if b"until-close" in wire else b"NEXT"))
        if b"until-close" in wire:
            reader.feed_eof()
        got = await _read_response(reader)
        rest = b"" if b"until-close" in wire else await reader.readexactly(4)
        return (*got, rest)

    got_status, got_keep, rest = asyncio.run(parse())
    assert (got_status, got_keep) == (status, keep)
    assert rest in (b"", b"NEXT")  # the next response's bytes were left in the stream


# ------------------------------------------------------------------------------ the generator
def test_every_scheduled_request_is_sent_and_counted():
    with TinyServer() as server:
        result = run_open_loop(server.url, _request(server.url), 200, 1.0, warmup=0.2)
        served = server.requests
    assert result.count == 200  # the measured window only
    assert served == 240  # warm-up requests were sent too, just not reported
    assert result.ok == 200 and result.errors == 0 and result.error_rate == 0.0
    assert result.outcomes == {"200": 200}
    assert 0 < result.p50_ms <= result.p90_ms <= result.p95_ms <= result.p99_ms <= result.max_ms
    assert result.p99_ms < 1000  # generous: a trivial server on loopback
    assert 150 <= result.achieved_rps <= 205
    assert result.duration_s >= 1.0
    assert 1 <= result.connections <= 256


def test_non_2xx_responses_are_errors():
    with TinyServer(fail_every=10) as server:
        result = run_open_loop(server.url, _request(server.url), 200, 1.0)
    assert result.count == 200
    assert result.outcomes == {"200": 180, "500": 20}
    assert result.errors == 20 and result.error_rate == pytest.approx(0.1)
    assert not check(result, Slo(latency_ms=10_000)).ok


def test_latency_is_measured_from_the_schedule_when_the_server_falls_behind():
    """Capacity 100/s (10 ms each, one at a time). At 50/s latency stays near 10 ms; at 200/s the
    backlog grows by 100 requests a second and the last of 200 requests waits about a second.
    A closed-loop tool would report ~10 ms in both cases."""
    with TinyServer(service_ms=10) as server:
        request = _request(server.url)
        light = run_open_loop(server.url, request, 50, 1.0, timeout=5)
        heavy = run_open_loop(server.url, request, 200, 1.0, timeout=5)
    assert light.errors == 0 and heavy.errors == 0
    assert light.p50_ms < 200
    assert heavy.max_ms > 600  # ~1000 ms: queued behind the backlog, counted from the schedule
    assert heavy.p50_ms > light.p50_ms * 3
    assert heavy.connections > 10  # it kept sending on schedule over new connections
    assert heavy.achieved_rps < 0.95 * 200
    verdict = check(heavy, Slo(latency_ms=10_000))
    assert verdict.saturated and not verdict.ok


def test_refused_connections_are_errors_not_a_hang():
    server = TinyServer().start()
    server.stop()  # the port is now closed
    start = time.perf_counter()
    result = run_open_loop(server.url, _request(server.url), 200, 0.5, timeout=1)
    assert time.perf_counter() - start < 10
    assert result.count == 100 and result.ok == 0
    assert result.outcomes == {"connect_error": 100}
    assert math.isinf(result.p99_ms)
    assert result.to_dict()["p99_ms"] is None  # JSON-safe
    assert LoadResult.from_dict(result.to_dict()) == result
    assert check(result).reasons[0].startswith("error rate 100.000%")


def test_a_server_dying_mid_run_gives_errors_not_a_hang():
    server = TinyServer().start()
    threading.Timer(0.5, server.stop).start()
    start = time.perf_counter()
    result = run_open_loop(server.url, _request(server.url), 200, 1.5, timeout=1)
    assert time.perf_counter() - start < 15
    assert result.count == 300
    assert result.ok > 20  # answered while it lived
    assert result.errors > 100  # everything after it died
    assert result.ok + result.errors == result.count
    assert set(result.outcomes) <= {"200", "connect_error", "io_error", "timeout"}


def test_a_server_that_never_answers_times_out():
    with TinyServer(hang=True) as server:
        start = time.perf_counter()
        result = run_open_loop(server.url, _request(server.url), 50, 0.5, timeout=0.3)
        elapsed = time.perf_counter() - start
    assert elapsed < 10
    assert result.outcomes == {"timeout": 25}


# ------------------------------------------------------------------------------ SLO
def test_committed_slo_file_matches_the_built_in_default():
    assert load_slo(PROJECT / "docs" / "slo.json") == DEFAULT_SLO
    assert DEFAULT_SLO.max_error_rate == pytest.approx(0.001)
    assert (DEFAULT_SLO.latency_percentile, DEFAULT_SLO.latency_ms) == (99, 20.0)
    assert (DEFAULT_SLO.target_rps, DEFAULT_SLO.cores) == (1000, 2)


def test_load_slo_finds_the_file_via_env_or_home(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "slo.json").write_text(json.dumps({"latency_ms": 50}))
    monkeypatch.delenv("TABULAR_SLO", raising=False)
    monkeypatch.setenv("TABULAR_HOME", str(tmp_path))
    assert load_slo().latency_ms == 50
    monkeypatch.setenv("TABULAR_HOME", str(tmp_path / "nowhere"))
    assert load_slo() == DEFAULT_SLO
    other = tmp_path / "strict.json"
    other.write_text(json.dumps({"availability": 0.9999}))
    monkeypatch.setenv("TABULAR_SLO", str(other))
    assert load_slo().max_error_rate == pytest.approx(0.0001)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"latency_ms": 20, "p99": 1}', "unknown SLO field"),
        ('{"availability": 1.5}', "availability"),
        ('{"latency_percentile": 98}', "latency_percentile"),
    ],
)
def test_bad_slo_files_are_rejected_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "slo.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_slo(path)


def test_check_passes_a_good_step_and_names_each_violation():
    assert check(_result()).ok
    assert check(_result(errors=5, error_rate=0.001)).ok  # exactly on budget is inside it
    verdict = check(_result(errors=6, error_rate=0.0012, p99_ms=20.5, achieved_rps=900.0))
    assert not verdict.ok and verdict.saturated
    assert len(verdict.reasons) == 3
    assert "error rate" in verdict.reasons[0]
    assert "p99 20.5 ms > 20 ms" in verdict.reasons[1]
    assert "achieved 900/s" in verdict.reasons[2]
    assert not check(_result(p95_ms=30.0), Slo(latency_percentile=95)).ok


# ------------------------------------------------------------------------------ sweep
class FakeRunner:
    """Answers each rate with a result whose p99 and achieved rate come from a table."""

    def __init__(self, table: dict[float, tuple[float, float]]) -> None:
        self.table, self.rates = table, []

    def __call__(self, url, request, rate, duration, **kwargs) -> LoadResult:
        self.rates.append(rate)
        p99, achieved_fraction = self.table[rate]
        return _result(offered_rps=rate, achieved_rps=rate * achieved_fraction, p99_ms=p99)


def _sweep(table, rates=None):
    runner = FakeRunner(table)
    lines: list[str] = []
    result = sweep(
        "http://x:1/", b"", rates or sorted(table), runner=runner, pause=0, progress=lines.append
    )
    return result, runner.rates, lines


def test_sweep_stops_after_two_failures_in_a_row():
    table = {250: (5, 1), 500: (8, 1), 750: (25, 1), 1000: (30, 1), 1250: (5, 1)}
    result, ran, lines = _sweep(table)
    assert ran == [250, 500, 750, 1000]  # 1250 never ran
    assert result.max_rate_at_slo == 500
    assert result.best.result.p99_ms == 8
    assert "failed 2 times in a row" in result.stopped_because
    assert len(lines) == 1 + 4 and "FAIL" in lines[-1]


def test_sweep_treats_one_failure_as_noise_and_stops_at_saturation():
    table = {250: (5, 1), 500: (25, 1), 750: (8, 1), 1000: (9, 1), 1250: (9, 0.8), 1500: (5, 1)}
    result, ran, _ = _sweep(table)
    assert ran == [250, 500, 750, 1000, 1250]
    assert result.max_rate_at_slo == 1000
    assert result.stopped_because == "saturated at 1250/s"
    data = result.to_dict()
    assert data["max_rate_at_slo"] == 1000 and len(data["steps"]) == 5
    assert data["steps"][1]["slo_ok"] is False and data["steps"][1]["slo_reasons"]


def test_sweep_can_run_on_past_slo_failures_until_saturation():
    table = {100: (5, 1), 200: (30, 1), 300: (40, 1), 400: (50, 0.5), 500: (5, 1)}
    runner = FakeRunner(table)
    result = sweep(
        "http://x:1/", b"", sorted(table), runner=runner, pause=0, max_failures=None, progress=None
    )
    assert runner.rates == [100, 200, 300, 400]
    assert result.max_rate_at_slo == 100 and result.stopped_because == "saturated at 400/s"


def test_sweep_with_no_passing_step_reports_none():
    result, _, _ = _sweep({100: (50, 1), 200: (60, 1)})
    assert result.max_rate_at_slo is None and result.best is None


@pytest.mark.slow
def test_sweep_against_a_server_of_known_capacity():
    """Capacity 250/s: 50 and 100/s hold, 400/s saturates and the sweep stops before 800/s."""
    with TinyServer(service_ms=4) as server:
        result = sweep(
            server.url,
            _request(server.url),
            [50, 100, 400, 800],
            duration=1.0,
            warmup=0.2,
            slo=Slo(latency_ms=250),  # generous: the machine is shared
            timeout=5,
            pause=0.2,
            progress=None,
        )
    assert [s.result.offered_rps for s in result.steps] == [50, 100, 400]
    assert result.max_rate_at_slo == 100
    assert result.steps[-1].verdict.saturated
    assert result.stopped_because == "saturated at 400/s"


def test_parse_rates():
    assert parse_rates("500, 250,1e3,500") == (250.0, 500.0, 1000.0)
    for bad in ("", "a,b", "0,100"):
        with pytest.raises(ValueError):
            parse_rates(bad)


# ------------------------------------------------------------------------------ CLI and servers
def test_cli_sweeps_writes_a_report_and_judges_it(tmp_path, capsys):
    lenient = tmp_path / "slo.json"
    lenient.write_text(json.dumps({"target_rps": 100, "latency_ms": 500}))
    out = tmp_path / "report.json"
    with TinyServer() as server:
        common = ["--url", server.url, "--rates", "50,100", "--duration", "0.5", "--warmup", "0.1"]
        passed = cli.main([*common, "--pause", "0", "--slo", str(lenient), "--out", str(out)])
        failed = cli.main([*common, "--pause", "0"])  # default SLO wants 1000/s: not offered
    text = capsys.readouterr().out
    assert (passed, failed) == (0, 1)
    assert "PASS: highest rate meeting the SLO: 100 req/s" in text
    assert "FAIL" in text
    report = json.loads(out.read_text())
    assert report["passed"] is True and report["max_rate_at_slo"] == 100
    assert [s["offered_rps"] for s in report["steps"]] == [50, 100]
    assert report["slo"]["target_rps"] == 100
    assert report["machine"]["cores"] >= 1 and report["machine"]["python"]


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert cli.main(["--url", "https://example.com/v1/predict"]) == 2
    assert cli.main(["--payload", str(tmp_path / "missing.json")]) == 2
    assert "error:" in capsys.readouterr().err


def test_default_payload_matches_the_endpoint():
    assert cli.default_payload("http://h:1/v1/predict") == EXAMPLE_APPLICATION
    assert cli.default_payload("http://h:1/invocations") == {
        "dataframe_records": [EXAMPLE_APPLICATION]
    }


def test_managed_server_reports_a_crash_with_its_log():
    server = ManagedServer(
        [sys.executable, "-c", "import sys; print('boom: no model'); sys.exit(3)"],
        "http://127.0.0.1:9/readyz",
        startup_timeout=30,
        name="crasher",
    )
    with pytest.raises(ServerStartError, match="exited with code 3") as info:
        server.start()
    assert "boom: no model" in str(info.value)


@pytest.mark.slow
def test_managed_server_times_start_to_ready_and_stops_it(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = ManagedServer(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        url,
        cwd=tmp_path,
        startup_timeout=30,
        name="http.server",
    )
    with server:
        assert server.start_to_ready_s is not None and 0 < server.start_to_ready_s < 30
        assert probe(url) == 200
        with pytest.raises(ServerStartError, match="already answers"):
            ManagedServer([sys.executable, "-c", "pass"], url).start()
    assert server.proc is None
    assert probe(url) is None  # stopped: nothing answers any more


# ------------------------------------------------------------------------------ peer benchmark
def _peer_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("peer", PROJECT / "benchmarks" / "peer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peer_benchmark_without_a_registry_says_run_make_train(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TABULAR_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        _peer_module().main(["--home", str(tmp_path), "--out", str(tmp_path / "r.json")])
    assert exit_info.value.code == 2
    assert "make train" in capsys.readouterr().out
    assert not (tmp_path / "r.json").exists()


def test_peer_comparison_and_markdown_table():
    def server(rate, p99s, times, sustained, saturated):
        return {
            "max_rate_at_slo": rate,
            "p99_ms_at_max_rate": p99s.get(rate),
            "start_to_ready_s": times,
            "max_sustained_rps": sustained,
            "saturated": saturated,
            "steps": [{"offered_rps": r, "p99_ms": p} for r, p in p99s.items()],
        }

    peer = _peer_module()
    servers = {
        "tabular_service": server(
            750.0,
            {50.0: 4.3, 100.0: 2.2, 750.0: 14.7, 1000.0: 213.7},
            {"first_start_s": 4.0, "warm_start_s": 1.2},
            1000.0,
            False,
        ),
        "mlflow_models_serve": server(
            None, {50.0: 21.9, 100.0: 591.5}, {"first_start_s": 9.0}, 50.0, True
        ),
    }
    comparison = peer.compare(servers)
    assert comparison["p99_ms_at_common_rates"] == [
        {"rate": 50.0, "ours": 4.3, "mlflow": 21.9},
        {"rate": 100.0, "ours": 2.2, "mlflow": 591.5},
    ]
    assert comparison["sustained_ratio"] == 20.0 and comparison["ours_not_saturated"]
    assert comparison["mlflow_never_met_slo"] and comparison["mlflow_lowest_rate"] == 50.0
    report = {
        "slo": DEFAULT_SLO.to_dict(),
        "settings": {"duration_s": 5.0, "warmup_s": 1.0},
        "servers": servers,
        "ratio_ours_to_mlflow": None,
        "comparison": comparison,
        "machine": {"cpu": "x", "usable_cores": 2, "python": "3.11", "load_average": [0.1]},
        "note": "shared machine",
    }
    table = peer.markdown(report)
    assert "| 750 | 14.7 ms | 1.20 s (model cached) |" in table
    assert "| none | - | 9.00 s |" in table
    assert "| p99 MLflow (ms) | 21.9 | 591.5 |" in table
    assert "**unbounded**: MLflow met the SLO at no step (not even 50 req/s)" in table
    assert "20.0x (lower bound: ours did not saturate)" in table
    assert "shared machine" in table and "p99 <= 20 ms" in table


def test_peer_report_caveat_follows_the_load_average():
    peer = _peer_module()
    assert "no other significant load" in peer.load_note([0.3, 0.2, 0.1], 2)
    busy = peer.load_note([2.5, 2.0, 1.0], 2)
    assert "busy" in busy and "2.5" in busy and "2 cores" in busy
    assert "not measured" in peer.load_note(None, 2)


def test_managed_server_removes_its_temporary_log_but_keeps_a_named_one(tmp_path):
    crash = [sys.executable, "-c", "import sys; sys.exit(1)"]
    temporary = ManagedServer(crash, "http://127.0.0.1:9/", startup_timeout=30)
    named = ManagedServer(crash, "http://127.0.0.1:9/", log_path=tmp_path / "s.log")
    for server in (temporary, named):
        with pytest.raises(ServerStartError):
            server.start()
    assert not temporary.log_path.exists()
    assert named.log_path.exists()
