"""Checkpoint 3.9: the semantic cache decision.

Grades `rag_service.caching.semantic.semantic_lookup(query_vector, cached_vectors, threshold)
-> int | None`: the index of the cached vector whose cosine similarity with the query (the dot
product of the two L2-normalised vectors) is highest, provided it is at or above `threshold`;
otherwise None. Equal best similarities go to the lowest index; an empty cache gives None.
Every expected cosine below is worked out by hand in the test's docstring or comment.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from learn.testing import import_learner


@pytest.fixture
def semantic():
    return import_learner("rag_service.caching.semantic")


@pytest.mark.checkpoint("3.9")
def test_best_match_above_threshold(semantic):
    """[1, 0] against [0, 1], [3, 4], [1, 1]: cosines 0, 3/5, 1/sqrt(2); the last one wins."""
    cached = np.array([[0.0, 1.0], [3.0, 4.0], [1.0, 1.0]])
    found = semantic.semantic_lookup(np.array([1.0, 0.0]), cached, 0.5)
    assert found == 2 and isinstance(found, int)


@pytest.mark.checkpoint("3.9")
def test_threshold_is_inclusive_and_a_miss_is_none(semantic):
    """cos([1, 0], [3, 4]) = 0.6 exactly: served at 0.6, not at 0.61."""
    cached = np.array([[0.0, 1.0], [3.0, 4.0]])
    assert semantic.semantic_lookup(np.array([1.0, 0.0]), cached, 0.6) == 1
    assert semantic.semantic_lookup(np.array([1.0, 0.0]), cached, 0.61) is None


@pytest.mark.checkpoint("3.9")
def test_cosine_not_dot_product(semantic):
    """[100, 0] has the larger dot product with [1, 1] but cosine 0.707; [1, 1.1] has 0.998."""
    cached = np.array([[100.0, 0.0], [1.0, 1.1]])
    expected_cos = (1.0 + 1.1) / (math.sqrt(2) * math.sqrt(1 + 1.1**2))  # 0.99774
    assert semantic.semantic_lookup(np.array([1.0, 1.0]), cached, 0.99) == 1
    assert semantic.semantic_lookup(np.array([1.0, 1.0]), cached, expected_cos + 1e-6) is None
    assert semantic.semantic_lookup(np.array([5.0, 5.0]), cached, 0.99) == 1  # scale-free


@pytest.mark.checkpoint("3.9")
def test_ties_go_to_the_lowest_index(semantic):
    """Two identical cached vectors: the one cached first is returned."""
    cached = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    assert semantic.semantic_lookup(np.array([2.0, 2.0]), cached, 0.9) == 1
    cached = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    assert semantic.semantic_lookup(np.array([2.0, 2.0]), cached, 0.9) == 0


@pytest.mark.checkpoint("3.9")
def test_empty_cache_and_negative_thresholds(semantic):
    """No cached vectors: None; threshold -1 accepts the best even when every cosine is < 0."""
    assert semantic.semantic_lookup(np.array([1.0, 0.0]), np.empty((0, 2)), -1.0) is None
    opposite = np.array([[-1.0, 0.0], [-1.0, 1.0]])  # cosines -1 and -1/sqrt(2)
    assert semantic.semantic_lookup(np.array([1.0, 0.0]), opposite, -1.0) == 1
    assert semantic.semantic_lookup(np.array([1.0, 0.0]), opposite, -0.5) is None


@pytest.mark.checkpoint("3.9")
def test_many_vectors_against_a_loop(semantic):
    """60 random 16-d vectors: the same answer as cosines computed one at a time in Python."""
    rng = np.random.default_rng(39)
    for _ in range(20):
        cached = rng.normal(size=(60, 16))
        query = rng.normal(size=16)
        best, best_cos = None, -2.0
        for i, row in enumerate(cached.tolist()):
            dot = sum(a * b for a, b in zip(query.tolist(), row, strict=True))
            cos = dot / (math.sqrt(sum(a * a for a in query)) * math.sqrt(sum(b * b for b in row)))
            if cos > best_cos:
                best, best_cos = i, cos
        assert semantic.semantic_lookup(query, cached, best_cos - 1e-9) == best
        assert semantic.semantic_lookup(query, cached, best_cos + 1e-9) is None
