"""Hybrid retrieval: merge a lexical and a dense ranking into one.

Two ways, both per query:
- reciprocal rank fusion (Cormack et al., 2009): score(d) = sum_i w_i / (k + rank_i(d)). It uses
  only ranks, so BM25's unbounded scores and cosine similarities need no calibration; k = 60
  damps the head so one system's first place does not decide alone.
- score fusion: each run's scores min-max normalised per query to [0, 1] (a document a run did
  not return counts 0 there), then w * a + (1 - w) * b. It keeps how MUCH better the top result
  was, at the price of a weight that must be tuned.

`tune_weight` chooses that weight on the DEV queries only: the runs and judgements are cut down
to the dev ids before anything is scored, so the test queries cannot leak into the choice.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from rag_service.evaluation.metrics import evaluate
from rag_service.evaluation.runs import Run, ranking

DEFAULT_GRID = tuple(round(0.1 * i, 1) for i in range(11))


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]],
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[tuple[str, float]]:
    """Fuse rankings (document ids, best first) into (id, score) pairs, best first.

    score(d) = sum over the rankings i that contain d of weights[i] / (k + rank_i(d)), ranks
    from 1; weights default to 1 each. Equal scores keep the order in which the documents first
    appear reading ranking 0 top to bottom, then ranking 1, and so on. Raises ValueError for a
    negative k, weights that do not match the rankings or are negative, or a ranking that
    repeats a document.
    """
    if isinstance(rankings, str) or any(isinstance(r, str) for r in rankings):
        raise TypeError("rankings must be sequences of document ids, not strings")
    if isinstance(k, bool) or not isinstance(k, int | float) or not math.isfinite(k) or k < 0:
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"weights must be finite and >= 0, got {list(weights)}")
    for position, ranked in enumerate(rankings):
        if len(set(ranked)) != len(ranked):
            raise ValueError(f"ranking {position} lists a document more than once")
    # BEGIN SOLUTION 3.5: weighted sum of 1 / (k + rank), ties in first-appearance order
    scores: dict[str, float] = {}
    for weight, ranked in zip(weights, rankings, strict=True):
        for rank, doc_id in enumerate(ranked, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    first_seen = {doc_id: position for position, doc_id in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], first_seen[item[0]]))
    # END SOLUTION


def _min_max(results: Sequence[tuple[str, float]], query_id: str) -> dict[str, float]:
    """Scores rescaled to [0, 1] within one query; all-equal scores all become 1.0 (each is
    that run's best answer, and 0 would erase the run from the fusion)."""
    ordered = ranking(results, query_id)  # validates ids and scores
    scores = dict(results)
    if not ordered:
        return {}
    high, low = scores[ordered[0]], scores[ordered[-1]]
    if high == low:
        return dict.fromkeys(ordered, 1.0)
    return {doc_id: (scores[doc_id] - low) / (high - low) for doc_id in ordered}


def score_fusion(runs: Sequence[Run], weight: float, k: int | None = None) -> Run:
    """Per query: weight * minmax(run_a) + (1 - weight) * minmax(run_b), missing = 0.

    `runs` is a pair (a, b). Queries of either run are kept. Results are best first; equal
    fused scores keep run a's order, then run b's. `k` keeps only the top k per query.
    """
    if len(runs) != 2:
        raise ValueError(f"score_fusion combines exactly two runs, got {len(runs)}")
    if not (isinstance(weight, int | float) and 0 <= weight <= 1):
        raise ValueError(f"weight must be in [0, 1], got {weight!r}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be a positive int or None, got {k!r}")
    run_a, run_b = runs
    fused: Run = {}
    for query_id in dict.fromkeys([*run_a, *run_b]):
        a = _min_max(run_a.get(query_id, []), query_id)
        b = _min_max(run_b.get(query_id, []), query_id)
        combined = {
            doc_id: weight * a.get(doc_id, 0.0) + (1 - weight) * b.get(doc_id, 0.0)
            for doc_id in dict.fromkeys([*a, *b])
        }
        ordered = sorted(combined.items(), key=lambda item: -item[1])  # stable: a's order first
        fused[query_id] = ordered[:k] if k is not None else ordered
    return fused


def rrf_runs(
    runs: Sequence[Run],
    k: int = 60,
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> Run:
    """`reciprocal_rank_fusion` applied per query to whole runs; `depth` keeps the top results."""
    fused: Run = {}
    query_ids = dict.fromkeys(q for run in runs for q in run)
    for query_id in query_ids:
        ranked = [ranking(run.get(query_id, []), query_id) for run in runs]
        results = reciprocal_rank_fusion(ranked, k=k, weights=weights)
        fused[query_id] = results[:depth] if depth is not None else results
    return fused


@dataclass(frozen=True)
class TunedWeight:
    """The chosen weight (on run a), the dev score of every weight tried, and what was used."""

    weight: float
    dev_scores: dict[float, float]
    metric: str
    method: str
    dev_queries: int


def tune_weight(
    dev_queries: Collection[str],
    runs: Sequence[Run],
    qrels: Mapping[str, Mapping[str, int]],
    metric: str = "ndcg@10",
    grid: Sequence[float] = DEFAULT_GRID,
    method: str = "score",
) -> TunedWeight:
    """The fusion weight with the best mean `metric` over `dev_queries`, and every dev score.

    `method="score"` tunes `score_fusion`'s weight; `method="rrf"` tunes RRF weights (w, 1 - w).
    Only the dev queries' runs and judgements are looked at (they are cut out first). A tie
    goes to the weight listed first in `grid`. Raises ValueError for an empty dev set, dev ids
    without judgements, or weights outside [0, 1].
    """
    if method not in ("score", "rrf"):
        raise ValueError(f"method must be 'score' or 'rrf', got {method!r}")
    if len(runs) != 2:
        raise ValueError(f"tune_weight fuses exactly two runs, got {len(runs)}")
    dev = sorted(set(dev_queries))
    if not dev:
        raise ValueError("no dev queries: the weight must be tuned on a dev split")
    unjudged = [q for q in dev if q not in qrels]
    if unjudged:
        raise ValueError(f"dev queries without judgements: {unjudged[:10]}")
    if not grid or any(not 0 <= w <= 1 for w in grid):
        raise ValueError(f"grid must be non-empty weights in [0, 1], got {list(grid)}")
    dev_runs = [{q: run[q] for q in dev if q in run} for run in runs]
    dev_qrels = {q: qrels[q] for q in dev}
    dev_scores: dict[float, float] = {}
    for weight in grid:
        if method == "score":
            fused = score_fusion(dev_runs, weight)
        else:
            fused = rrf_runs(dev_runs, weights=(weight, 1 - weight))
        dev_scores[float(weight)] = evaluate(fused, dev_qrels, (metric,)).means[metric]
    best = max(dev_scores, key=lambda w: dev_scores[w])  # max keeps the first of equal scores
    return TunedWeight(
        weight=best, dev_scores=dev_scores, metric=metric, method=method, dev_queries=len(dev)
    )
