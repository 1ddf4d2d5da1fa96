"""Checkpoint 3.6: recall of an approximate index against exact search.

Grades `rag_service.index.ann.recall_at_k_vs_exact(approx, exact, k) -> float`: the mean over
queries of |approximate top-k ∩ exact top-k| / k, dividing by the number of exact results when
there are fewer than k. The oracles are written out here: small cases counted by hand, and
cases built with a known number of replaced ids, whose recall follows from construction.
Nothing is compared with the reference implementation.
"""

from __future__ import annotations

import random

import pytest

from learn.testing import import_learner


@pytest.fixture
def ann():
    return import_learner("rag_service.index.ann")


@pytest.mark.checkpoint("3.6")
def test_identical_rankings_have_recall_one(ann):
    """Approximate results equal to the exact ones score 1.0."""
    exact = [["a", "b", "c"], ["d", "e", "f"]]
    assert ann.recall_at_k_vs_exact([list(row) for row in exact], exact, 3) == 1.0


@pytest.mark.checkpoint("3.6")
def test_hand_counted_overlaps(ann):
    """2 of 3 and 1 of 3 found: the mean is 1/2."""
    approx = [["a", "b", "c"], ["x", "y", "z"]]
    exact = [["a", "c", "d"], ["x", "q", "r"]]
    assert ann.recall_at_k_vs_exact(approx, exact, 3) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.checkpoint("3.6")
def test_order_within_the_top_k_does_not_matter(ann):
    """The same ids in reverse order are still all found."""
    exact = [["a", "b", "c", "d"]]
    assert ann.recall_at_k_vs_exact([["d", "c", "b", "a"]], exact, 4) == 1.0


@pytest.mark.checkpoint("3.6")
def test_only_the_first_k_of_each_list_count(ann):
    """Ids beyond position k, in either list, neither help nor hurt."""
    # top-2: {a, z} vs {a, b} -> 1 of 2; the 'b' at approx position 3 is too late.
    assert ann.recall_at_k_vs_exact([["a", "z", "b"]], [["a", "b", "c"]], 2) == 0.5
    # exact's third id 'c' is outside its top-2, so finding it earns nothing.
    assert ann.recall_at_k_vs_exact([["c", "a"]], [["a", "b", "c"]], 2) == 0.5


@pytest.mark.checkpoint("3.6")
def test_fewer_exact_results_than_k_divide_by_their_count(ann):
    """A 2-item index: finding both exact ids is recall 1.0 at k=10, one of them 0.5."""
    assert ann.recall_at_k_vs_exact([["a", "b"]], [["b", "a"]], 10) == 1.0
    assert ann.recall_at_k_vs_exact([["a", "x"]], [["a", "b"]], 10) == 0.5


@pytest.mark.checkpoint("3.6")
def test_a_repeated_id_counts_once(ann):
    """An index returning 'a' twice has found 2 distinct exact ids of 3, not 3."""
    assert ann.recall_at_k_vs_exact([["a", "a", "b"]], [["a", "b", "c"]], 3) == pytest.approx(
        2 / 3, abs=1e-12
    )


@pytest.mark.checkpoint("3.6")
def test_known_replacements_give_known_recall(ann):
    """Replace r_i of each query's exact top-k by unseen ids: recall = mean(1 - r_i / k)."""
    rng = random.Random(36)
    k, exact, approx, expected = 10, [], [], []
    for query in range(200):
        truth = [f"q{query}-d{j}" for j in range(k)]
        replaced = rng.randint(0, k)
        found = list(truth)
        for position in rng.sample(range(k), replaced):
            found[position] = f"q{query}-wrong{position}"
        rng.shuffle(found)
        exact.append(truth)
        approx.append(found + [f"q{query}-tail{j}" for j in range(5)])  # beyond k: ignored
        expected.append(1 - replaced / k)
    recall = ann.recall_at_k_vs_exact(approx, exact, k)
    assert isinstance(recall, float)
    assert recall == pytest.approx(sum(expected) / len(expected), abs=1e-12)


@pytest.mark.checkpoint("3.6")
def test_tuple_rows_and_k_of_one(ann):
    """Rows may be tuples; k=1 compares the first ids only."""
    exact = (("a", "b"), ("c", "d"))
    approx = (("a", "c"), ("d", "c"))
    assert ann.recall_at_k_vs_exact(approx, exact, 1) == 0.5
    assert ann.recall_at_k_vs_exact(approx, exact, 2) == 0.75
