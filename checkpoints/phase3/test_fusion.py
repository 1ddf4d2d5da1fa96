"""Checkpoint 3.5: reciprocal rank fusion of several rankings.

Grades `rag_service.fusion.reciprocal_rank_fusion(rankings, k=60, weights=None) -> list[(id,
score)]`: score(d) = sum over the rankings i that contain d of w_i / (k + rank_i(d)), ranks from
1, weights 1 by default; best first; equal scores in the order the documents first appear when
reading ranking 0 from the top, then ranking 1, and so on. Every expected score below is
written out as its sum of fractions.
"""

from __future__ import annotations

import pytest

from learn.testing import import_learner


@pytest.fixture
def fusion():
    return import_learner("rag_service.fusion")


@pytest.mark.checkpoint("3.5")
def test_default_k_is_60_and_scores_are_sums_of_reciprocals(fusion):
    """a is 1st and 2nd, c is 3rd and 1st, b is 2nd once: a > c > b with these exact scores."""
    fused = fusion.reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]])
    assert [doc for doc, _ in fused] == ["a", "c", "b"]
    expected = {"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62}
    assert dict(fused) == pytest.approx(expected, abs=1e-15)


@pytest.mark.checkpoint("3.5")
def test_ranks_start_at_one(fusion):
    """With k = 0 the first place scores 1/1 and the second 1/2 (ranks from 0 would divide by 0)."""
    fused = fusion.reciprocal_rank_fusion([["a", "b", "c"]], k=0)
    assert fused == [
        ("a", pytest.approx(1.0)),
        ("b", pytest.approx(0.5)),
        ("c", pytest.approx(1 / 3)),
    ]


@pytest.mark.checkpoint("3.5")
def test_agreement_beats_a_single_first_place(fusion):
    """b is 2nd in both lists: 2/62 beats a's and c's single 1/61."""
    fused = fusion.reciprocal_rank_fusion([["a", "b"], ["c", "b"]])
    assert fused[0] == ("b", pytest.approx(2 / 62, abs=1e-15))
    assert [doc for doc, _ in fused] == ["b", "a", "c"]


@pytest.mark.checkpoint("3.5")
def test_weights_multiply_each_rankings_share(fusion):
    """weights 0.5 and 2 with k = 1: a = 0.5/2 + 2/3, b = 0.5/3, c = 2/2."""
    fused = fusion.reciprocal_rank_fusion([["a", "b"], ["c", "a"]], k=1, weights=[0.5, 2.0])
    assert [doc for doc, _ in fused] == ["c", "a", "b"]
    expected = {"a": 0.5 / 2 + 2 / 3, "b": 0.5 / 3, "c": 2 / 2}
    assert dict(fused) == pytest.approx(expected, abs=1e-12)


@pytest.mark.checkpoint("3.5")
def test_ties_keep_first_appearance_order(fusion):
    """Equal scores: the document met first (ranking 0 top down, then ranking 1) comes first."""
    assert [d for d, _ in fusion.reciprocal_rank_fusion([["p"], ["q"]])] == ["p", "q"]
    assert [d for d, _ in fusion.reciprocal_rank_fusion([["q"], ["p"]])] == ["q", "p"]
    mirrored = fusion.reciprocal_rank_fusion([["a", "b"], ["b", "a"]])
    assert [d for d, _ in mirrored] == ["a", "b"] and mirrored[0][1] == mirrored[1][1]
    assert [d for d, _ in fusion.reciprocal_rank_fusion([["a", "b"], ["c", "d"]])] == [
        "a", "c", "b", "d",
    ]  # fmt: skip


@pytest.mark.checkpoint("3.5")
def test_every_document_once_and_empty_input(fusion):
    """The union of the rankings, each id once, scores as floats; no rankings -> []."""
    fused = fusion.reciprocal_rank_fusion([["a", "b"], ["b", "c"], ["d"]])
    assert sorted(doc for doc, _ in fused) == ["a", "b", "c", "d"]
    assert all(isinstance(score, float) for _, score in fused)
    assert fusion.reciprocal_rank_fusion([]) == []
    assert fusion.reciprocal_rank_fusion([[], []]) == []
