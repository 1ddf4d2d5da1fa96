"""How good and how fast an approximate index is, measured against exact search.

An ANN index trades recall for speed, so it is only described by both numbers at once: recall@k
against the exact top-k on the same vectors (not against relevance judgements - that is the
evaluation harness's job) and the latency a single caller sees (p50/p99 of one-query searches,
and the queries per second that follow from them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag_service.index.base import VectorIndex, as_matrix, check_k


def recall_at_k_vs_exact(
    approx: Sequence[Sequence[str]], exact: Sequence[Sequence[str]], k: int
) -> float:
    """Mean over queries of |approx top-k ∩ exact top-k| / k.

    Ids are compared as sets (a repeated id counts once, order inside the top k does not
    matter). When exact search found fewer than k ids (a small index), the denominator is their
    count, so a perfect approximate index still scores 1.0.
    """
    k = check_k(k)
    if len(approx) != len(exact):
        raise ValueError(f"{len(approx)} approximate result lists for {len(exact)} exact ones")
    if not exact:
        raise ValueError("no queries: recall is undefined")
    for position, truth in enumerate(exact):
        if len(truth) == 0:
            raise ValueError(f"query {position} has no exact results: recall is undefined")
    # BEGIN SOLUTION 3.6: recall of approximate top-k against exact top-k
    total = 0.0
    for found, truth in zip(approx, exact, strict=True):
        truth_top = set(list(truth)[:k])
        found_top = set(list(found)[:k])
        total += len(found_top & truth_top) / len(truth_top)
    return total / len(exact)
    # END SOLUTION


def measure_ann(
    index: VectorIndex,
    exact_index: VectorIndex,
    queries: np.ndarray,
    k: int = 10,
    *,
    exact_ids: Sequence[Sequence[str]] | None = None,
    warmup: int = 10,
) -> dict[str, Any]:
    """Recall@k vs `exact_index`, and single-query latency of `index` (ms) with its qps.

    Queries run one at a time, as a service sees them; the first `warmup` are run once untimed
    (caches, lazy connections). Pass `exact_ids` to reuse the exact top-k across many
    measurements of the same queries (parameter sweeps).
    """
    k = check_k(k)
    q = as_matrix(queries, index.dim, "queries")
    if q.shape[0] == 0:
        raise ValueError("no queries to measure")
    if exact_ids is None:
        exact_ids = [[item for item, _ in row] for row in exact_index.search(q, k)]
    elif len(exact_ids) != q.shape[0]:
        raise ValueError(f"{len(exact_ids)} exact result lists for {q.shape[0]} queries")
    for row in q[: max(0, warmup)]:
        index.search(row[None, :], k)
    latencies = np.empty(q.shape[0], dtype=np.float64)
    approx_ids: list[list[str]] = []
    for position, row in enumerate(q):
        started = time.perf_counter()
        result = index.search(row[None, :], k)
        latencies[position] = time.perf_counter() - started
        approx_ids.append([item for item, _ in result[0]])
    return {
        "recall": recall_at_k_vs_exact(approx_ids, exact_ids, k),
        "qps": float(q.shape[0] / latencies.sum()),
        "p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3),
        "queries": int(q.shape[0]),
        "k": k,
    }
