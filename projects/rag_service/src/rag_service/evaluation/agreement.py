"""How far a judge agrees with human labels: rank correlation and agreement on a 1-5 scale.

Spearman's rho and Kendall's tau-b (scipy; tau-b handles the many ties a 5-point scale has)
compare rankings, so they are fair to any score, a 0-1 metric as much as a weighted 1-5 one.
Exact and within-one agreement need scores on the label scale: G-Eval's weighted score is
rounded, a 0-1 metric is mapped linearly (`answers.to_scale`). With few items and skewed labels
the correlations are noisy: the p-values are reported with them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rag_service.datasets.answer_labels import AnswerLabel
from rag_service.evaluation.answers import answer_relevance, groundedness, to_scale

CRITERIA = {"groundedness": "grounded", "relevance": "relevant"}
"""Judge criterion -> label field."""


@dataclass(frozen=True)
class Agreement:
    """One score against one label column, over the items the judge scored."""

    n: int
    unscored: int
    spearman: float | None
    spearman_p: float | None
    kendall: float | None
    kendall_p: float | None
    exact: float
    within_one: float


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def agreement(
    labels: Sequence[int], scores: Sequence[float | None], to_label: Callable
) -> Agreement:
    """Agreement of `scores` with `labels`; a None score is left out and counted as unscored.
    `to_label` maps a score to the 1-5 scale for exact and within-one agreement."""
    from scipy import stats

    if len(labels) != len(scores):
        raise ValueError(f"labels ({len(labels)}) and scores ({len(scores)}) differ in length")
    pairs = [
        (label, score) for label, score in zip(labels, scores, strict=True) if score is not None
    ]
    if not pairs:
        raise ValueError("scores has no scored item")
    y = [label for label, _ in pairs]
    x = [score for _, score in pairs]
    with warnings.catch_warnings():  # constant input: the correlation is undefined (None)
        warnings.simplefilter("ignore")
        rho = stats.spearmanr(y, x)
        tau = stats.kendalltau(y, x)
    on_scale = [to_label(score) for score in x]
    return Agreement(
        n=len(pairs),
        unscored=len(scores) - len(pairs),
        spearman=_finite(rho.statistic),
        spearman_p=_finite(rho.pvalue),
        kendall=_finite(tau.statistic),
        kendall_p=_finite(tau.pvalue),
        exact=sum(a == b for a, b in zip(on_scale, y, strict=True)) / len(y),
        within_one=sum(abs(a - b) <= 1 for a, b in zip(on_scale, y, strict=True)) / len(y),
    )


def _round_score(score: float) -> int:
    return min(5, max(1, math.floor(score + 0.5)))


def evaluate_judge(
    labels: Sequence[AnswerLabel],
    judge: Callable[[AnswerLabel], dict[str, float | None]],
    *,
    on_unit_scale: bool = False,
) -> dict[str, Any]:
    """Run `judge` on every labelled answer and measure its agreement with the labels.

    `judge(label)` returns {"groundedness": score, "relevance": score} (either may be missing);
    scores are on 1-5 (G-Eval) or, with `on_unit_scale=True`, in [0, 1] (the cheap metrics).
    Returns the agreement per criterion (all items and SmolLM2's answers alone) and every score.
    """
    if not labels:
        raise ValueError("labels must not be empty")
    scores = [judge(label) for label in labels]
    to_label = to_scale if on_unit_scale else _round_score
    report: dict[str, Any] = {"items": len(labels), "criteria": {}, "scores": []}
    for criterion, field in CRITERIA.items():
        if not any(criterion in row for row in scores):
            continue
        column = [row.get(criterion) for row in scores]
        truth = [getattr(label, field) for label in labels]
        model_only = [i for i, label in enumerate(labels) if label.source != "written"]
        report["criteria"][criterion] = {
            "all": asdict(agreement(truth, column, to_label)),
            "smollm2_answers": asdict(
                agreement([truth[i] for i in model_only], [column[i] for i in model_only], to_label)
            ),
        }
    for label, row in zip(labels, scores, strict=True):
        report["scores"].append({"id": label.id, **row})
    return report


def cheap_judge(encoder: Any = None) -> Callable[[AnswerLabel], dict[str, float | None]]:
    """The deterministic metrics as a judge: groundedness against all the prompt's passages
    (SmolLM2 hardly ever cites, so against cited ones it would score 0 everywhere) and relevance
    by content-word overlap, or MiniLM cosine with `encoder`."""

    def judge(label: AnswerLabel) -> dict[str, float | None]:
        return {
            "groundedness": groundedness(label.answer, label.passages).score,
            "relevance": answer_relevance(label.question, label.answer, encoder).score,
        }

    return judge


def geval_judge(judge: Any) -> Callable[[AnswerLabel], dict[str, float | None]]:
    """A `GEvalJudge` as a judge of labelled answers (its weighted scores)."""

    def run(label: AnswerLabel) -> dict[str, float | None]:
        results = judge.score(label.question, label.answer, label.passages)
        return {criterion: result.score for criterion, result in results.items()}

    return run
