"""The HTTP service in-process (TestClient): every endpoint and every kind of bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tabular_service.predictor import CreditPredictor
from tabular_service.schema import EXAMPLE_APPLICATION, FIELDS
from tabular_service.service.app import create_app
from tabular_service.settings import Settings

MAX_BATCH = 5


@pytest.fixture(scope="module")
def client(small_predictor: CreditPredictor, tmp_path_factory) -> TestClient:
    home = tmp_path_factory.mktemp("service-home")
    app = create_app(Settings(home=home, max_batch=MAX_BATCH), small_predictor)
    with TestClient(app) as test_client:
        yield test_client


def post_raw(client: TestClient, path: str, text: str):
    return client.post(path, content=text, headers={"content-type": "application/json"})


def metric_value(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


# ---------------------------------------------------------------------------------- probes
def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_model(client: TestClient, small_predictor: CreditPredictor) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["model"]["kind"] == small_predictor.model_kind
    assert body["model"]["name"] == "credit-default"


# ---------------------------------------------------------------------------------- predictions
def test_predict_returns_probability_decision_and_model(
    client: TestClient, small_predictor: CreditPredictor
) -> None:
    response = client.post("/v1/predict", json=EXAMPLE_APPLICATION)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"probability_of_default", "decision", "threshold", "model", "request_id"}
    expected = float(small_predictor.predict_proba_records([EXAMPLE_APPLICATION])[0])
    assert body["probability_of_default"] == pytest.approx(expected, rel=1e-12)
    assert body["threshold"] == pytest.approx(small_predictor.threshold)
    assert body["decision"] == ("reject" if expected >= small_predictor.threshold else "approve")
    assert body["model"] == {"name": "credit-default", "version": "local", "kind": "logistic"}
    assert body["request_id"] == response.headers["x-request-id"]


def test_decision_follows_the_threshold(
    client: TestClient, small_predictor: CreditPredictor
) -> None:
    risky = {**EXAMPLE_APPLICATION, "sub_grade": "G5", "int_rate": 29.0, "annual_inc": 5000.0}
    safe = {**EXAMPLE_APPLICATION, "sub_grade": "A1", "int_rate": 5.5, "annual_inc": 250000.0}
    bodies = [client.post("/v1/predict", json=app).json() for app in (risky, safe)]
    assert bodies[0]["probability_of_default"] > bodies[1]["probability_of_default"]
    for body in bodies:
        rejected = body["probability_of_default"] >= small_predictor.threshold
        assert body["decision"] == ("reject" if rejected else "approve")


def test_batch_matches_single_predictions_in_order(client: TestClient) -> None:
    applications = [
        EXAMPLE_APPLICATION,
        {**EXAMPLE_APPLICATION, "sub_grade": "F3", "int_rate": 25.0},
        {**EXAMPLE_APPLICATION, "annual_inc": 120000.0},
    ]
    response = client.post("/v1/predict/batch", json={"applications": applications})
    assert response.status_code == 200
    body = response.json()
    assert len(body["predictions"]) == 3
    for application, prediction in zip(applications, body["predictions"], strict=True):
        single = client.post("/v1/predict", json=application).json()
        assert prediction["probability_of_default"] == pytest.approx(
            single["probability_of_default"], rel=1e-12
        )
        assert prediction["decision"] == single["decision"]
    assert body["request_id"] == response.headers["x-request-id"]


def test_batch_at_the_limit_is_accepted(client: TestClient) -> None:
    response = client.post("/v1/predict/batch", json={"applications": [EXAMPLE_APPLICATION] * 5})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == MAX_BATCH


# ---------------------------------------------------------------------------------- bad input
def with_field(name: str, value: object) -> str:
    return json.dumps({**EXAMPLE_APPLICATION, name: value})


BAD_INPUTS = {
    "missing field": (
        json.dumps({k: v for k, v in EXAMPLE_APPLICATION.items() if k != "annual_inc"}),
        "annual_inc",
        "missing",
    ),
    "string for number": (with_field("annual_inc", "lots"), "annual_inc", "float_type"),
    "numeric string": (with_field("annual_inc", "50000"), "annual_inc", "float_type"),
    "boolean for number": (with_field("int_rate", True), "int_rate", "float_type"),
    "negative income": (with_field("annual_inc", -1), "annual_inc", "greater_than_equal"),
    "rate out of range": (with_field("int_rate", 500), "int_rate", "less_than_equal"),
    "count not whole": (with_field("inq_fi", 1.5), "inq_fi", "int_type"),
    "count as string": (with_field("inq_fi", "1"), "inq_fi", "int_type"),
    "whole float count out of range": (
        with_field("delinq_2yrs", 600.0),
        "delinq_2yrs",
        "less_than_equal",
    ),
    "huge float count": (with_field("delinq_2yrs", 1e300), "delinq_2yrs", None),
    "NaN": (with_field("annual_inc", float("nan")), "annual_inc", "finite_number"),
    "Infinity": (with_field("revol_util", float("inf")), "revol_util", "finite_number"),
    "-Infinity in a count": (with_field("delinq_2yrs", float("-inf")), "delinq_2yrs", None),
    "unknown category": (with_field("term", "term_12"), "term", "literal_error"),
    "null": (with_field("sub_grade", None), "sub_grade", "literal_error"),
    "unknown extra field": (with_field("zip_code", "06103"), "zip_code", "extra_forbidden"),
    "malformed JSON": ('{"funded_amnt": 16100,', "body", "json_invalid"),
    "empty body": ("", "body", "json_invalid"),
    "not an object": ("[1, 2, 3]", "body", "model_type"),
}


@pytest.mark.parametrize(("text", "field", "error_type"), BAD_INPUTS.values(), ids=list(BAD_INPUTS))
def test_bad_input_is_422_naming_the_field(
    client: TestClient, text: str, field: str, error_type: str | None
) -> None:
    response = post_raw(client, "/v1/predict", text)
    assert response.status_code == 422, response.text
    body = response.json()
    fields = {error["field"]: error for error in body["detail"]}
    assert field in fields, body
    assert fields[field]["message"]
    if error_type is not None:
        assert fields[field]["type"] == error_type
    assert body["request_id"] == response.headers["x-request-id"]


def test_whole_float_counts_are_accepted(client: TestClient) -> None:
    """JSON Schema counts 3.0 as an integer, so the API does too (but never "3" or true)."""
    as_floats = {**EXAMPLE_APPLICATION, "inq_fi": 0.0, "inq_last_12m": 3.0}
    response = client.post("/v1/predict", json=as_floats)
    assert response.status_code == 200
    expected = client.post("/v1/predict", json=EXAMPLE_APPLICATION).json()
    assert response.json()["probability_of_default"] == expected["probability_of_default"]
    mixed = with_field("inq_fi", 2.0)[:-1] + ', "num_il_tl": 2.5}'
    errors = post_raw(client, "/v1/predict", mixed).json()["detail"]
    assert [e["field"] for e in errors] == ["num_il_tl"]


def test_every_bad_field_is_reported(client: TestClient) -> None:
    text = json.dumps({**EXAMPLE_APPLICATION, "annual_inc": -5, "term": "x", "extra": 1})
    response = post_raw(client, "/v1/predict", text)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["detail"]} == {"annual_inc", "term", "extra"}


def test_batch_errors_name_the_item_and_field(client: TestClient) -> None:
    bad = {**EXAMPLE_APPLICATION, "annual_inc": float("nan")}
    text = json.dumps({"applications": [EXAMPLE_APPLICATION, bad]})
    response = post_raw(client, "/v1/predict/batch", text)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == ["applications.1.annual_inc"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"applications": []}, "applications"),
        ({}, "applications"),
        ({"applications": [EXAMPLE_APPLICATION], "extra": 1}, "extra"),
        ({"applications": EXAMPLE_APPLICATION}, "applications"),
    ],
    ids=["empty", "missing", "extra key", "not a list"],
)
def test_bad_batch_shape_is_422(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/v1/predict/batch", json=body)
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["detail"]}


def test_oversize_batch_is_413_with_the_limit(client: TestClient) -> None:
    response = client.post(
        "/v1/predict/batch", json={"applications": [EXAMPLE_APPLICATION] * (MAX_BATCH + 1)}
    )
    assert response.status_code == 413
    assert f"at most {MAX_BATCH}" in response.json()["detail"]


def test_oversize_body_is_413_before_parsing(client: TestClient) -> None:
    response = post_raw(client, "/v1/predict", " " * (MAX_BATCH * 8192 + 70_000))
    assert response.status_code == 413


def test_wrong_method_and_unknown_path_are_4xx(client: TestClient) -> None:
    assert client.get("/v1/predict").status_code == 405
    assert client.post("/v1/nothing", json={}).status_code == 404


# ---------------------------------------------------------------------------------- request ids
def test_request_id_round_trip(client: TestClient) -> None:
    response = client.post(
        "/v1/predict", json=EXAMPLE_APPLICATION, headers={"X-Request-ID": "trace-42"}
    )
    assert response.headers["x-request-id"] == "trace-42"
    assert response.json()["request_id"] == "trace-42"
    assert client.get("/healthz", headers={"X-Request-ID": "h-1"}).headers["x-request-id"] == "h-1"


def test_request_ids_are_generated_unique_and_sanitised(client: TestClient) -> None:
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5 and all(len(i) == 32 for i in ids)
    too_long = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert too_long.headers["x-request-id"] != "x" * 500


def test_one_json_log_line_per_request(client: TestClient, caplog) -> None:
    with caplog.at_level("INFO", logger="tabular_service.access"):
        client.post("/v1/predict", json=EXAMPLE_APPLICATION, headers={"X-Request-ID": "log-1"})
    records = [r for r in caplog.records if r.name == "tabular_service.access"]
    assert len(records) == 1
    from tabular_service.service.observability import JsonFormatter

    line = json.loads(JsonFormatter().format(records[0]))
    assert line["request_id"] == "log-1"
    assert line["route"] == "/v1/predict" and line["status"] == 200
    assert line["duration_ms"] > 0


# ---------------------------------------------------------------------------------- metrics
def test_metrics_change_after_predictions(client: TestClient) -> None:
    before = client.get("/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    client.post("/v1/predict", json=EXAMPLE_APPLICATION)
    client.post("/v1/predict/batch", json={"applications": [EXAMPLE_APPLICATION] * 3})
    post_raw(client, "/v1/predict", "{")
    after = client.get("/metrics").text

    def delta(name: str, labels: str = "") -> float:
        return metric_value(after, name, labels) - metric_value(before.text, name, labels)

    assert delta("tabular_prediction_probability_count") == 4
    decisions = delta("tabular_decisions_total", 'decision="approve"') + delta(
        "tabular_decisions_total", 'decision="reject"'
    )
    assert decisions == 4
    route = 'method="POST",route="/v1/predict",status="{}"'
    assert delta("tabular_http_requests_total", route.format(200)) == 1
    assert delta("tabular_http_requests_total", route.format(422)) == 1
    latency = 'route="/v1/predict/batch"'
    assert delta("tabular_http_request_duration_seconds_count", latency) == 1
    assert 'le="0.001"' in after and 'le="0.02"' in after  # fine buckets below 25 ms
    assert 'tabular_model_info{kind="logistic",name="credit-default",version="local"} 1.0' in after
    assert "tabular_model_ready 1.0" in after


def test_apps_have_separate_metric_registries(small_predictor: CreditPredictor) -> None:
    first = create_app(Settings(), small_predictor)
    second = create_app(Settings(), small_predictor)
    with TestClient(first) as a, TestClient(second) as b:
        a.post("/v1/predict", json=EXAMPLE_APPLICATION)
        count = "tabular_prediction_probability_count"
        assert metric_value(a.get("/metrics").text, count) == 1
        assert metric_value(b.get("/metrics").text, count) == 0


# ---------------------------------------------------------------------------------- lifecycle
def test_not_ready_before_the_model_loads(tmp_path: Path) -> None:
    # Without entering the lifespan, nothing has started loading: the state is "loading".
    app = create_app(Settings(home=tmp_path, model_path=tmp_path / "model"))
    client = TestClient(app)
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "loading"
    for path, body in (("/v1/predict", EXAMPLE_APPLICATION), ("/v1/predict/batch", {})):
        response = client.post(path, json=body)
        assert response.status_code == 503
        assert response.json()["status"] == "loading"
    assert "tabular_model_ready 0.0" in client.get("/metrics").text


def wait_ready(client: TestClient, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/readyz").json()
        if body["status"] != "loading":
            return body
        time.sleep(0.02)
    raise TimeoutError("model never left the loading state")


def test_failed_load_is_reported_by_readyz(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with TestClient(create_app(Settings(home=tmp_path, model_path=missing))) as client:
        body = wait_ready(client)
        assert body["status"] == "failed"
        assert str(missing) in body["detail"]
        assert client.get("/readyz").status_code == 503
        assert client.post("/v1/predict", json=EXAMPLE_APPLICATION).status_code == 503
        assert client.get("/healthz").status_code == 200


def test_model_loads_in_the_background_from_a_path(predictor_dir: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, model_path=predictor_dir)
    with TestClient(create_app(settings)) as client:
        body = wait_ready(client)
        assert body["status"] == "ready", body
        assert body["model"]["source"] == "path"
        assert client.post("/v1/predict", json=EXAMPLE_APPLICATION).status_code == 200


# ---------------------------------------------------------------------------------- docs
def test_openapi_documents_schemas_examples_and_codes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(FIELDS) <= set(spec["components"]["schemas"]["LoanApplication"]["properties"])
    predict = spec["paths"]["/v1/predict"]["post"]
    example = predict["requestBody"]["content"]["application/json"]["examples"]["typical"]
    assert example["value"] == EXAMPLE_APPLICATION
    assert {"200", "413", "422", "503"} <= set(predict["responses"])
    batch = spec["paths"]["/v1/predict/batch"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["properties"]["applications"]["maxItems"] == 5
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200
