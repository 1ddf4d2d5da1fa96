"""Checkpoints 1.9-1.11: the credit-default service, started on loopback and called over HTTP.

The grader saves a small model (a scikit-learn logistic regression behind your `FeatureEncoder`)
to a temporary folder, starts your service with `python -m tabular_service.service` and
`TABULAR_MODEL_PATH` pointing at it, and calls the endpoints like any client would. Expected
probabilities are computed here from the encoder's formula, not by your code. The encoder's
`scale_numeric` (checkpoint 1.7) is on the prediction path, so 1.9 and 1.11 need 1.7 first.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from learn.testing import import_learner


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(url: str, body: bytes | None = None) -> tuple[int, dict | str, dict]:
    """(status, JSON body or text, lower-cased headers) of a GET, or a POST with a body."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
            headers = {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
        headers = {k.lower(): v for k, v in exc.headers.items()}
    text = raw.decode()
    try:
        return status, json.loads(text), headers
    except json.JSONDecodeError:
        return status, text, headers


class Service:
    """A running service: its base URL and the model it serves."""

    def __init__(self, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    def post(self, path: str, payload: object) -> tuple[int, dict | str, dict]:
        return _call(self.url + path, json.dumps(payload).encode())

    def get(self, path: str) -> tuple[int, dict | str, dict]:
        return _call(self.url + path)


def _start(model_path: Path, workdir: Path, wait_ready: bool) -> Service:
    """Start the learner's service on a free port and wait for /healthz (and /readyz)."""
    app = import_learner("tabular_service.service.app")
    src = Path(app.__file__).resolve().parents[2]
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
        "TABULAR_MODEL_PATH": str(model_path),
        "TABULAR_HOME": str(workdir),
        "TABULAR_PORT": str(port),
        "TABULAR_LOG_LEVEL": "warning",
    }
    log = workdir / f"service-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tabular_service.service"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = Service(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 40
    path = "/readyz" if wait_ready else "/healthz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the service exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if service.get(path)[0] == 200:
                return service
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the service did not answer 200 on {path} within 40 s:\n{log.read_text()[-2000:]}")


def _stop(service: Service) -> None:
    service.proc.terminate()
    try:
        service.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        service.proc.kill()
        service.proc.wait()


class Model:
    """The graded model and an independent way to compute its probabilities."""

    def __init__(self, schema, mean: np.ndarray, scale: np.ndarray, estimator) -> None:
        self.schema, self.mean, self.scale, self.estimator = schema, mean, scale, estimator
        self.threshold = 0.5
        self.log_fields = {
            "funded_amnt",
            "annual_inc",
            "total_bal_il",
            "delinq_amnt",
            "total_il_high_credit_limit",
        }

    def probability(self, application: dict) -> float:
        numeric = np.array(
            [
                np.log1p(application[f]) if f in self.log_fields else application[f]
                for f in self.schema.NUMERIC
            ],
            dtype=float,
        )
        row = [(numeric - self.mean) / self.scale]
        for name in self.schema.CATEGORICAL:
            values = self.schema.categories(name)
            row.append(np.array([v == application[name] for v in values], dtype=float))
        return float(self.estimator.predict_proba(np.concatenate(row)[None, :])[0, 1])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(service, model): the learner's service serving a fixed logistic regression."""
    from sklearn.linear_model import LogisticRegression

    schema = import_learner("tabular_service.schema")
    features = import_learner("tabular_service.features")
    models = import_learner("tabular_service.models")
    predictor_module = import_learner("tabular_service.predictor")

    encoder = features.FeatureEncoder()
    n_numeric = len(schema.NUMERIC)
    encoder.mean_ = np.linspace(0.0, 8.0, n_numeric)
    encoder.scale_ = np.linspace(1.0, 3.0, n_numeric)
    width = n_numeric + sum(len(schema.categories(c)) for c in schema.CATEGORICAL)
    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, width))
    y = (X[:, 0] + X[:, 2] - X[:, 5] + rng.normal(size=400) > 0).astype(int)
    estimator = LogisticRegression(C=1.0).fit(X, y)
    scorer = models.SklearnScorer(estimator=estimator, encoder=encoder, one_hot=True)
    model = Model(schema, encoder.mean_, encoder.scale_, estimator)
    # The threshold sits at the median graded probability, so both decisions get exercised.
    model.threshold = float(np.median([model.probability(a) for a in _applications(schema, 12)]))
    predictor = predictor_module.CreditPredictor(
        encoder=encoder,
        scorer=scorer,
        threshold=model.threshold,
        model_kind="logistic",
        metadata={"name": "credit-default", "version": "graded"},
    )
    workdir = tmp_path_factory.mktemp("service")
    predictor.save(workdir / "model")
    service = _start(workdir / "model", workdir, wait_ready=True)
    yield service, model
    _stop(service)


def _applications(schema, n: int) -> list[dict]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        application = dict(schema.EXAMPLE_APPLICATION)
        application["annual_inc"] = float(rng.integers(5_000, 300_000))
        application["int_rate"] = round(float(rng.uniform(5, 29)), 2)
        application["inq_last_6mths"] = int(rng.integers(0, 6))
        application["term"] = schema.categories("term")[i % 2]
        application["sub_grade"] = schema.categories("sub_grade")[(7 * i) % 35]
        out.append(application)
    return out


# --------------------------------------------------------------------------- 1.9 predict


@pytest.mark.checkpoint("1.9")
def test_predict_returns_the_probability_and_the_decision(served):
    """POST /v1/predict: the model's probability, and reject exactly when it is >= threshold."""
    service, model = served
    schema = import_learner("tabular_service.schema")
    decisions = set()
    for application in _applications(schema, 12):
        status, body, _ = service.post("/v1/predict", application)
        assert status == 200, body
        expected = model.probability(application)
        assert body["probability_of_default"] == pytest.approx(expected, abs=1e-9)
        assert body["decision"] == ("reject" if expected >= model.threshold else "approve")
        assert body["threshold"] == pytest.approx(model.threshold)
        decisions.add(body["decision"])
    assert decisions == {"approve", "reject"}, "the graded applications straddle the threshold"


@pytest.mark.checkpoint("1.9")
def test_batch_predictions_come_back_in_order(served):
    """POST /v1/predict/batch scores every application, in the order sent."""
    service, model = served
    schema = import_learner("tabular_service.schema")
    applications = _applications(schema, 5)
    status, body, _ = service.post("/v1/predict/batch", {"applications": applications})
    assert status == 200, body
    got = [p["probability_of_default"] for p in body["predictions"]]
    assert got == pytest.approx([model.probability(a) for a in applications], abs=1e-9)


@pytest.mark.checkpoint("1.9")
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"annual_inc": None}, "annual_inc"),  # null
        ({"term": 60}, "term"),  # wrong type
        ({"int_rate": 500.0}, "int_rate"),  # out of range
        ({"addr_state": "XX"}, "addr_state"),  # not an allowed category
        ({"favourite_colour": "blue"}, "favourite_colour"),  # unknown field
        ({"revol_util": -3}, "revol_util"),  # negative
    ],
)
def test_bad_fields_get_a_422_naming_them(served, change, field):
    """A bad application is refused with 422 and a detail entry naming the field."""
    service, _ = served
    schema = import_learner("tabular_service.schema")
    application = {**schema.EXAMPLE_APPLICATION, **change}
    status, body, _ = service.post("/v1/predict", application)
    assert status == 422, body
    assert any(field in str(error.get("field", "")) for error in body["detail"]), body


@pytest.mark.checkpoint("1.9")
def test_missing_field_nan_and_broken_json_are_422_not_500(served):
    """A missing field, a NaN (Python's json writes it) and broken JSON: 422, never 500."""
    service, _ = served
    schema = import_learner("tabular_service.schema")
    missing = {k: v for k, v in schema.EXAMPLE_APPLICATION.items() if k != "emp_length"}
    status, body, _ = service.post("/v1/predict", missing)
    assert status == 422 and any("emp_length" in str(e.get("field")) for e in body["detail"])
    nan_body = json.dumps({**schema.EXAMPLE_APPLICATION, "annual_inc": float("nan")}).encode()
    status, body, _ = _call(service.url + "/v1/predict", nan_body)
    assert status == 422 and any("annual_inc" in str(e.get("field")) for e in body["detail"])
    status, body, _ = _call(service.url + "/v1/predict", b'{"funded_amnt": 1000,')
    assert status == 422, body


# --------------------------------------------------------------------------- 1.10 readiness


@pytest.mark.checkpoint("1.10")
def test_ready_with_a_model_names_it(served):
    """/readyz answers 200 once the model serves, naming it; /healthz answers 200."""
    service, _ = served
    status, body, _ = service.get("/readyz")
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["model"]["kind"] == "logistic"
    assert service.get("/healthz")[0] == 200


@pytest.mark.checkpoint("1.10")
def test_not_ready_without_a_model(tmp_path):
    """A model that cannot load: alive (/healthz 200) but not ready (/readyz 503, with why)."""
    service = _start(tmp_path / "no-such-model", tmp_path, wait_ready=False)
    try:
        deadline = time.monotonic() + 20
        status, body, _ = service.get("/readyz")
        while body.get("status") == "loading" and time.monotonic() < deadline:
            time.sleep(0.1)
            status, body, _ = service.get("/readyz")
        assert status == 503, body
        assert body["status"] == "failed"
        assert body.get("detail"), "the 503 says why the model is not ready"
        assert service.get("/healthz")[0] == 200
        status, _, _ = service.post("/v1/predict", {})
        assert status in (422, 503)
    finally:
        _stop(service)


# --------------------------------------------------------------------------- 1.11 metrics


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.mark.checkpoint("1.11")
def test_metrics_are_prometheus_text_and_count_predictions(served):
    """/metrics: Prometheus text format; the probability histogram grows by one per prediction."""
    service, _ = served
    schema = import_learner("tabular_service.schema")
    status, text, headers = service.get("/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain")
    before = _samples(text).get(("tabular_prediction_probability_count", ()), 0.0)
    for application in _applications(schema, 4):
        assert service.post("/v1/predict", application)[0] == 200
    after = _samples(service.get("/metrics")[1])
    assert after[("tabular_prediction_probability_count", ())] == before + 4
    assert after[("tabular_model_ready", ())] == 1.0
    requests = sum(v for (name, _), v in after.items() if name == "tabular_http_requests_total")
    assert requests >= 4
