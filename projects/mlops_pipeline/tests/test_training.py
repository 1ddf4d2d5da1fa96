"""Time splits, the two model families and training with MLflow tracking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from training_fixtures import build_training_set

from mlops_pipeline.features.schema import LABEL, NUMERIC_FEATURES
from mlops_pipeline.training.metrics import classification_metrics
from mlops_pipeline.training.models import ModelSpec, default_specs, fit_model
from mlops_pipeline.training.splits import Splits, TimeSplit, check_disjoint, split_by_time
from mlops_pipeline.training.tracking import store_uri, tracking

SPLIT = TimeSplit("2013-04-01", "2013-04-11", gap="1D")


@pytest.fixture(scope="module")
def training_set() -> pd.DataFrame:
    return build_training_set("2013-03-01", "2013-04-21")


@pytest.fixture(scope="module")
def splits(training_set) -> Splits:
    return split_by_time(training_set, SPLIT)


# ------------------------------------------------------------------------------ splits


def test_split_respects_boundaries_and_gap(training_set, splits):
    times = {name: getattr(splits, name)["event_timestamp"] for name in ("train", "valid", "test")}
    assert times["train"].max() < pd.Timestamp("2013-04-01", tz="UTC")
    assert times["valid"].min() >= pd.Timestamp("2013-04-02", tz="UTC")
    assert times["valid"].max() < pd.Timestamp("2013-04-11", tz="UTC")
    assert times["test"].min() >= pd.Timestamp("2013-04-12", tz="UTC")
    # Rows inside the two one-day gaps are dropped, every other row is in exactly one split.
    in_gap = training_set["event_timestamp"].between(
        pd.Timestamp("2013-04-01", tz="UTC"), pd.Timestamp("2013-04-02", tz="UTC"), "left"
    ) | training_set["event_timestamp"].between(
        pd.Timestamp("2013-04-11", tz="UTC"), pd.Timestamp("2013-04-12", tz="UTC"), "left"
    )
    assert sum(splits.sizes().values()) == int((~in_gap).sum())
    assert all(times[name].is_monotonic_increasing for name in times)


def test_split_without_gap_keeps_every_row(training_set):
    no_gap = split_by_time(training_set, TimeSplit("2013-04-01", "2013-04-11"))
    assert sum(no_gap.sizes().values()) == len(training_set)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"train_end": "2013-04-10", "valid_end": "2013-04-01"}, "boundaries"),
        ({"train_end": "2013-04-01", "valid_end": "2013-04-03", "gap": "2D"}, "boundaries"),
        ({"train_end": "2013-04-01", "valid_end": "2013-04-05", "gap": "-1h"}, "gap"),
    ],
)
def test_bad_split_boundaries_are_refused(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        TimeSplit(**kwargs)


def test_empty_split_is_an_error_naming_it(training_set):
    with pytest.raises(ValueError, match="split 'test' is empty"):
        split_by_time(training_set, TimeSplit("2013-04-01", "2013-06-01"))


def test_check_disjoint_catches_overlap_and_shared_flights(splits):
    late_train = pd.concat([splits.train, splits.valid.head(3)], ignore_index=True)
    with pytest.raises(ValueError, match="splits overlap: train ends"):
        check_disjoint(Splits(late_train, splits.valid, splits.test))
    with pytest.raises(ValueError, match="required gap 2 days"):
        check_disjoint(splits, gap=pd.Timedelta(days=2))
    copied = splits.test.copy()
    copied.loc[0, "flight_id"] = splits.valid["flight_id"].iloc[0]
    with pytest.raises(ValueError, match="is in both 'valid' and 'test'"):
        check_disjoint(Splits(splits.train, splits.valid, copied))
    check_disjoint(splits, gap=pd.Timedelta(days=1) - pd.Timedelta(seconds=1))


# ------------------------------------------------------------------------------ models


@pytest.fixture(scope="module")
def models(splits):
    return {spec.name: fit_model(spec, splits.train) for spec in default_specs()}


@pytest.mark.parametrize("family", ["logistic", "hist_gb"])
def test_both_families_beat_the_base_rate(splits, models, family):
    model = models[family]
    y = splits.valid[LABEL].to_numpy()
    scores = classification_metrics(y, model.predict_proba(splits.valid))
    prior = classification_metrics(y, np.full(len(y), splits.train[LABEL].mean()))
    assert scores["roc_auc"] > 0.65
    assert scores["log_loss"] < prior["log_loss"] - 0.01
    assert scores["brier"] < prior["brier"]


def test_model_reads_only_its_features(splits, models):
    model = models["hist_gb"]
    rows = splits.valid.head(50)
    noisy = rows.assign(flight=rows["flight"] + 7, tailnum="N00000", extra_column=1.0)
    np.testing.assert_array_equal(model.predict_proba(rows), model.predict_proba(noisy))
    with pytest.raises(ValueError, match="missing columns \\['precip'\\]"):
        model.predict_proba(rows.drop(columns="precip"))


def test_logistic_precip_coefficient_is_pinned_at_zero_when_data_say_otherwise(splits):
    """Labels made to fall with rain: the free fit goes negative, the constrained one stops at 0."""
    train = splits.train.copy()
    rng = np.random.default_rng(0)
    train["precip"] = rng.exponential(0.05, len(train))
    train[LABEL] = (rng.random(len(train)) < 0.4 - 3 * train["precip"].clip(0, 0.1)).astype(int)
    free = fit_model(ModelSpec("logistic", increasing=()), train)
    pinned = fit_model(ModelSpec("logistic"), train)
    # Constrained columns come first; unconstrained, precip keeps its place among the numerics.
    assert free.pipeline[-1].coef_[0, NUMERIC_FEATURES.index("precip")] < -0.01
    assert pinned.pipeline[-1].coef_[0, 0] == 0.0
    assert list(pinned.pipeline[-1].pinned_) == [0]
    sweep = splits.valid.head(20).assign(precip=0.0)
    wet = sweep.assign(precip=0.5)
    assert np.all(pinned.predict_proba(wet) >= pinned.predict_proba(sweep))
    assert np.all(free.predict_proba(wet) < free.predict_proba(sweep))


def test_unknown_family_and_bad_monotone_feature_are_refused():
    with pytest.raises(ValueError, match="unknown model family 'svm'"):
        ModelSpec("svm")
    with pytest.raises(ValueError, match="not numeric features"):
        ModelSpec("hist_gb", increasing=("carrier",))


# ------------------------------------------------------------------------------ MLflow


@pytest.mark.slow
def test_train_candidates_logs_runs_and_loadable_models(training_set, tmp_path):
    import mlflow

    from mlops_pipeline.training.train import best_candidate, train_candidates

    uri = store_uri(tmp_path / "mlruns")
    candidates = train_candidates(training_set, SPLIT, uri, experiment="test-training")
    assert [c.name for c in candidates] == ["logistic", "hist_gb"]
    client = mlflow.MlflowClient(tracking_uri=uri)
    for candidate in candidates:
        run = client.get_run(candidate.run_id)
        for key in ("roc_auc", "log_loss", "brier", "pr_auc"):
            assert f"valid_{key}" in run.data.metrics and f"test_{key}" in run.data.metrics
        assert run.data.metrics["valid_roc_auc"] > 0.65
        assert run.data.params["family"] == candidate.name
        assert run.data.params["split.train_end"] == "2013-04-01 00:00:00+00:00"
        assert candidate.fit_seconds > 0
        with tracking(uri):
            loaded = mlflow.pyfunc.load_model(candidate.model_uri)
        names = loaded.metadata.get_input_schema().input_names()
        assert names == candidate.model.features
        rows = splits_test_rows(training_set)
        out = loaded.predict(candidate.model.inputs(rows))
        np.testing.assert_allclose(
            out["delay_probability"].to_numpy(), candidate.model.predict_proba(rows)
        )
    # Artifacts under <mlruns>/artifacts, not the working directory.
    assert any((tmp_path / "mlruns" / "artifacts").rglob("MLmodel"))
    best = best_candidate(candidates)
    assert best.metrics["valid_roc_auc"] == max(c.metrics["valid_roc_auc"] for c in candidates)


def splits_test_rows(training_set: pd.DataFrame) -> pd.DataFrame:
    return split_by_time(training_set, SPLIT).test.head(200)
