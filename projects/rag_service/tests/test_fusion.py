"""Rank fusion, score fusion and weight tuning that never looks at the test queries."""

from __future__ import annotations

import pytest

from rag_service.evaluation.metrics import evaluate
from rag_service.fusion import (
    reciprocal_rank_fusion,
    rrf_runs,
    score_fusion,
    tune_weight,
)


def test_rrf_scores_and_order():
    """score = sum 1/(k + rank); a document both lists agree on wins."""
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60)
    expected = {"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 63, "d": 1 / 62}
    assert [doc for doc, _ in fused] == ["b", "a", "d", "c"]
    assert dict(fused) == pytest.approx(expected, abs=1e-15)


def test_rrf_weights_and_ties():
    """Weights scale each list; equal scores keep first-appearance order (list 0, then 1)."""
    assert [d for d, _ in reciprocal_rank_fusion([["x"], ["y"]])] == ["x", "y"]
    assert [d for d, _ in reciprocal_rank_fusion([["y"], ["x"]])] == ["y", "x"]
    fused = reciprocal_rank_fusion([["x"], ["y"]], weights=[1.0, 3.0], k=0)
    assert fused == [("y", 3.0), ("x", 1.0)]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rankings": [["a", "a"]]}, "more than once"),
        ({"rankings": [["a"]], "weights": [1.0, 2.0]}, "2 weights for 1"),
        ({"rankings": [["a"]], "k": -1}, "k must be"),
        ({"rankings": [["a"]], "weights": [-1.0]}, "weights must be"),
    ],
)
def test_rrf_rejects_bad_input(kwargs, error):
    """Duplicates, mismatched or negative weights and negative k raise ValueError."""
    with pytest.raises(ValueError, match=error):
        reciprocal_rank_fusion(**kwargs)


def test_score_fusion_min_max_and_missing_documents():
    """Scores rescaled to [0, 1] per query, absent = 0, then w * a + (1 - w) * b."""
    run_a = {"q": [("a", 10.0), ("b", 6.0), ("c", 2.0)]}
    run_b = {"q": [("c", 0.9), ("d", 0.5)], "only_b": [("e", 0.3)]}
    fused = score_fusion((run_a, run_b), weight=0.25)
    expected = {"a": 0.25, "b": 0.125, "c": 0.75, "d": 0.0}
    assert dict(fused["q"]) == pytest.approx(expected)
    assert [d for d, _ in fused["q"]] == ["c", "a", "b", "d"]
    assert fused["only_b"] == [("e", pytest.approx(0.75))]  # one result: normalised to 1


def test_score_fusion_extremes_reproduce_each_run():
    """Weight 1 gives run a's order, weight 0 gives run b's; k cuts the list."""
    run_a = {"q": [("a", 3.0), ("b", 2.0), ("c", 1.0)]}
    run_b = {"q": [("c", 3.0), ("b", 2.0), ("a", 1.0)]}
    assert [d for d, _ in score_fusion((run_a, run_b), 1.0)["q"]] == ["a", "b", "c"]
    assert [d for d, _ in score_fusion((run_a, run_b), 0.0, k=2)["q"]] == ["c", "b"]


def test_rrf_runs_fuses_each_query():
    """Per-query RRF over whole runs, ranks taken from each run's scores."""
    fused = rrf_runs([{"q": [("a", 0.1), ("b", 0.9)]}, {"q": [("a", 5.0)]}], k=1)
    assert fused["q"] == [("a", pytest.approx(1 / 3 + 1 / 2)), ("b", pytest.approx(1 / 2))]


def _runs_and_qrels():
    """Dev: run a finds the answer, run b does not. Test: the opposite."""
    qrels, run_a, run_b = {}, {}, {}
    for i in range(6):
        split = "dev" if i < 3 else "test"
        q = f"{split}{i}"
        qrels[q] = {f"{q}-good": 2}
        good_in_a = split == "dev"
        a_docs = [f"{q}-good", f"{q}-x", f"{q}-y"] if good_in_a else [f"{q}-x", f"{q}-y"]
        b_docs = [f"{q}-z", f"{q}-w"] if good_in_a else [f"{q}-good", f"{q}-z"]
        run_a[q] = [(d, 3.0 - r) for r, d in enumerate(a_docs)]
        run_b[q] = [(d, 0.9 - 0.1 * r) for r, d in enumerate(b_docs)]
    return qrels, run_a, run_b


@pytest.mark.parametrize("method", ["score", "rrf"])
def test_tune_weight_uses_the_dev_queries_only(method):
    """The chosen weight and every dev score are unchanged when the TEST queries' runs and
    judgements are replaced or removed; the dev scores equal evaluate() on the dev split."""
    qrels, run_a, run_b = _runs_and_qrels()
    dev = ["dev0", "dev1", "dev2"]
    tuned = tune_weight(dev, (run_a, run_b), qrels, method=method)
    # Dev rewards run a: from w = 0.5 on (ties go to run a) the answer is first; the first
    # best weight of the grid is chosen.
    assert tuned.weight == 0.5 and tuned.dev_queries == 3
    assert tuned.dev_scores[0.5] == tuned.dev_scores[1.0] == 1.0 > tuned.dev_scores[0.4]
    # Poison the test split: it now rewards weight 0 even more strongly.
    poisoned_qrels = {**qrels, **{q: {"zzz": 3} for q in qrels if q.startswith("test")}}
    poisoned_b = {**run_b, **{q: [("zzz", 1.0)] for q in run_b if q.startswith("test")}}
    again = tune_weight(dev, (run_a, poisoned_b), poisoned_qrels, method=method)
    dev_only = {q: qrels[q] for q in dev}
    alone = tune_weight(
        dev, ({q: run_a[q] for q in dev}, {q: run_b[q] for q in dev}), dev_only, method=method
    )
    assert again == tuned == alone
    if method == "score":
        for weight, score in tuned.dev_scores.items():
            fused = score_fusion(({q: run_a[q] for q in dev}, {q: run_b[q] for q in dev}), weight)
            assert score == pytest.approx(evaluate(fused, dev_only, ["ndcg@10"]).means["ndcg@10"])


def test_tune_weight_would_choose_otherwise_on_the_test_split():
    """The same data tuned on the test queries picks the other end: the split matters."""
    qrels, run_a, run_b = _runs_and_qrels()
    assert tune_weight(["test3", "test4", "test5"], (run_a, run_b), qrels).weight == 0.0


def test_tune_weight_rejects_bad_splits():
    """No dev queries, or dev queries without judgements, raise ValueError."""
    qrels, run_a, run_b = _runs_and_qrels()
    with pytest.raises(ValueError, match="no dev queries"):
        tune_weight([], (run_a, run_b), qrels)
    with pytest.raises(ValueError, match="without judgements"):
        tune_weight(["nope"], (run_a, run_b), qrels)
