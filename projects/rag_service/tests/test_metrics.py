"""Our metrics against ranx (the reference implementation) and against hand-computed cases.

ranx compiles its metrics with numba on first use (over a minute on a busy 2-core machine) and
caches the machine code next to its sources; later sessions still spend ~6 s loading, so the
ranx comparisons are marked slow. When that folder is read-only the cache goes to a pytest
temporary folder instead.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from rag_service.evaluation import metrics as m
from rag_service.evaluation.runs import ranking

METRICS = (
    "ndcg@1", "ndcg@5", "ndcg@10", "ndcg@100", "ndcg",
    "recall@1", "recall@5", "recall@10", "recall@100",
    "precision@1", "precision@10", "precision@100",
    "mrr", "mrr@5", "map", "map@10", "hit_rate@5",
)  # fmt: skip


@pytest.fixture(scope="module")
def ranx(tmp_path_factory):
    """ranx, with numba's cache redirected when its package folder cannot be written."""
    import importlib.util

    spec = importlib.util.find_spec("ranx")
    if spec is None:
        pytest.skip("ranx is not installed (pip install -e '.[test]')")
    package = Path(spec.origin).parent
    if not os.access(package, os.W_OK) and "NUMBA_CACHE_DIR" not in os.environ:
        os.environ["NUMBA_CACHE_DIR"] = str(tmp_path_factory.mktemp("numba-cache"))
        import numba.core.config

        numba.core.config.reload_config()
    import ranx

    return ranx


def _random_case(seed: int, n_queries: int = 150, n_docs: int = 80, tied: bool = False):
    """Graded qrels (0-3, some queries with only 0 grades) and runs of random length 0-40,
    some queries absent from the run; `tied` draws scores from 4 values so ties abound."""
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(n_queries):
        query_id = f"q{q:03d}"
        judged = rng.choice(n_docs, size=int(rng.integers(1, 12)), replace=False)
        grades = rng.integers(0, 4, size=judged.size)
        if q % 10 == 0:
            grades[:] = 0  # judged, nothing relevant
        qrels[query_id] = {docs[d]: int(g) for d, g in zip(judged, grades, strict=True)}
        if q % 13 == 5:
            continue  # the run has no results for this query
        length = int(rng.integers(1, 41))
        retrieved = rng.choice(n_docs, size=length, replace=False)
        scores = rng.integers(0, 4, size=length) if tied else rng.normal(size=length)
        run[query_id] = [(docs[d], float(s)) for d, s in zip(retrieved, scores, strict=True)]
    return qrels, run


def _ranx_scores(ranx, qrels, run, metrics):
    """Per-query ranx scores {metric: {qid: value}} (queries missing from the run added)."""
    ranx_run = ranx.Run({q: dict(results) for q, results in run.items() if results})
    ranx.evaluate(ranx.Qrels(qrels), ranx_run, list(metrics), make_comparable=True)
    return {metric: dict(ranx_run.scores[metric]) for metric in metrics}, ranx_run


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_metric_equals_ranx_per_query_and_mean(ranx, seed):
    """Distinct scores: every metric, every query and the means agree with ranx to 1e-9."""
    qrels, run = _random_case(seed)
    ours = m.evaluate(run, qrels, METRICS)
    theirs, _ = _ranx_scores(ranx, qrels, run, METRICS)
    assert ours.missing_from_run and ours.no_relevant  # the awkward cases are really there
    for metric in METRICS:
        assert set(theirs[metric]) == set(ours.per_query)
        for query_id, value in theirs[metric].items():
            assert ours.per_query[query_id][metric] == pytest.approx(value, abs=1e-9), (
                metric,
                query_id,
            )
        ranx_mean = ranx.evaluate(
            ranx.Qrels(qrels),
            ranx.Run({q: dict(r) for q, r in run.items() if r}),
            metric,
            make_comparable=True,
        )
        assert ours.means[metric] == pytest.approx(ranx_mean, abs=1e-9)


@pytest.mark.slow
def test_ties_agree_once_ranx_order_is_used(ranx):
    """Tied scores: ranx orders ties by an unstable argsort, we keep the input order. Given
    ranx's own order, every value agrees to 1e-9; with our order the values may differ only
    for queries where tied documents have different grades."""
    qrels, run = _random_case(7, tied=True)
    theirs, ranx_run = _ranx_scores(ranx, qrels, run, METRICS)
    ranx_order = {q: list(results) for q, results in ranx_run.to_dict().items()}
    as_ranked = {q: [(d, -float(i)) for i, d in enumerate(docs)] for q, docs in ranx_order.items()}
    ours = m.evaluate(as_ranked, qrels, METRICS)
    for metric in METRICS:
        for query_id, value in theirs[metric].items():
            assert ours.per_query[query_id][metric] == pytest.approx(value, abs=1e-9)
    # Our own tie order: documents tied with equally graded neighbours give ranx's values.
    ours_tied = m.evaluate(run, qrels, METRICS)
    for query_id, results in run.items():
        grade_by_score: dict[float, set[int]] = {}
        for doc_id, score in results:
            grade_by_score.setdefault(score, set()).add(max(qrels[query_id].get(doc_id, 0), 0))
        if all(len(grades) == 1 for grades in grade_by_score.values()):
            for metric in METRICS:
                assert ours_tied.per_query[query_id][metric] == pytest.approx(
                    theirs[metric][query_id], abs=1e-9
                )


def test_ties_keep_the_order_the_run_gave():
    """Equal scores: the document listed first ranks first (a stable sort, documented)."""
    qrels = {"q": {"b": 1}}
    first = m.evaluate({"q": [("a", 1.0), ("b", 1.0)]}, qrels, ["mrr"])
    second = m.evaluate({"q": [("b", 1.0), ("a", 1.0)]}, qrels, ["mrr"])
    assert first.means["mrr"] == 0.5 and second.means["mrr"] == 1.0
    assert ranking([("x", 0.1), ("y", 0.9), ("z", 0.1)]) == ["y", "x", "z"]


def test_hand_computed_graded_values():
    """One query worked by hand: grades 3, 0, 2 at ranks 1-3, an unretrieved grade-1 doc."""
    qrels = {"a": 3, "b": 0, "c": 2, "d": 1}
    ranked = ["a", "b", "c", "x"]
    dcg = 3 / math.log2(2) + 2 / math.log2(4)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert m.ndcg_at_k(ranked, qrels, 4) == pytest.approx(dcg / ideal, abs=1e-12)
    assert m.ndcg_at_k(ranked, qrels, 1) == pytest.approx(1.0)
    assert m.recall_at_k(ranked, qrels, 2) == pytest.approx(1 / 3)
    assert m.recall_at_k(ranked, qrels, 10) == pytest.approx(2 / 3)
    assert m.precision_at_k(ranked, qrels, 10) == pytest.approx(2 / 10)  # divides by k
    assert m.reciprocal_rank(["b", "x", "c"], qrels) == pytest.approx(1 / 3)
    assert m.reciprocal_rank(["b", "x", "c"], qrels, k=2) == 0.0
    assert m.average_precision(ranked, qrels) == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert m.hit_rate_at_k(["x", "b", "d"], qrels, 3) == 1.0


@pytest.mark.parametrize("name", METRICS)
def test_no_relevant_document_scores_zero(name):
    """Only grade-0 judgements: every metric is 0.0 (not NaN), also for an empty ranking."""
    scorer = m.metric_function(name)
    assert scorer(["a", "b"], {"a": 0, "b": 0}) == 0.0
    assert scorer([], {"a": 2}) == 0.0


def test_evaluate_reports_coverage_and_means_over_qrels_queries():
    """Run queries outside the qrels are ignored and listed; missing ones count as 0."""
    qrels = {"q1": {"a": 1}, "q2": {"b": 2}, "q3": {"c": 0}}
    run = {"q1": [("a", 2.0)], "extra": [("a", 1.0)]}
    result = m.evaluate(run, qrels, ["recall@10", "ndcg@10"])
    assert result.missing_from_run == ["q2", "q3"]
    assert result.not_in_qrels == ["extra"]
    assert result.no_relevant == ["q3"]
    assert result.means["recall@10"] == pytest.approx(1 / 3)
    assert result.scores("recall@10") == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("run", "qrels", "metrics", "message"),
    [
        ({"q": [("a", 1.0), ("a", 0.5)]}, {"q": {"a": 1}}, ["mrr"], "more than once"),
        ({"q": [("a", float("nan"))]}, {"q": {"a": 1}}, ["mrr"], "finite"),
        ({"q": [("a", 1.0)]}, {"q": {"a": 1.5}}, ["mrr"], "grade must be an int"),
        ({"q": [("a", 1.0)]}, {"q": {"a": 1}}, ["ndcg@0"], "unknown metric"),
        ({"q": [("a", 1.0)]}, {"q": {"a": 1}}, ["recall"], "unknown metric"),
        ({"q": [("a", 1.0)]}, {}, ["mrr"], "qrels are empty"),
    ],
)
def test_bad_input_is_refused_with_a_named_reason(run, qrels, metrics, message):
    """Repeated documents, NaN scores, float grades, unknown metrics and empty qrels raise."""
    with pytest.raises(ValueError, match=message):
        m.evaluate(run, qrels, metrics)


def test_metric_functions_check_k_and_ranking():
    """k must be a positive int; a ranking given as one string is a caller bug."""
    with pytest.raises(ValueError, match="k must be"):
        m.ndcg_at_k(["a"], {"a": 1}, 0)
    with pytest.raises(TypeError, match="not one string"):
        m.recall_at_k("abc", {"a": 1}, 3)
