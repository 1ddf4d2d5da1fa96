"""The champion rule and the release gate, on scores whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from tabular_service.evaluation import COSTS, Costs, cost_optimal_threshold, expected_cost
from tabular_service.selection import (
    CandidateScore,
    approve_everyone_cost,
    crossfit_cost,
    select_champion,
    stratified_halves,
)


def _labels(n: int = 2000, rate: float = 0.05, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype(int)


def test_approve_everyone_costs_every_default() -> None:
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    assert approve_everyone_cost(y) == pytest.approx(COSTS.missed_default * 0.2)
    # The same as any threshold above every score: nothing is rejected.
    p = np.linspace(0, 0.9, 10)
    assert approve_everyone_cost(y) == expected_cost(y, p, threshold=1.0)
    assert approve_everyone_cost(y, Costs(missed_default=2.0)) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        approve_everyone_cost(np.array([]))


def test_stratified_halves_split_each_class_in_two() -> None:
    y = _labels(1001, rate=0.1)
    first, second = stratified_halves(y, np.random.default_rng(1))
    assert len(np.intersect1d(first, second)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([first, second])), np.arange(len(y)))
    for label in (0, 1):
        assert abs(np.sum(y[first] == label) - np.sum(y[second] == label)) <= 1


def test_crossfit_cost_is_the_mean_of_out_of_half_costs() -> None:
    """One repeat, recomputed by hand from the same halves: threshold on one, cost on the other."""
    rng = np.random.default_rng(3)
    y = _labels(600, rate=0.1, seed=3)
    p = np.clip(0.1 + 0.3 * y + rng.normal(0, 0.15, len(y)), 0, 1)
    first, second = stratified_halves(y, np.random.default_rng(42))
    by_hand = 0.0
    for fit, score in ((first, second), (second, first)):
        threshold = cost_optimal_threshold(y[fit], p[fit])
        by_hand += expected_cost(y[score], p[score], threshold) * len(score)
    assert crossfit_cost(y, p, repeats=1, seed=42) == pytest.approx(by_hand / len(y), abs=1e-15)


def test_crossfit_cost_of_a_perfect_ranking_is_zero_and_of_no_signal_the_baseline() -> None:
    y = _labels()
    assert crossfit_cost(y, y * 0.9 + 0.05) == 0.0  # every default above every good loan
    # A constant score can only approve everyone (rejecting all costs far more at 5:1).
    assert crossfit_cost(y, np.full(len(y), 0.05)) == pytest.approx(approve_everyone_cost(y))


def test_crossfit_cost_removes_the_in_sample_optimism_of_the_threshold() -> None:
    """On scores that are pure noise, a threshold tuned on the same rows often "beats" approving
    everyone; cross-fitted, the same noise rarely does. That is why the gate uses it."""
    in_sample_passes = crossfit_passes = 0
    for seed in range(60):
        y = _labels(seed=seed)
        p = np.random.default_rng(1000 + seed).random(len(y))
        baseline = approve_everyone_cost(y)
        in_sample = expected_cost(y, p, cost_optimal_threshold(y, p))
        in_sample_passes += in_sample < baseline
        crossfit_passes += crossfit_cost(y, p) < baseline
    assert in_sample_passes >= 15
    assert crossfit_passes <= in_sample_passes / 2


def test_crossfit_cost_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        crossfit_cost(np.zeros(10), np.zeros(9))
    with pytest.raises(ValueError, match="at least 4 rows"):
        crossfit_cost(np.array([0, 1]), np.array([0.1, 0.9]))
    with pytest.raises(ValueError, match="repeats"):
        crossfit_cost(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]), repeats=0)


def test_the_champion_is_the_cheapest_not_the_best_ranked_on_paper() -> None:
    scores = [
        CandidateScore("hist_gb", cost=0.255, log_loss=0.187),
        CandidateScore("logistic", cost=0.249, log_loss=0.185),
        CandidateScore("mlp", cost=0.262, log_loss=0.184),  # best log-loss, but costs more
    ]
    selection = select_champion(scores, baseline_cost=0.2613)
    assert [s.name for s in selection.ranking] == ["logistic", "hist_gb", "mlp"]
    assert selection.passed and selection.champion == "logistic"
    assert "passes the release gate" in selection.explain()


def test_ties_on_cost_go_to_the_lower_log_loss() -> None:
    scores = [CandidateScore("a", 0.25, 0.19), CandidateScore("b", 0.25, 0.18)]
    assert select_champion(scores, 0.26).champion == "b"


def test_a_comparison_only_model_wins_only_when_alone() -> None:
    scratch = CandidateScore("scratch_gb", cost=0.20, log_loss=0.18, servable=False)
    logistic = CandidateScore("logistic", cost=0.25, log_loss=0.19)
    assert select_champion([scratch, logistic], 0.26).champion == "logistic"
    assert select_champion([scratch], 0.26).champion == "scratch_gb"


@pytest.mark.parametrize("best_cost", [0.2613, 0.27])
def test_the_gate_refuses_a_champion_no_cheaper_than_approving_everyone(best_cost) -> None:
    scores = [CandidateScore("logistic", best_cost, 0.19), CandidateScore("mlp", 0.29, 0.2)]
    selection = select_champion(scores, baseline_cost=0.2613)
    assert selection.best.name == "logistic"  # ranked first, but not promoted
    assert not selection.passed and selection.champion is None
    assert "fails the release gate" in selection.explain()
    assert "0.2613" in selection.explain()


def test_no_candidates_is_an_error() -> None:
    with pytest.raises(ValueError, match="no candidates"):
        select_champion([], 0.26)
