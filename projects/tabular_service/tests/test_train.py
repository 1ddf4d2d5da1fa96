"""The training command line: exit codes, messages, options; and MLflow's own scoring server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import free_port, wait_for_http

from tabular_service import tracking
from tabular_service.data import Split
from tabular_service.predictor import CreditPredictor
from tabular_service.schema import EXAMPLE_APPLICATION, TARGET
from tabular_service.train import EXIT_DATA, EXIT_GATE, main

SRC = Path(__file__).resolve().parents[1] / "src"


def _write_table(path: Path, data: Split, duplicate: bool = False, shuffle: bool = False) -> Path:
    X = pd.concat([data.X_train, data.X_valid, data.X_test])
    y = np.concatenate([data.y_train, data.y_valid, data.y_test])
    if shuffle:  # labels no longer depend on the features: no model can have signal
        y = np.random.default_rng(0).permutation(y)
    table = X.assign(**{TARGET: np.where(y == 1, "bad", "good")})
    if duplicate:  # every loan twice: copies land on both sides of the split
        table = pd.concat([table, table])
    table.to_csv(path, index=False)
    return path


def test_leaky_data_aborts_with_exit_code_2(loans: Split, tmp_path: Path, capsys) -> None:
    csv = _write_table(tmp_path / "leaky.csv", loans, duplicate=True)
    code = main(["--quick", "--home", str(tmp_path), "--data", str(csv), "--models", "logistic"])
    assert code == EXIT_DATA == 2
    err = capsys.readouterr().err
    assert "leakage check FAILED" in err and "duplicate training rows" in err
    assert not (tmp_path / "mlruns").exists()  # nothing was tracked


def test_bad_data_and_bad_options_exit_cleanly(loans: Split, tmp_path: Path, capsys) -> None:
    csv = tmp_path / "bad.csv"
    _write_table(csv, loans)
    pd.read_csv(csv).drop(columns=["int_rate"]).to_csv(csv, index=False)
    assert main(["--home", str(tmp_path), "--data", str(csv)]) == EXIT_DATA
    assert "data error: missing columns: int_rate" in capsys.readouterr().err
    assert main(["--home", str(tmp_path), "--models", "svm"]) == EXIT_DATA
    assert "unknown model(s): svm" in capsys.readouterr().err
    assert main(["--home", str(tmp_path), "--data", str(tmp_path / "absent.csv")]) == EXIT_DATA
    assert "data error:" in capsys.readouterr().err


@pytest.mark.slow
def test_the_gate_refuses_a_model_without_signal(loans: Split, tmp_path: Path, capsys) -> None:
    """Shuffled labels: every run is tracked, nothing is registered, exit code 3 says why."""
    import mlflow

    csv = _write_table(tmp_path / "shuffled.csv", loans, shuffle=True)
    home = tmp_path / "home"
    code = main(["--quick", "--home", str(home), "--data", str(csv), "--models", "logistic"])
    out, err = capsys.readouterr()
    assert code == EXIT_GATE == 3, out + err
    assert "fails the release gate" in out
    assert "no model beat approving everyone" in err and "nothing was registered" in err
    summary = json.loads((home / "mlruns" / "last_training.json").read_text())
    assert summary["champion"] is None and not summary["selection"]["gate_passed"]
    best = summary["models"][0]
    assert best["selection_cost"] >= summary["selection"]["approve_all_cost"]["valid"]
    assert not (home / "docs" / "model_card.md").exists()
    tracking.configure(home)
    client = mlflow.MlflowClient()
    assert client.search_registered_models() == []  # no model, no version, no alias
    runs = mlflow.search_runs(experiment_names=[tracking.EXPERIMENT_NAME])
    assert list(runs["tags.mlflow.runName"]) == ["logistic"]
    assert "tags.champion" not in runs.columns or runs["tags.champion"].isna().all()


def test_module_entry_point_has_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tabular_service.train", "--help"],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--models", "--quick", "--home", "--no-register", "--seed", "--model-card"):
        assert option in result.stdout


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations(
    registry_home: Path, small_predictor: CreditPredictor, tmp_path: Path
) -> None:
    """`mlflow models serve` on the champion: the peer the load test compares against."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking.tracking_uri(registry_home),
        # mlflow.set_registry_uri (called by tracking.configure in earlier tests) exports this.
        "MLFLOW_REGISTRY_URI": tracking.tracking_uri(registry_home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        # MLflow execs `uvicorn` by name: the venv's bin must be on PATH even when not activated.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", tracking.champion_uri()]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=90, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            log.flush()
            tail = (tmp_path / "serve.log").read_text()[-3000:]
            raise AssertionError(f"{exc}\n--- mlflow models serve output ---\n{tail}") from None
        body = json.dumps({"dataframe_records": [EXAMPLE_APPLICATION]}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # our own session: uvicorn and its worker
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    assert len(predictions) == 1
    expected = small_predictor.predict_proba_records([EXAMPLE_APPLICATION])[0]
    assert predictions[0]["probability_of_default"] == pytest.approx(expected, abs=1e-12)
    rejected = expected >= small_predictor.threshold
    assert predictions[0]["decision"] == ("reject" if rejected else "approve")
