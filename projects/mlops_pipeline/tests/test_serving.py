"""The prediction service end to end, in process: real Feast online store, real MLflow model.

One pipeline home (tests/serving_fixtures.py) serves every test: feature views materialised
for 12-15 March 2013, hist_gb registered as champion. The app is driven with Starlette's
TestClient (the same ASGI stack uvicorn runs) and one test starts the real process.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from serving_fixtures import AS_OF, ONLINE_END, build_serving_home, sample_requests
from starlette.testclient import TestClient

from mlops_pipeline.features.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from mlops_pipeline.serving.app import create_app
from mlops_pipeline.serving.model import load_model
from mlops_pipeline.serving.online import OnlineFeatures
from mlops_pipeline.serving.schemas import FlightRequest
from mlops_pipeline.serving.scoring import calendar_features
from mlops_pipeline.serving.settings import ServingSettings
from mlops_pipeline.training.tracking import store_uri, tracking

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_serving_home(tmp_path_factory.mktemp("serving-home"))


@pytest.fixture(scope="module")
def loaded(home):
    return load_model(home, "flight-delay", "champion"), OnlineFeatures(home.feature_repo)


def make_client(home, loaded, exporter=None, **settings) -> TestClient:
    model, features = loaded
    config = ServingSettings(home=home.home, **({"clock": "fixed", "as_of": AS_OF} | settings))
    app = create_app(config, model=model, features=features, span_exporter=exporter)
    return TestClient(app)


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_prediction_matches_the_model_on_the_same_features(home, loaded):
    """The service's probability equals the pyfunc model's on the features Feast holds."""
    import mlflow

    requests = sample_requests(20)
    with make_client(home, loaded) as client:
        response = client.post("/v1/predict/batch", json={"flights": requests})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["flight_id"] for p in predictions] == [r["flight_id"] for r in requests]
    # Fresh features everywhere; only aircraft absent from the FAA registry are missing.
    assert all(not p["features"]["stale"] for p in predictions)
    assert {m for p in predictions for m in p["features"]["missing"]} <= {
        "plane_age", "seats", "engines",
    }  # fmt: skip
    assert sum(not p["degraded"] for p in predictions) >= 15

    flights = [FlightRequest.model_validate(r) for r in requests]
    rows = []
    for flight, reading in zip(flights, loaded[1].read(flights), strict=True):
        row = {"origin": flight.origin, "carrier": flight.carrier, **calendar_features(flight)}
        for view in reading.values():
            row.update({k: (math.nan if v is None else v) for k, v in view.values.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)[[*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]]
    with tracking(store_uri(home.mlruns)):
        pyfunc = mlflow.pyfunc.load_model(f"models:/flight-delay/{loaded[0].version}")
    expected = pyfunc.predict(frame)["delay_probability"].to_numpy()
    got = [p["delay_probability"] for p in predictions]
    assert got == pytest.approx(expected.tolist(), abs=1e-12)
    assert predictions[0]["model"] == {"name": "flight-delay", "version": "1", "alias": "champion"}


def test_calendar_features_use_new_york_local_time():
    """Training computes hour/weekday/month in local time; serving must too."""
    flight = FlightRequest.model_validate(
        {**sample_requests(1)[0], "sched_dep": "2013-03-01T03:30:00Z"}
    )
    assert calendar_features(flight) == {
        "sched_hour": 22, "sched_dow": 3, "month": 2, "distance": flight.distance,
    }  # fmt: skip


def test_stale_features_use_defaults_flag_and_count(home, loaded):
    """With the schedule clock a day after the store's last rows, timed views are stale."""
    late = {**sample_requests(1)[0], "sched_dep": "2013-03-16T18:00:00Z"}
    with make_client(home, loaded, clock="schedule", as_of=None) as client:
        body = client.post("/v1/predict", json=late).json()
        metrics = metric_samples(client.get("/metrics").text)
    assert body["degraded"] is True
    assert (
        "temp" in body["features"]["stale"] and "route_delay_rate_7d" in body["features"]["stale"]
    )
    assert not set(body["features"]["stale"]) & {"plane_age", "seats", "engines"}
    assert 0 <= body["delay_probability"] <= 1
    assert (
        metrics[("mlops_features_missing_total", (("reason", "stale"), ("view", "weather")))] == 1
    )
    assert metrics[("mlops_predictions_total", (("degraded", "true"),))] == 1


def test_unknown_entities_are_missing_not_errors(home, loaded):
    """An airport, carrier and aircraft the store never saw: defaults, flags, a 200."""
    odd = {**sample_requests(1)[0], "origin": "XYZ", "carrier": "ZZ", "tailnum": "N0NE"}
    with make_client(home, loaded) as client:
        response = client.post("/v1/predict", json=odd)
        metrics = metric_samples(client.get("/metrics").text)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] is True
    assert {"temp", "origin_delay_rate_3h", "carrier_delay_rate_7d", "plane_age"} <= set(
        body["features"]["missing"]
    )
    assert metrics[("mlops_features_missing_total", (("reason", "missing"), ("view", "planes")))]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"carrier": 12}, "carrier"),
        ({"flight": "1545"}, "flight"),
        ({"sched_dep": "2013-03-14T10:00:00"}, "sched_dep"),
        ({"sched_dep": "yesterday"}, "sched_dep"),
        ({"distance": -5}, "distance"),
        ({"origin": "ewr"}, "origin"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_malformed_flights_get_422_naming_the_field(home, loaded, change, field):
    body = {**sample_requests(1)[0], **change}
    with make_client(home, loaded) as client:
        response = client.post("/v1/predict", json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["detail"]]


def test_missing_fields_broken_json_and_batch_limits(home, loaded):
    request = sample_requests(1)[0]
    with make_client(home, loaded, max_batch=3) as client:
        missing = client.post(
            "/v1/predict", json={k: v for k, v in request.items() if k != "origin"}
        )
        broken = client.post(
            "/v1/predict", content=b'{"carrier": ', headers={"content-type": "application/json"}
        )
        nested = client.post(
            "/v1/predict/batch", json={"flights": [request, {**request, "flight": 0}]}
        )
        too_many = client.post("/v1/predict/batch", json={"flights": [request] * 4})
        huge = client.post("/v1/predict", content=b" " * 100_000)
        empty = client.post("/v1/predict/batch", json={"flights": []})
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "origin"
    assert broken.status_code == 422 and broken.json()["detail"][0]["field"] == "body"
    assert nested.status_code == 422 and nested.json()["detail"][0]["field"] == "flights.1.flight"
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["field"] == "flights"
    assert huge.status_code == 413
    assert empty.status_code == 422


def test_metrics_follow_the_design(home, loaded):
    """RED metrics per route and the model's signals, with the names the rules use."""
    with make_client(home, loaded) as client:
        for request in sample_requests(5):
            client.post("/v1/predict", json=request)
        client.post("/v1/predict", json={})
        samples = metric_samples(client.get("/metrics").text)
    ok = (
        "mlops_http_requests_total",
        (("method", "POST"), ("route", "/v1/predict"), ("status", "200")),
    )
    bad = (
        "mlops_http_requests_total",
        (("method", "POST"), ("route", "/v1/predict"), ("status", "422")),
    )
    assert samples[ok] == 5 and samples[bad] == 1
    assert samples[("mlops_prediction_score_count", ())] == 5
    assert samples[("mlops_http_request_duration_seconds_count", (("route", "/v1/predict"),))] == 6
    assert (
        samples[
            (
                "mlops_model_info",
                (("alias", "champion"), ("name", "flight-delay"), ("version", "1")),
            )
        ]
        == 1
    )
    assert samples[("mlops_feature_staleness_seconds_count", (("view", "weather"),))] == 5
    assert samples[("mlops_feature_lookup_duration_seconds_count", ())] == 5
    assert samples[("mlops_model_ready", ())] == 1


def test_one_trace_per_request_continues_the_callers_trace(home, loaded):
    """Server span from the traceparent, with feature_lookup and model_predict children."""
    exporter = InMemorySpanExporter()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    header = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    with make_client(home, loaded, exporter=exporter) as client:
        client.post("/v1/predict", json=sample_requests(1)[0], headers=header)
        client.post("/v1/predict", json=sample_requests(1)[0])
    spans = exporter.get_finished_spans()
    by_trace: dict[str, list] = {}
    for span in spans:
        by_trace.setdefault(format(span.context.trace_id, "032x"), []).append(span)
    assert len(by_trace) == 2
    ours = {s.name: s for s in by_trace[trace_id]}
    assert set(ours) == {"POST /v1/predict", "feature_lookup", "model_predict"}
    server = ours["POST /v1/predict"]
    assert format(server.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert ours["feature_lookup"].parent.span_id == server.context.span_id
    assert ours["model_predict"].parent.span_id == server.context.span_id
    assert server.attributes["http.route"] == "/v1/predict"


def test_readiness_reports_a_missing_registry(tmp_path):
    """No model registered: live, not ready, and /readyz says why."""
    settings = ServingSettings(home=tmp_path)
    with TestClient(create_app(settings)) as client:
        client.app.state.service.wait_settled(30)
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        predict = client.post("/v1/predict", json=sample_requests(1)[0])
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed" and "no model registry" in ready.json()["detail"]
    assert predict.status_code == 503


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_process_serves_on_loopback_and_writes_spans(home, tmp_path):
    """`python -m mlops_pipeline.serving` becomes ready, predicts, exports spans, stops."""
    port = _free_port()
    spans = tmp_path / "spans.jsonl"
    command = [
        sys.executable, "-m", "mlops_pipeline.serving", "--home", str(home.home),
        "--port", str(port), "--clock", "fixed", "--as-of", ONLINE_END.isoformat(),
        "--trace-file", str(spans),
    ]  # fmt: skip
    log = (tmp_path / "service.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "service.log").read_text()
            assert time.monotonic() < deadline, "service not ready in 90 s"
            time.sleep(0.3)
        response = httpx.post(f"{base}/v1/predict", json=sample_requests(1)[0], timeout=10)
        assert response.status_code == 200 and response.json()["degraded"] is False
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    names = [json.loads(line)["name"] for line in spans.read_text().splitlines()]
    assert {"POST /v1/predict", "feature_lookup", "model_predict"} <= set(names)


def test_bad_settings_fail_at_start():
    with pytest.raises(ValueError, match="as_of is required"):
        ServingSettings(clock="fixed")
    with pytest.raises(ValueError, match="MLOPS_MAX_BATCH"):
        ServingSettings.from_env({"MLOPS_MAX_BATCH": "many"})
    with pytest.raises(ValueError, match="clock"):
        ServingSettings(clock="sundial")  # type: ignore[arg-type]


def test_concurrent_single_requests_are_micro_batched_with_one_trace_each(home, loaded):
    """Twelve concurrent requests: fewer model calls than requests, same answers, own traces."""
    import asyncio

    exporter = InMemorySpanExporter()
    model, features = loaded
    settings = ServingSettings(
        home=home.home, clock="fixed", as_of=AS_OF, batch_size=8, batch_wait_ms=20
    )
    app = create_app(settings, model=model, features=features, span_exporter=exporter)
    requests = sample_requests(12)

    async def fire() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            return await asyncio.gather(*(client.post("/v1/predict", json=r) for r in requests))

    responses = asyncio.run(fire())
    assert all(r.status_code == 200 for r in responses)
    batcher = app.state.service.batcher
    assert batcher.flights == 12 and batcher.batches < 12

    one_by_one = make_client(home, loaded, batch_size=1)
    with one_by_one as client:
        alone = [client.post("/v1/predict", json=r).json() for r in requests]
    assert [r.json() for r in responses] == alone

    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.name == "POST /v1/predict"]
    assert len(servers) == 12 and len({s.context.trace_id for s in servers}) == 12
    for server in servers:
        children = {
            s.name
            for s in spans
            if s.parent is not None and s.parent.span_id == server.context.span_id
        }
        assert children == {"feature_lookup", "model_predict"}


def test_unknown_paths_are_counted_as_unmatched(home, loaded):
    """A scanner's random paths must not mint a new metric series each: one `unmatched` route."""
    with make_client(home, loaded) as client:
        assert client.get("/wp-admin/setup.php").status_code == 404
        assert client.get("/v1/nothing-here").status_code == 404
        samples = metric_samples(client.get("/metrics").text)
    key = (
        "mlops_http_requests_total",
        (("method", "GET"), ("route", "unmatched"), ("status", "404")),
    )
    assert samples[key] == 2
    assert not any("wp-admin" in str(labels) for _, labels in samples)


@pytest.mark.parametrize(
    "sched_dep", ["0001-01-01T00:30:00Z", "9999-12-31T23:30:00-01:00", "0001-01-01T00:00:00+01:00"]
)
def test_departures_outside_any_calendar_we_can_compute_are_422(home, loaded, sched_dep):
    """Dates whose UTC, New York time or prediction time would overflow: a 422, never a 500."""
    bad = {**sample_requests(1)[0], "sched_dep": sched_dep}
    with make_client(home, loaded) as client:
        response = client.post("/v1/predict", json=bad)
        batch = client.post("/v1/predict/batch", json={"flights": [sample_requests(1)[0], bad]})
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "sched_dep"
    assert batch.status_code == 422 and batch.json()["detail"][0]["field"] == "flights.1.sched_dep"


def test_an_oversized_declared_body_is_refused_before_it_is_read(home, loaded):
    with make_client(home, loaded) as client:
        response = client.post(
            "/v1/predict", content=b"{}", headers={"content-length": "100000000"}
        )
    assert response.status_code == 413


def test_made_up_http_methods_share_one_label(home, loaded):
    with make_client(home, loaded) as client:
        for i in range(3):
            client.request(f"FOO{i}", "/v1/predict")
        samples = metric_samples(client.get("/metrics").text)
    methods = {
        dict(labels).get("method")
        for name, labels in samples
        if name == "mlops_http_requests_total"
    }
    assert "OTHER" in methods and not any(m and m.startswith("FOO") for m in methods)
