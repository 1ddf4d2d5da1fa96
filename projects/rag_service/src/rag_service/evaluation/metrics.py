"""Ranking metrics over graded judgements, written out so a reader can check each line.

Conventions (the same as ranx 0.3 and trec_eval, checked against ranx in tests/test_metrics.py):
- relevant means grade > 0; grades <= 0 add nothing anywhere;
- nDCG uses the LINEAR gain (the grade itself, Jarvelin & Kekalainen; ranx's `ndcg`, trec_eval's
  `ndcg_cut`), discount log2(rank + 1) with ranks from 1, and the ideal DCG from the judged
  grades sorted high to low, cut at k;
- a query with no relevant document scores 0.0 on every metric (there is nothing to find), and
  it still counts in the mean when it is in the qrels, as in ranx: the harness leaves such
  queries out BEFORE evaluating (`BeirDataset.judged_queries`) and says how many;
- precision@k divides by k even when fewer than k documents came back;
- a run's order is its scores, highest first, ties kept in the order given (see runs.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rag_service.evaluation.runs import check_qrels, rankings

DEFAULT_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr", "map")
_METRIC_NAME = re.compile(r"^(ndcg|recall|precision|mrr|map|hit_rate)(?:@([1-9][0-9]*))?$")
_NEEDS_K = {"recall", "precision", "hit_rate"}


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")


def _check_ranking(ranking: Sequence[str]) -> None:
    if isinstance(ranking, str):
        raise TypeError("ranking must be a sequence of document ids, not one string")
    if len(set(ranking)) != len(ranking):
        repeated = sorted({d for d in ranking if ranking.count(d) > 1})
        raise ValueError(f"ranking repeats document ids: {repeated[:5]}")


def ndcg_at_k(ranking: Sequence[str], qrels_for_query: Mapping[str, int], k: int) -> float:
    """Normalised discounted cumulative gain of the top k, linear gains, 0.0 if none relevant.

    DCG@k = sum over ranks r = 1..k of grade(doc at r) / log2(r + 1); the ideal DCG@k is the
    same sum over the judged grades sorted from high to low. Unjudged documents count as grade 0.
    """
    _check_k(k)
    _check_ranking(ranking)
    # BEGIN SOLUTION 3.3: graded DCG of the top k over the ideal DCG of the sorted grades
    gains = [max(qrels_for_query.get(doc_id, 0), 0) for doc_id in ranking[:k]]
    dcg = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))
    ideal_gains = sorted((g for g in qrels_for_query.values() if g > 0), reverse=True)[:k]
    ideal = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(ideal_gains, start=1))
    return dcg / ideal if ideal > 0 else 0.0
    # END SOLUTION


def recall_at_k(ranking: Sequence[str], qrels_for_query: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents (grade > 0) found in the top k; 0.0 if none relevant."""
    _check_k(k)
    _check_ranking(ranking)
    # BEGIN SOLUTION 3.4: |top k that is relevant| / |relevant|, with no relevant giving 0.0
    relevant = {doc_id for doc_id, grade in qrels_for_query.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)
    # END SOLUTION


def precision_at_k(ranking: Sequence[str], qrels_for_query: Mapping[str, int], k: int) -> float:
    """Relevant documents in the top k divided by k (not by how many came back)."""
    _check_k(k)
    _check_ranking(ranking)
    relevant = {doc_id for doc_id, grade in qrels_for_query.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / k


def hit_rate_at_k(ranking: Sequence[str], qrels_for_query: Mapping[str, int], k: int) -> float:
    """1.0 if any relevant document is in the top k, else 0.0."""
    _check_k(k)
    _check_ranking(ranking)
    return float(any(qrels_for_query.get(doc_id, 0) > 0 for doc_id in ranking[:k]))


def reciprocal_rank(
    ranking: Sequence[str], qrels_for_query: Mapping[str, int], k: int | None = None
) -> float:
    """1 / rank of the first relevant document (within the top k if given), else 0.0."""
    if k is not None:
        _check_k(k)
    _check_ranking(ranking)
    for rank, doc_id in enumerate(ranking[:k], start=1):
        if qrels_for_query.get(doc_id, 0) > 0:
            return 1.0 / rank
    return 0.0


def average_precision(
    ranking: Sequence[str], qrels_for_query: Mapping[str, int], k: int | None = None
) -> float:
    """Mean of precision@r over the ranks r of the relevant documents retrieved (top k if
    given), divided by ALL relevant documents, so a relevant document never retrieved counts 0.
    """
    if k is not None:
        _check_k(k)
    _check_ranking(ranking)
    n_relevant = sum(1 for grade in qrels_for_query.values() if grade > 0)
    if n_relevant == 0:
        return 0.0
    hits, total = 0, 0.0
    for rank, doc_id in enumerate(ranking[:k], start=1):
        if qrels_for_query.get(doc_id, 0) > 0:
            hits += 1
            total += hits / rank
    return total / n_relevant


MetricFunction = Callable[[Sequence[str], Mapping[str, int]], float]


def metric_function(name: str) -> MetricFunction:
    """The scorer for a metric name as ranx spells it: ndcg@10, recall@100, mrr, map@100...

    `ndcg`, `mrr` and `map` without a cut-off use the whole ranking (and, for nDCG, every judged
    grade in the ideal). Raises ValueError listing the accepted names for anything else.
    """
    match = _METRIC_NAME.match(name)
    if match is None or (match.group(1) in _NEEDS_K and match.group(2) is None):
        raise ValueError(
            f"unknown metric {name!r}: use ndcg, ndcg@K, recall@K, precision@K, hit_rate@K, "
            "mrr, mrr@K, map or map@K"
        )
    kind, cut = match.group(1), match.group(2)
    k = int(cut) if cut else None
    if kind == "ndcg":
        if k is None:
            return lambda r, q: ndcg_at_k(r, q, max(len(r), len(q), 1))
        return lambda r, q: ndcg_at_k(r, q, k)
    if kind == "mrr":
        return lambda r, q: reciprocal_rank(r, q, k)
    if kind == "map":
        return lambda r, q: average_precision(r, q, k)
    single = {"recall": recall_at_k, "precision": precision_at_k, "hit_rate": hit_rate_at_k}
    function = single[kind]
    return lambda r, q: function(r, q, k)


@dataclass
class Evaluation:
    """Per-query scores and their means.

    `per_query[qid][metric]` covers every query of the qrels (ranx's convention); queries the run
    lacks score 0 and are listed in `missing_from_run`; queries the run has but the qrels do not
    are ignored and listed in `not_in_qrels`; `no_relevant` lists judged queries without any
    relevant document (each scores 0).
    """

    metrics: tuple[str, ...]
    per_query: dict[str, dict[str, float]]
    means: dict[str, float]
    missing_from_run: list[str] = field(default_factory=list)
    not_in_qrels: list[str] = field(default_factory=list)
    no_relevant: list[str] = field(default_factory=list)

    def scores(self, metric: str, query_ids: Sequence[str] | None = None) -> list[float]:
        """One metric's per-query values in `query_ids` order (default: sorted query ids)."""
        if metric not in self.metrics:
            raise KeyError(f"metric {metric!r} was not evaluated; have {list(self.metrics)}")
        ids = sorted(self.per_query) if query_ids is None else query_ids
        return [self.per_query[q][metric] for q in ids]


def evaluate(
    run: Mapping[str, Sequence[tuple[str, float]]],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Evaluation:
    """Score `run` against `qrels` on each metric: per query and the mean over qrels' queries.

    Raises ValueError for an unknown metric, a non-integer grade, a repeated document or a
    non-finite score in the run (each message names the query and document), or empty qrels.
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    names = tuple(dict.fromkeys(metrics))
    if not names:
        raise ValueError("no metrics requested")
    functions = {name: metric_function(name) for name in names}
    if not qrels:
        raise ValueError("qrels are empty: there is nothing to evaluate against")
    check_qrels(qrels)
    ordered = rankings(run)
    per_query: dict[str, dict[str, float]] = {}
    for query_id in sorted(qrels):
        ranked = ordered.get(query_id, [])
        judged = qrels[query_id]
        per_query[query_id] = {name: functions[name](ranked, judged) for name in names}
    means = {
        name: math.fsum(row[name] for row in per_query.values()) / len(per_query) for name in names
    }
    return Evaluation(
        metrics=names,
        per_query=per_query,
        means=means,
        missing_from_run=sorted(q for q in qrels if q not in run),
        not_in_qrels=sorted(q for q in run if q not in qrels),
        no_relevant=sorted(
            q for q, judged in qrels.items() if not any(g > 0 for g in judged.values())
        ),
    )
