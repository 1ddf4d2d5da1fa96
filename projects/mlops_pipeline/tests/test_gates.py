"""Each gate passes on a good candidate and fails on a constructed bad one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from training_fixtures import build_training_set

from mlops_pipeline.features.schema import LABEL, NUMERIC_FEATURES
from mlops_pipeline.training import gates
from mlops_pipeline.training.gates import GateConfig
from mlops_pipeline.training.metrics import metric_value, resampled_metric
from mlops_pipeline.training.models import ModelSpec, default_specs, fit_model
from mlops_pipeline.training.splits import TimeSplit, split_by_time

FAST = GateConfig(n_boot=400, behaviour_rows=150)


@pytest.fixture(scope="module")
def splits():
    frame = build_training_set("2013-03-01", "2013-04-21")
    return split_by_time(frame, TimeSplit("2013-04-01", "2013-04-11", gap="1D"))


@pytest.fixture(scope="module")
def models(splits):
    return {spec.name: fit_model(spec, splits.train) for spec in default_specs()}


@pytest.fixture(scope="module")
def holdout(splits):
    return splits.test, splits.test[LABEL].to_numpy()


# ------------------------------------------------------------------------ metrics


def test_resampled_metrics_match_scikit_learn_on_explicit_resamples():
    from sklearn.metrics import log_loss, roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300), 2)  # rounded: many ties
    rows = rng.integers(0, 300, size=(5, 300))
    counts = np.stack([np.bincount(r, minlength=300) for r in rows])
    auc = resampled_metric("roc_auc", y, p, counts)
    loss = resampled_metric("log_loss", y, p, counts)
    for b, r in enumerate(rows):
        assert auc[b] == pytest.approx(roc_auc_score(y[r], p[r]), abs=1e-12)
        assert loss[b] == pytest.approx(log_loss(y[r], p[r]), abs=1e-12)
    assert np.isnan(resampled_metric("roc_auc", np.ones(4), p[:4], np.ones((1, 4))))[0]
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        metric_value("accuracy", y, p)


# ------------------------------------------------------------------------ a) improvement


def test_improvement_passes_against_the_base_rate_and_says_so(models, holdout):
    frame, y = holdout
    result = gates.improvement_gate(
        y, models["hist_gb"].predict_proba(frame), None, base_rate=y.mean(), config=FAST
    )
    assert result.passed
    assert result.details["reference"] == "base-rate prior"
    assert "no champion yet" in result.message
    assert 0.1 < result.measured["ci_low"] <= result.measured["diff"] <= result.measured["ci_high"]


def test_improvement_fails_for_a_worse_candidate_and_for_a_tie(models, holdout):
    frame, y = holdout
    champion = models["hist_gb"].predict_proba(frame)
    noisy = expit(
        np.log(champion / (1 - champion)) + np.random.default_rng(1).normal(0, 1.5, len(y))
    )
    worse = gates.improvement_gate(y, noisy, champion, base_rate=y.mean(), config=FAST)
    assert not worse.passed and worse.measured["ci_high"] < 0
    assert worse.details["reference"] == "champion"
    tie = gates.improvement_gate(y, champion, champion, base_rate=y.mean(), config=FAST)
    assert not tie.passed and tie.measured["ci_low"] == tie.measured["ci_high"] == 0.0


def test_improvement_on_log_loss_uses_the_right_direction(models, holdout):
    frame, y = holdout
    config = GateConfig(metric="log_loss", n_boot=300)
    better = gates.improvement_gate(
        y, models["hist_gb"].predict_proba(frame), None, base_rate=y.mean(), config=config
    )
    assert better.passed and better.measured["ci_high"] < 0


# ------------------------------------------------------------------------ b) slices


def test_slice_gate_flags_the_slice_made_worse_and_lists_small_ones(models, holdout):
    frame, y = holdout
    champion = models["hist_gb"].predict_proba(frame)
    ok = gates.slice_gate(frame, y, champion, champion, config=FAST)
    assert ok.passed and ok.measured["worst_drop"] == 0.0
    assert ok.measured["slices_checked"] >= 10  # 3 airports, the big carriers, the month
    skipped = {entry["slice"] for entry in ok.details["skipped"]}
    assert "carrier=HA" in skipped  # ~1 flight a day: too few rows to judge
    worse = champion.copy()
    ua = (frame["carrier"] == "UA").to_numpy()
    worse[ua] = np.random.default_rng(0).random(ua.sum())
    bad = gates.slice_gate(frame, y, worse, champion, config=FAST)
    assert not bad.passed
    failing = {entry["slice"] for entry in bad.details["failing"]}
    # UA's own slice fails; airports and the month may too (UA's rows are part of them), no
    # other carrier does.
    assert "carrier=UA" in failing
    assert {s for s in failing if s.startswith("carrier=")} == {"carrier=UA"}
    assert bad.measured["worst_drop"] > 0.1
    assert "carrier=UA" in bad.message


# ------------------------------------------------------------------------ c) behaviour


def test_invariance_passes_for_real_models_and_fails_when_flight_number_is_a_feature(
    splits, models, holdout
):
    frame, _ = holdout
    for model in models.values():
        assert gates.invariance_gate(model, frame, config=FAST).passed
    spec = ModelSpec("hist_gb", {"max_iter": 50}, numeric=(*NUMERIC_FEATURES, "flight"))
    cheat = fit_model(spec, splits.train)
    result = gates.invariance_gate(cheat, frame, config=FAST)
    assert not result.passed
    assert result.measured["max_abs_diff_flight"] > 1e-3
    assert result.measured["max_abs_diff_tailnum_digits"] == 0.0
    assert "flight" in result.message


def test_invariance_catches_a_model_reading_tail_number_digits(holdout):
    frame, _ = holdout

    class TailReader:
        def predict_proba(self, rows):
            digits = rows["tailnum"].str.extract(r"(\d)", expand=False).fillna("0")
            return digits.astype(float).to_numpy() / 20

    result = gates.invariance_gate(TailReader(), frame, config=FAST)
    assert not result.passed and result.measured["max_abs_diff_tailnum_digits"] > 0


def test_direction_passes_for_constrained_models_and_fails_for_a_rain_lover(models, holdout):
    frame, _ = holdout
    for model in models.values():
        result = gates.direction_gate(model, frame, config=FAST)
        assert result.passed, result.message

    class DriesUp:
        def predict_proba(self, rows):
            return expit(rows["temp"].to_numpy() / 50 - 4 * rows["precip"].to_numpy())

    result = gates.direction_gate(DriesUp(), frame, config=FAST)
    assert not result.passed
    assert result.measured["violating_rows"] == FAST.behaviour_rows
    assert result.measured["worst_drop"] > 0


def test_gate_results_serialise_to_json(models, holdout):
    frame, y = holdout
    result = gates.slice_gate(frame, y, models["logistic"].predict_proba(frame), None, config=FAST)
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(text)["name"] == "slices"
    assert gates.jsonable({"a": float("nan"), "b": np.int64(2), "t": pd.Timestamp(0)}) == {
        "a": None,
        "b": 2,
        "t": "1970-01-01 00:00:00",
    }
