"""A semantic cache: serve a cached answer when a new question is close enough to an old one.

Questions are compared by the cosine similarity of their embeddings. A hit skips retrieval and
generation entirely, so it is the cheapest answer the service can give; a wrong hit (a question
that looks like a cached one but needs another answer: "how do I sort a list" against "how do
I sort a dict") is also the worst, because it is served with full confidence. The threshold
trades the two, and it is set by measurement: `choose_threshold` takes labelled pairs (the
similarity of a new question to its nearest cached one, and whether the cached answer is right
for it) and returns the lowest threshold whose wrong-hit rate stays within a budget.

Entries carry the index version they were answered from; `invalidate` drops those of other
versions, since an answer grounded in an old index may cite passages that no longer exist.
Memory is bounded by `max_entries` with least-recently-used eviction.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _finite_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    return float(threshold)


def semantic_lookup(
    query_vector: np.ndarray, cached_vectors: np.ndarray, threshold: float
) -> int | None:
    """Index of the cached vector most similar to the query, if its cosine >= threshold.

    Cosine similarity is the dot product of the L2-normalised vectors, so neither side needs
    to be normalised already. The best match wins; equal best similarities go to the lowest
    index (the entry cached first); no match at or above `threshold`, or an empty cache, gives
    None. A threshold above 1 never hits. Raises ValueError for a query that is not 1-d, cached
    vectors that are not (n, dim) with the query's dim, zero vectors (their cosine is
    undefined) or values that are not finite.
    """
    query = np.asarray(query_vector, dtype=np.float64)
    cached = np.asarray(cached_vectors, dtype=np.float64)
    if query.ndim != 1 or query.size == 0:
        raise ValueError(f"query_vector must be a non-empty 1-d vector, got shape {query.shape}")
    if cached.ndim != 2 or (cached.shape[0] > 0 and cached.shape[1] != query.size):
        raise ValueError(
            f"cached_vectors must have shape (n, {query.size}), got shape {cached.shape}"
        )
    if not (np.isfinite(query).all() and np.isfinite(cached).all()):
        raise ValueError("query_vector and cached_vectors must be finite")
    if not np.any(query):
        raise ValueError("query_vector is all zeros: its cosine similarity is undefined")
    if cached.shape[0] and not np.all(np.any(cached, axis=1)):
        raise ValueError("cached_vectors contains an all-zero row: its cosine is undefined")
    threshold = _finite_threshold(threshold)
    # BEGIN SOLUTION 3.9: best cosine (lowest index on ties) if >= threshold, else None
    if cached.shape[0] == 0:
        return None
    unit_query = query / np.linalg.norm(query)
    unit_cached = cached / np.linalg.norm(cached, axis=1, keepdims=True)
    similarities = unit_cached @ unit_query
    best = int(np.argmax(similarities))  # argmax returns the first of equal maxima
    return best if similarities[best] >= threshold else None
    # END SOLUTION


@dataclass(frozen=True)
class SemanticHit:
    """A served entry: its answer, its similarity to the query and its key."""

    answer: Any
    similarity: float
    key: Hashable | None


class SemanticCache:
    """Cached answers keyed by question embeddings, bounded, version-aware, LRU-evicted.

    Vectors live in one preallocated float64 array (1,000 MiniLM entries take 3 MB), so a
    lookup is one matrix-vector product. Not thread-safe: guard it with a lock when shared.
    """

    def __init__(self, dim: int, threshold: float, max_entries: int = 1000) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a positive int, got {max_entries!r}")
        self.dim = dim
        self.threshold = _finite_threshold(threshold)
        self.max_entries = max_entries
        self._vectors = np.zeros((max_entries, dim), dtype=np.float64)
        self._answers: list[Any] = []
        self._keys: list[Hashable | None] = []
        self._versions: list[str] = []
        self._codes = np.zeros(max_entries, dtype=np.int64)  # version of each slot, as a code
        self._version_codes: dict[str, int] = {}
        self._next_code = 0  # codes are never reused, so a dropped version cannot alias
        self._last_used: list[int] = []
        self._clock = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._answers)

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _check_vector(self, vector: np.ndarray) -> np.ndarray:
        array = np.asarray(vector, dtype=np.float64)
        if array.shape != (self.dim,):
            raise ValueError(f"vector must have shape ({self.dim},), got {array.shape}")
        if not np.isfinite(array).all() or not np.any(array):
            raise ValueError("vector must be finite and not all zeros")
        return array

    def lookup(self, vector: np.ndarray, index_version: str) -> SemanticHit | None:
        """The best cached answer for `vector` among entries of `index_version`, or None.

        The decision is `semantic_lookup`'s (best cosine, lowest slot on ties, >= threshold),
        computed here on the stored unit vectors in place: one matrix-vector product, no copy
        and no renormalising of the whole cache per request.
        """
        query = self._check_vector(vector)
        count = len(self)
        code = self._version_codes.get(index_version)
        if count == 0 or code is None:
            self.misses += 1
            return None
        similarities = self._vectors[:count] @ (query / np.linalg.norm(query))
        similarities[self._codes[:count] != code] = -np.inf
        slot = int(np.argmax(similarities))
        if not similarities[slot] >= self.threshold:
            self.misses += 1
            return None
        self._last_used[slot] = self._tick()
        self.hits += 1
        return SemanticHit(self._answers[slot], float(similarities[slot]), self._keys[slot])

    def put(
        self, vector: np.ndarray, answer: Any, index_version: str, key: Hashable | None = None
    ) -> None:
        """Cache `answer` for the question embedded as `vector`; evicts the least recently used
        entry when full. The vector is stored normalised."""
        array = self._check_vector(vector)
        unit = array / np.linalg.norm(array)
        if len(self) < self.max_entries:
            slot = len(self)
            self._answers.append(answer)
            self._keys.append(key)
            self._versions.append(index_version)
            self._last_used.append(self._tick())
        else:
            slot = int(np.argmin(self._last_used))
            self.evictions += 1
            self._answers[slot] = answer
            self._keys[slot] = key
            self._versions[slot] = index_version
            self._last_used[slot] = self._tick()
        self._vectors[slot] = unit
        if index_version not in self._version_codes:
            self._version_codes[index_version] = self._next_code
            self._next_code += 1
        self._codes[slot] = self._version_codes[index_version]

    def invalidate(self, index_version: str) -> int:
        """Drop every entry not answered from `index_version`; returns how many were dropped."""
        keep = [i for i, v in enumerate(self._versions) if v == index_version]
        dropped = len(self) - len(keep)
        self._vectors[: len(keep)] = self._vectors[keep]
        self._codes[: len(keep)] = self._codes[keep]
        self._version_codes = {index_version: self._version_codes[index_version]} if keep else {}
        self._answers = [self._answers[i] for i in keep]
        self._keys = [self._keys[i] for i in keep]
        self._versions = [self._versions[i] for i in keep]
        self._last_used = [self._last_used[i] for i in keep]
        return dropped

    def clear(self) -> None:
        self.invalidate("\x00no version")  # an impossible version: drops everything


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and what it gives on the labelled pairs it was chosen on."""

    threshold: float
    hit_rate: float
    wrong_hit_rate: float
    pairs: int


def choose_threshold(
    pairs: Sequence[tuple[float, bool]], max_wrong_hit_rate: float = 0.01
) -> ThresholdChoice:
    """The lowest similarity threshold whose wrong-hit rate is <= `max_wrong_hit_rate`.

    Each pair is (similarity of a new question to its nearest cached question, whether the
    cached answer is right for the new question). At threshold t the cache hits every pair with
    similarity >= t: hit rate = hits / pairs, wrong-hit rate = wrong hits / hits. The lowest
    qualifying threshold serves the most traffic within the error budget. Only observed
    similarities are candidates; when even the highest one breaks the budget, the threshold is
    set just above it (the cache never hits) with hit rate 0. Choose on a dev set, report on a
    held-out one: the wrong-hit rate on the pairs it was chosen on is optimistic.
    """
    if isinstance(max_wrong_hit_rate, bool) or not 0 <= max_wrong_hit_rate < 1:
        raise ValueError(f"max_wrong_hit_rate must be in [0, 1), got {max_wrong_hit_rate!r}")
    if len(pairs) == 0:
        raise ValueError("pairs is empty: a threshold needs labelled (similarity, same) pairs")
    try:
        similarity = np.array([float(s) for s, _ in pairs], dtype=np.float64)
        right = np.array([bool(ok) for _, ok in pairs])
    except (TypeError, ValueError):
        raise ValueError("pairs must be (similarity, same_answer) pairs") from None
    if not np.isfinite(similarity).all():
        raise ValueError("similarities must be finite")
    order = np.argsort(-similarity, kind="stable")
    similarity, wrong = similarity[order], ~right[order]
    hits = np.arange(1, similarity.size + 1)
    wrong_hits = np.cumsum(wrong)
    # a threshold equal to a similarity hits every pair with that similarity: use the last
    # position of each run of equal values
    last_of_value = np.append(similarity[1:] != similarity[:-1], True)
    rates = wrong_hits / hits
    ok = last_of_value & (rates <= max_wrong_hit_rate + 1e-12)
    if not ok.any():
        return ThresholdChoice(math.nextafter(float(similarity[0]), math.inf), 0.0, 0.0, len(pairs))
    position = int(np.flatnonzero(ok)[-1])  # the lowest qualifying threshold
    return ThresholdChoice(
        threshold=float(similarity[position]),
        hit_rate=float(hits[position] / similarity.size),
        wrong_hit_rate=float(rates[position]),
        pairs=len(pairs),
    )
