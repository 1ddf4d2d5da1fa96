"""Checkpoints 1.9-1.11: the credit-default service, started on loopback and called over HTTP.

The grader saves a small model (a scikit-learn logistic regression behind your `FeatureEncoder`)
to a temporary folder, starts your service with `python -m tabular_service.service` and
`TABULAR_MODEL_PATH` pointing at it, and calls the endpoints like any client would. Expected
probabilities are computed here from the encoder's formula, not by your code. The encoder's
`scale_numeric` (checkpoint 1.7) is on the prediction path, so 1.9 needs 1.7 first, and the
metrics test makes predictions, so 1.11 needs 1.9.

A scaffold's service answers 500 where a region is not written yet; the service's log then
holds the `NotImplementedError` naming the checkpoint, and the test reports exactly that at
once ("not implemented yet: 1.10: ..."), rather than waiting for an answer that cannot come.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from learn.testing import import_learner, target_root

#: Seconds the service may take to start and load the model before the test gives up.
START_LIMIT = 40
#: The scaffold's placeholder as it appears in a traceback in the service's log.
NOT_IMPLEMENTED = re.compile(r"NotImplementedError: (\d+\.\d+: [^\n\"\\]*)")
#: The last line of a logged traceback ("SomeError: message"), plain or inside a JSON log line.
TRACEBACK_END = re.compile(r"(?m)(?:^|\\n)\w+(?:\.\w+)*(?:Error|Exception)\b")


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
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text), headers
    except json.JSONDecodeError:
        return status, text, headers


class Service:
    """A running service: its base URL, its process, and its log (read for the learner)."""

    def __init__(self, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log
        self._seen = 0  # how much of the log earlier calls have looked at

    def post(self, path: str, payload: object) -> tuple[int, dict | str, dict]:
        return self.send(path, json.dumps(payload).encode())

    def get(self, path: str) -> tuple[int, dict | str, dict]:
        return self.send(path, None)

    def send(self, path: str, body: bytes | None) -> tuple[int, dict | str, dict]:
        """Call the service; a 500 becomes the learner's error, read from the service's log."""
        status, answer, headers = _call(self.url + path, body)
        if status >= 500 and status != 503:
            self.raise_learner_error(f"{'POST' if body is not None else 'GET'} {path}")
        self._seen = self.log.stat().st_size
        return status, answer, headers

    def skip_log(self) -> None:
        """From now on, read only what the service logs after this point."""
        time.sleep(0.2)  # a traceback of the last start-up call may still be being written
        self._seen = self.log.stat().st_size

    def new_log(self) -> str:
        text = self.log.read_text(errors="replace")
        return text[self._seen :]

    def raise_learner_error(self, what: str) -> None:
        """Report why the service failed: a region not written yet, or the traceback's end."""
        deadline = time.monotonic() + 3  # the server logs the traceback after it answers
        log = self.new_log()
        while not (NOT_IMPLEMENTED.search(log) or TRACEBACK_END.search(log)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
            log = self.new_log()
        self._seen = self.log.stat().st_size
        gaps = NOT_IMPLEMENTED.findall(log)
        if gaps:
            raise NotImplementedError(gaps[-1])
        pytest.fail(f"{what} answered 500: your service raised {_crash(log)}")


def _crash(log: str) -> str:
    """The last exception in a service log, and the learner's line it came from."""
    tracebacks = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("exc"):
            tracebacks.append(str(record["exc"]))
    text = tracebacks[-1] if tracebacks else log  # JSON logs carry it in "exc"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = next((x for x in reversed(lines) if TRACEBACK_END.match(x)), None)
    root = target_root()
    frames = [
        f"{Path(name).resolve().relative_to(root)}:{number}"
        for name, number in re.findall(r'File "([^"]+)", line (\d+)', text)
        if Path(name).resolve().is_relative_to(root)
    ]
    where = f" (at {frames[-1]})" if frames else ""
    return f"{last}{where}" if last else "an error; its log ends with:\n" + "\n".join(lines[-8:])


def _start(model_path: Path, workdir: Path, wait_for_model: bool) -> Service:
    """Start the learner's service on a free port; return once it answers (and has a model).

    Whether the model is loaded is asked of the predict route, which answers 503 until then
    (that part is not a learner region), so these tests do not depend on /readyz (1.10).
    """
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
    try:
        _wait(service, wait_for_model)
    except BaseException:
        _stop(service)
        raise
    service.skip_log()  # what start-up logged is not the learner's answer to a test
    return service


def _wait(service: Service, wait_for_model: bool) -> None:
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            gap = NOT_IMPLEMENTED.search(service.log.read_text(errors="replace"))
            if gap:
                raise NotImplementedError(gap.group(1))
            tail = service.log.read_text(errors="replace")[-2000:]
            pytest.fail(f"the service exited with code {service.proc.returncode}:\n{tail}")
        try:
            if not wait_for_model:
                if _call(service.url + "/healthz")[0] == 200:
                    return
            else:
                # Any answer but 503 means a model serves, even a 500 from an unwritten region:
                # that is for the test to report, not for start-up.
                status, body, _ = _call(service.url + "/v1/predict/batch", b"{}")
                if status != 503:
                    return
                if isinstance(body, dict) and body.get("status") == "failed":
                    detail = body.get("detail")
                    pytest.fail(f"the service could not load the graded model: {detail}")
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    pytest.fail(
        f"the service did not {'load its model' if wait_for_model else 'answer /healthz'} "
        f"within {START_LIMIT} s; its log ends with:\n{service.log.read_text()[-2000:]}"
    )


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
    scorers = import_learner("tabular_service.scorers")
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
    scorer = scorers.SklearnScorer(estimator=estimator, encoder=encoder, one_hot=True)
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
    service = _start(workdir / "model", workdir, wait_for_model=True)
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
    service = _start(tmp_path / "no-such-model", tmp_path, wait_for_model=False)
    try:
        deadline = time.monotonic() + 20
        status, body, _ = service.get("/readyz")
        while isinstance(body, dict) and body.get("status") == "loading":
            assert time.monotonic() < deadline, "/readyz still says loading after 20 s"
            time.sleep(0.1)
            status, body, _ = service.get("/readyz")
        assert status == 503, body
        assert isinstance(body, dict), f"/readyz should answer JSON, got {body!r}"
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
