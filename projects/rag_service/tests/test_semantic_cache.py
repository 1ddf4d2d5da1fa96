"""The semantic cache: the lookup decision, the bounded cache, and the measured threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag_service.caching.semantic import SemanticCache, choose_threshold, semantic_lookup


def _cosines(query, cached):
    """Plain-Python cosine similarities, the oracle for the vectorised lookup."""
    norm_q = math.sqrt(sum(x * x for x in query))
    out = []
    for row in cached:
        dot = sum(a * b for a, b in zip(query, row, strict=True))
        out.append(dot / (norm_q * math.sqrt(sum(x * x for x in row))))
    return out


# -- semantic_lookup ---------------------------------------------------------------------------
def test_lookup_by_hand():
    """[1, 0] against [0, 1], [3, 4], [1, 1]: cosines 0, 0.6, 0.707; thresholds decide."""
    cached = np.array([[0.0, 1.0], [3.0, 4.0], [1.0, 1.0]])
    assert semantic_lookup(np.array([1.0, 0.0]), cached, 0.5) == 2
    assert semantic_lookup(np.array([1.0, 0.0]), cached[:2], 0.6) == 1  # inclusive
    assert semantic_lookup(np.array([1.0, 0.0]), cached[:2], 0.61) is None
    assert semantic_lookup(np.array([1.0, 0.0]), np.empty((0, 2)), -1.0) is None
    twins = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    assert semantic_lookup(np.array([2.0, 2.0]), twins, 0.9) == 1  # ties: the lowest index


def test_lookup_matches_a_brute_force_oracle():
    """Random vectors: the index of the best cosine (first of equals) or None, as the oracle."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        cached = rng.normal(size=(20, 8))
        cached[5] = cached[3]  # a duplicate: ties go to the lower index
        query = rng.normal(size=8)
        sims = _cosines(query.tolist(), cached.tolist())
        best = max(range(len(sims)), key=lambda i: (sims[i], -i))
        for threshold in (-1.0, 0.0, 0.5, sims[best] - 1e-9, sims[best] + 1e-9):
            expected = best if sims[best] >= threshold else None
            got = semantic_lookup(query, cached, threshold)
            assert got == expected, (threshold, sims[best])


@pytest.mark.parametrize(
    ("query", "cached", "match"),
    [
        (np.ones((1, 2)), np.ones((1, 2)), "query_vector"),
        (np.ones(3), np.ones((1, 2)), "cached_vectors"),
        (np.ones(2), np.ones(2), "cached_vectors"),
        (np.zeros(2), np.ones((1, 2)), "zeros"),
        (np.ones(2), np.array([[1.0, 1.0], [0.0, 0.0]]), "zero row"),
        (np.array([1.0, np.nan]), np.ones((1, 2)), "finite"),
    ],
)
def test_lookup_rejects_bad_shapes(query, cached, match):
    with pytest.raises(ValueError, match=match):
        semantic_lookup(query, cached, 0.9)


def test_lookup_rejects_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        semantic_lookup(np.ones(2), np.ones((1, 2)), float("nan"))
    with pytest.raises(ValueError, match="threshold"):
        semantic_lookup(np.ones(2), np.ones((1, 2)), "0.9")


# -- SemanticCache -----------------------------------------------------------------------------
def test_cache_serves_paraphrases_not_strangers():
    """A vector at cosine 0.98 is served, one at 0.6 is not; counters follow."""
    cache = SemanticCache(dim=2, threshold=0.95)
    cache.put(np.array([1.0, 0.0]), {"answer": "sorted(x)"}, "v1", key="q1")
    hit = cache.lookup(np.array([0.98, math.sqrt(1 - 0.98**2)]), "v1")
    assert hit is not None and hit.answer == {"answer": "sorted(x)"} and hit.key == "q1"
    assert hit.similarity == pytest.approx(0.98)
    assert cache.lookup(np.array([3.0, 4.0]), "v1") is None
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)


def test_cache_is_version_aware():
    """Entries of another index version are never served, and invalidate drops them."""
    cache = SemanticCache(dim=2, threshold=0.9)
    cache.put(np.array([1.0, 0.0]), "old", "v1")
    cache.put(np.array([0.0, 1.0]), "new", "v2")
    assert cache.lookup(np.array([1.0, 0.0]), "v2") is None
    assert cache.lookup(np.array([0.0, 1.0]), "v2").answer == "new"
    assert cache.invalidate("v2") == 1
    assert len(cache) == 1 and cache.lookup(np.array([1.0, 0.0]), "v1") is None
    assert cache.lookup(np.array([0.0, 2.0]), "v2").answer == "new"  # survivors still work


def test_cache_evicts_least_recently_used():
    """max_entries=2: a is read after b is written, so c evicts b, not a."""
    cache = SemanticCache(dim=3, threshold=0.99, max_entries=2)
    a, b, c = np.eye(3)
    cache.put(a, "a", "v")
    cache.put(b, "b", "v")
    assert cache.lookup(a, "v").answer == "a"
    cache.put(c, "c", "v")
    assert len(cache) == 2 and cache.evictions == 1
    assert cache.lookup(b, "v") is None
    assert cache.lookup(a, "v").answer == "a" and cache.lookup(c, "v").answer == "c"


def test_cache_decides_as_semantic_lookup():
    """Random entries of two versions: every lookup picks what semantic_lookup picks."""
    rng = np.random.default_rng(5)
    cache = SemanticCache(dim=8, threshold=0.6, max_entries=64)
    vectors = rng.normal(size=(40, 8))
    versions = ["v1" if i % 3 else "v2" for i in range(40)]
    for i, (vector, version) in enumerate(zip(vectors, versions, strict=True)):
        cache.put(vector, i, version)
    assert cache.invalidate("v1") == versions.count("v2")
    cache.put(vectors[0], "late", "v3")  # a new version after an invalidation gets its own code
    kept = [i for i, v in enumerate(versions) if v == "v1"]
    for query in rng.normal(size=(100, 8)):
        found = semantic_lookup(query, vectors[kept], 0.6)
        hit = cache.lookup(query, "v1")
        assert (hit.answer if hit else None) == (None if found is None else kept[found])
    assert cache.lookup(vectors[0], "v3").answer == "late"


def test_cache_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        SemanticCache(dim=0, threshold=0.9)
    with pytest.raises(ValueError, match="max_entries"):
        SemanticCache(dim=2, threshold=0.9, max_entries=0)
    cache = SemanticCache(dim=2, threshold=0.9)
    with pytest.raises(ValueError, match="shape"):
        cache.put(np.ones(3), "x", "v")
    with pytest.raises(ValueError, match="zeros"):
        cache.lookup(np.zeros(2), "v")


# -- choose_threshold --------------------------------------------------------------------------
PAIRS = [(0.99, True), (0.97, True), (0.95, False), (0.93, True), (0.90, False), (0.85, True)]


def test_threshold_is_the_lowest_within_budget():
    """Budget 0: only 0.97 and above are clean. Budget 25 %: 0.93 (1 wrong of 4), not 0.90."""
    strict = choose_threshold(PAIRS, max_wrong_hit_rate=0.0)
    assert (strict.threshold, strict.hit_rate, strict.wrong_hit_rate) == (0.97, 2 / 6, 0.0)
    loose = choose_threshold(PAIRS, max_wrong_hit_rate=0.25)
    assert loose.threshold == 0.93
    assert (loose.hit_rate, loose.wrong_hit_rate) == pytest.approx((4 / 6, 1 / 4))
    everything = choose_threshold(PAIRS, max_wrong_hit_rate=0.5)
    assert (everything.threshold, everything.hit_rate) == (0.85, 1.0)


def test_threshold_ties_and_no_feasible_threshold():
    """A threshold hits every pair at its value; when none is clean nothing is served."""
    tied = choose_threshold([(0.9, True), (0.9, False), (0.8, True)], max_wrong_hit_rate=0.0)
    assert tied.threshold > 0.9 and tied.hit_rate == 0.0
    order_free = choose_threshold([(0.8, True), (0.9, False), (0.9, True)], 0.5)
    assert (order_free.threshold, order_free.wrong_hit_rate) == (0.8, pytest.approx(1 / 3))
    with pytest.raises(ValueError, match="empty"):
        choose_threshold([])
    with pytest.raises(ValueError, match="max_wrong_hit_rate"):
        choose_threshold(PAIRS, 1.0)


def test_chosen_threshold_holds_in_the_cache():
    """Applying the chosen threshold in a SemanticCache gives the hit rate it promised."""
    rng = np.random.default_rng(11)
    cached = np.array([1.0, 0.0])
    sims = rng.uniform(0.7, 1.0, size=200)
    right = sims > 0.9  # in this made-up set, only close paraphrases share an answer
    choice = choose_threshold(list(zip(sims.tolist(), right.tolist(), strict=True)), 0.0)
    assert choice.threshold == pytest.approx(sims[right].min())
    cache = SemanticCache(dim=2, threshold=choice.threshold)
    cache.put(cached, "answer", "v")
    for s in sims:
        cache.lookup(np.array([s, math.sqrt(1 - s * s)]), "v")
    assert cache.hits / 200 == pytest.approx(choice.hit_rate, abs=0.01)
