"""Metrics and the cost-optimal threshold, checked against brute force and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from tabular_service.evaluation import (
    COSTS,
    Costs,
    calibration_curve,
    cost_optimal_threshold,
    evaluate,
    expected_cost,
)


def brute_force_threshold(y: np.ndarray, p: np.ndarray, costs: Costs) -> tuple[float, float]:
    """Lowest cost over every candidate (each distinct score, and 'approve everyone')."""
    candidates = [*np.unique(p), np.nextafter(p.max(), np.inf)]
    costs_of = [expected_cost(y, p, t, costs) for t in candidates]
    best = min(costs_of)
    # Ties go to the highest threshold (approve more when it costs nothing).
    return max(t for t, c in zip(candidates, costs_of, strict=True) if c == best), best


@pytest.mark.parametrize("seed", range(12))
def test_threshold_equals_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    # Rounded scores create many ties; the label rate varies from rare to common.
    p = np.round(rng.uniform(0, 1, n), int(rng.integers(1, 4)))
    y = (rng.uniform(0, 1, n) < np.clip(p * rng.uniform(0.2, 1.5), 0, 1)).astype(int)
    costs = Costs(missed_default=float(rng.uniform(0.5, 10)), rejected_good=1.0)
    threshold = cost_optimal_threshold(y, p, costs)
    expected, best_cost = brute_force_threshold(y, p, costs)
    assert expected_cost(y, p, threshold, costs) == pytest.approx(best_cost, abs=1e-12)
    assert threshold == expected


def test_threshold_edge_cases() -> None:
    # No defaults at all: approving everyone is free, the threshold sits above every score.
    p = np.array([0.1, 0.5, 0.9])
    t = cost_optimal_threshold(np.zeros(3), p)
    assert t > p.max() and expected_cost(np.zeros(3), p, t) == 0.0
    # Perfect separation: reject exactly the defaults.
    y = np.array([0, 0, 1, 1])
    assert cost_optimal_threshold(y, np.array([0.1, 0.2, 0.8, 0.9])) == 0.8
    with pytest.raises(ValueError):
        cost_optimal_threshold(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        cost_optimal_threshold(np.array([]), np.array([]))


def test_bayes_threshold_of_stated_costs() -> None:
    assert COSTS.bayes_threshold() == pytest.approx(1 / 6)
    assert Costs(missed_default=3, rejected_good=1).bayes_threshold() == 0.25


def test_evaluate_matches_scikit_learn() -> None:
    rng = np.random.default_rng(42)
    p = rng.beta(1, 12, 2000)
    y = (rng.uniform(size=2000) < p).astype(int)
    report = evaluate(y, p, threshold=0.1)
    assert report.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert report.pr_auc == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert report.log_loss == pytest.approx(log_loss(y, p), abs=1e-12)
    assert report.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    approved = p < 0.1
    assert report.approve_rate == pytest.approx(approved.mean())
    assert report.default_rate_approved == pytest.approx(y[approved].mean())
    manual = (np.sum(approved & (y == 1)) * 5 + np.sum(~approved & (y == 0))) / len(y)
    assert report.expected_cost == pytest.approx(manual)
    assert set(report.as_dict()) >= {"roc_auc", "threshold", "expected_cost"}


def test_calibration_curve_on_calibrated_scores() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(1, 10, 50_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    curve = calibration_curve(y, p, bins=10)
    assert sum(curve["count"]) == p.size
    assert len(curve["predicted"]) == 10
    assert max(curve["count"]) - min(curve["count"]) <= 1  # quantile bins: equal counts
    np.testing.assert_allclose(curve["observed"], curve["predicted"], atol=0.015)
    assert curve["predicted"] == sorted(curve["predicted"])


def test_calibration_curve_with_tied_scores() -> None:
    p = np.array([0.1] * 50 + [0.3] * 50)
    y = np.array([0] * 45 + [1] * 5 + [1] * 15 + [0] * 35)
    curve = calibration_curve(y, p, bins=10)  # duplicate quantile edges collapse
    assert curve["count"] == [50, 50]
    assert curve["observed"] == pytest.approx([0.1, 0.3])
