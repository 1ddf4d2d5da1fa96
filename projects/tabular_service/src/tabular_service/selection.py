"""The champion rule and the release gate: which trained model, if any, is promoted.

The project optimises one number: the expected cost per loan of its approve/reject decisions at
the stated costs (`evaluation.COSTS`). So the champion is the candidate whose decision rule (its
scores plus a cost-optimal threshold) costs least on validation, and it is promoted only if that
cost beats the policy that needs no model: approving everyone.

Measured in-sample, that cost would flatter every model. A threshold chosen on the rows it is
scored on partly fits their noise (the cost curve is flat and jagged near its minimum), and
"approve everyone" is itself one of the thresholds searched, so an in-sample cost can never be
worse than the baseline: a gate on it would refuse nothing. The cost is therefore cross-fitted:
the validation rows are cut into two stratified halves, the threshold chosen on each half is
scored on the other, and the result is averaged over a few random cuts. The threshold a
promoted model serves with is still the one chosen on all validation rows.

Pure numpy and no I/O: training and the credit-default lab notebook both call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tabular_service.evaluation import COSTS, Costs, cost_optimal_threshold, expected_cost

#: Name of the selection metric in MLflow and in the training summary.
SELECTION_METRIC = "valid_crossfit_cost"
#: Random cuts of the validation rows averaged by `crossfit_cost` (each cut scores every row once).
CROSSFIT_REPEATS = 20
#: Seed of those cuts; fixed, so the same scores always get the same cost.
CROSSFIT_SEED = 20261126


def approve_everyone_cost(y: np.ndarray, costs: Costs = COSTS) -> float:
    """Expected cost per loan of approving every application: each default is a missed one."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError("y must be a non-empty 1-D array of 0/1 labels")
    return float(costs.missed_default * np.mean(y == 1))


def stratified_halves(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint, sorted index arrays covering `y`, each with half of each class (+-1)."""
    y = np.asarray(y)
    first = [rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)]
    half = np.sort(np.concatenate([idx[: len(idx) // 2] for idx in first]))
    return half, np.setdiff1d(np.arange(len(y)), half)


def crossfit_cost(
    y: np.ndarray,
    p: np.ndarray,
    costs: Costs = COSTS,
    repeats: int = CROSSFIT_REPEATS,
    seed: int = CROSSFIT_SEED,
) -> float:
    """Expected cost per loan of "pick the cost-optimal threshold, then decide", out of sample.

    Each repeat cuts the rows into stratified halves A and B, picks the threshold on A and scores
    B with it, then the other way round; the mean over all scored rows is returned. Thresholds
    chosen on half the rows are a little worse than one chosen on all of them, so the estimate
    errs on the pessimistic side, which is the right side for a release gate.
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y and p must be 1-D arrays of the same length, got {y.shape}, {p.shape}")
    if len(y) < 4:
        raise ValueError(f"need at least 4 rows to cross-fit a threshold, got {len(y)}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(repeats):
        first, second = stratified_halves(y, rng)
        for fit, score in ((first, second), (second, first)):
            threshold = cost_optimal_threshold(y[fit], p[fit], costs)
            total += expected_cost(y[score], p[score], threshold, costs) * len(score)
    return total / (repeats * len(y))


@dataclass(frozen=True)
class CandidateScore:
    """What the rule needs to know about one trained candidate."""

    name: str
    cost: float  # cross-fitted expected cost per loan on validation (`crossfit_cost`)
    log_loss: float  # validation log-loss: breaks ties on cost
    servable: bool = True  # False: compared, promoted only when nothing servable was trained


@dataclass(frozen=True)
class Selection:
    """The rule's verdict: the eligible candidates best first, and the gate's baseline."""

    ranking: tuple[CandidateScore, ...]
    baseline_cost: float  # approving everyone, on the same validation rows

    @property
    def best(self) -> CandidateScore:
        return self.ranking[0]

    @property
    def passed(self) -> bool:
        """The release gate: the best candidate costs strictly less than approving everyone."""
        return self.best.cost < self.baseline_cost

    @property
    def champion(self) -> str | None:
        """The candidate to promote, or None when the gate refuses."""
        return self.best.name if self.passed else None

    def explain(self) -> str:
        """One line: who ranked first, at what cost, against what baseline, and the verdict."""
        verdict = "passes the release gate" if self.passed else "fails the release gate"
        return (
            f"{self.best.name} costs {self.best.cost:.4f} per loan on validation (cross-fitted "
            f"threshold) vs {self.baseline_cost:.4f} for approving everyone: {verdict}"
        )


def select_champion(scores: Sequence[CandidateScore], baseline_cost: float) -> Selection:
    """Rank the candidates by cross-fitted validation cost (then log-loss, then name).

    Candidates that are not servable are ranked only when no servable one was trained. Whether
    the first one is promoted is `Selection.passed`.
    """
    if not scores:
        raise ValueError("no candidates to choose from")
    eligible = [s for s in scores if s.servable] or list(scores)
    ranking = sorted(eligible, key=lambda s: (s.cost, s.log_loss, s.name))
    return Selection(tuple(ranking), float(baseline_cost))
