"""Checkpoints 3.3 and 3.4: graded nDCG@k and recall@k for one query's ranking.

Grades `rag_service.evaluation.metrics.ndcg_at_k(ranking, qrels_for_query, k)` and
`recall_at_k(ranking, qrels_for_query, k)`. Every expected value below is worked out by hand in
the test from the definitions: linear gains (the grade itself), discount log2(rank + 1) with
ranks from 1, the ideal DCG from the judged grades sorted high to low and cut at k; relevant
means grade > 0; a query with nothing relevant scores 0.0. Nothing is compared with the
reference implementation.
"""

from __future__ import annotations

import math

import pytest

from learn.testing import import_learner

# One query's judgements: three relevant documents with grades 3, 2, 1 and one judged 0.
QRELS = {"d1": 3, "d2": 1, "d3": 2, "d4": 0}
LOG2_3 = math.log2(3)  # the discount at rank 2
LOG2_5 = math.log2(5)  # the discount at rank 4


@pytest.fixture
def metrics():
    return import_learner("rag_service.evaluation.metrics")


@pytest.mark.checkpoint("3.3")
def test_ndcg_of_the_ideal_ranking_is_one(metrics):
    """Grades 3, 2, 1 in that order are the ideal ranking: nDCG@k = 1 for every k."""
    for k in (1, 2, 3, 10):
        assert metrics.ndcg_at_k(["d1", "d3", "d2"], QRELS, k) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.checkpoint("3.3")
def test_ndcg_hand_computed_with_graded_gains(metrics):
    """Ranks 1-4 hold grades 1, unjudged, 3, 2: DCG = 1/1 + 0 + 3/2 + 2/log2(5)."""
    dcg = 1 / 1 + 0 + 3 / 2 + 2 / LOG2_5  # = 3.361353
    ideal = 3 / 1 + 2 / LOG2_3 + 1 / 2  # grades 3, 2, 1 at ranks 1-3 = 4.761860
    value = metrics.ndcg_at_k(["d2", "unjudged", "d1", "d3"], QRELS, 4)
    assert value == pytest.approx(dcg / ideal, abs=1e-9)
    assert value == pytest.approx(0.705891, abs=1e-6)


@pytest.mark.checkpoint("3.3")
def test_ndcg_cuts_both_dcg_and_ideal_at_k(metrics):
    """At k = 2 only ranks 1-2 count, and the ideal is the two best grades (3 and 2)."""
    value = metrics.ndcg_at_k(["d2", "unjudged", "d1", "d3"], QRELS, 2)
    assert value == pytest.approx((1 / 1) / (3 / 1 + 2 / LOG2_3), abs=1e-9)  # 0.234639


@pytest.mark.checkpoint("3.3")
def test_ndcg_uses_linear_not_exponential_gain(metrics):
    """Grade 1 then grade 3: (1 + 3/log2 3) / (3 + 1/log2 3), not the 2^grade - 1 variant."""
    qrels = {"a": 1, "b": 3}
    value = metrics.ndcg_at_k(["a", "b"], qrels, 2)
    assert value == pytest.approx((1 + 3 / LOG2_3) / (3 + 1 / LOG2_3), abs=1e-9)  # 0.796708
    assert value != pytest.approx((1 + 7 / LOG2_3) / (7 + 1 / LOG2_3), abs=1e-3)


@pytest.mark.checkpoint("3.3")
def test_ndcg_ideal_counts_relevant_documents_never_retrieved(metrics):
    """A short ranking that misses a grade-2 document is penalised: 2 / (2 + 2/log2 3)."""
    value = metrics.ndcg_at_k(["a"], {"a": 2, "b": 2}, 10)
    assert value == pytest.approx(2 / (2 + 2 / LOG2_3), abs=1e-9)  # 0.613147


@pytest.mark.checkpoint("3.3")
def test_ndcg_is_zero_without_relevant_documents(metrics):
    """Only grade-0 judgements, or none: 0.0, not NaN and not an exception."""
    assert metrics.ndcg_at_k(["d4", "x"], {"d4": 0}, 10) == 0.0
    assert metrics.ndcg_at_k(["x"], {}, 10) == 0.0
    assert metrics.ndcg_at_k([], QRELS, 10) == 0.0


@pytest.mark.checkpoint("3.4")
def test_recall_hand_computed_at_several_k(metrics):
    """Relevant = {d1, d2, d3} (d4 has grade 0); ranking d4, d1, x, d3, d2."""
    ranking = ["d4", "d1", "x", "d3", "d2"]
    assert metrics.recall_at_k(ranking, QRELS, 1) == 0.0
    assert metrics.recall_at_k(ranking, QRELS, 2) == pytest.approx(1 / 3, abs=1e-12)
    assert metrics.recall_at_k(ranking, QRELS, 4) == pytest.approx(2 / 3, abs=1e-12)
    assert metrics.recall_at_k(ranking, QRELS, 5) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.checkpoint("3.4")
def test_recall_ignores_grades_above_zero_and_zero_grades(metrics):
    """Any grade > 0 counts once (grade 3 is not worth more); a grade-0 hit counts nothing."""
    assert metrics.recall_at_k(["d2"], QRELS, 1) == pytest.approx(1 / 3, abs=1e-12)
    assert metrics.recall_at_k(["d1"], QRELS, 1) == pytest.approx(1 / 3, abs=1e-12)
    assert metrics.recall_at_k(["d4"], QRELS, 1) == 0.0


@pytest.mark.checkpoint("3.4")
def test_recall_with_k_beyond_the_ranking(metrics):
    """k = 100 on a 2-document ranking counts what is there: 2 of 3 relevant."""
    assert metrics.recall_at_k(["d3", "d1"], QRELS, 100) == pytest.approx(2 / 3, abs=1e-12)


@pytest.mark.checkpoint("3.4")
def test_recall_is_zero_without_relevant_documents(metrics):
    """Nothing relevant to find: 0.0 rather than a division by zero."""
    assert metrics.recall_at_k(["d4"], {"d4": 0}, 10) == 0.0
    assert metrics.recall_at_k(["x"], {}, 10) == 0.0
