"""ANN measurement: recall@k against exact search, latency, and HNSW/IVF-PQ on clustered data."""

from __future__ import annotations

import numpy as np
import pytest

from rag_service.index.ann import measure_ann, recall_at_k_vs_exact
from rag_service.index.bench import (
    CURVE_PAST_TARGET,
    EF_LADDER,
    _ivfpq_defaults,
    clustered_vectors,
    measure_indexes,
)
from rag_service.index.faiss_index import FaissIndex


def test_recall_counts_overlap_of_the_top_k_sets():
    approx = [["a", "b", "c", "x"], ["d", "e", "f"]]
    exact = [["c", "b", "z", "a"], ["q", "r", "d"]]
    # Query 1: {a,b,c} & {c,b,z} = 2 of 3; query 2: {d,e,f} & {q,r,d} = 1 of 3.
    assert recall_at_k_vs_exact(approx, exact, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k_vs_exact(exact, exact, 3) == 1.0
    assert recall_at_k_vs_exact([["a", "a", "b"]], [["a", "b", "c"]], 3) == pytest.approx(2 / 3)


def test_recall_divides_by_the_exact_count_when_fewer_than_k():
    assert recall_at_k_vs_exact([["a", "b", "x"]], [["a", "b"]], 10) == 1.0
    assert recall_at_k_vs_exact([["x", "a"]], [["a", "b"]], 10) == 0.5


def test_recall_rejects_inputs_it_cannot_score():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        recall_at_k_vs_exact([["a"]], [["a"]], 0)
    with pytest.raises(ValueError, match="2 approximate result lists for 1 exact"):
        recall_at_k_vs_exact([["a"], ["b"]], [["a"]], 1)
    with pytest.raises(ValueError, match="no queries"):
        recall_at_k_vs_exact([], [], 1)
    with pytest.raises(ValueError, match="query 1 has no exact results"):
        recall_at_k_vs_exact([["a"], []], [["a"], []], 1)


@pytest.fixture(scope="module")
def clustered():
    """A few thousand 384-d vectors in 30 clusters, and queries from the same clusters."""
    vectors = clustered_vectors(3000, 384, clusters=30, seed=0)
    queries = clustered_vectors(100, 384, clusters=30, seed=1)
    ids = [f"v{i}" for i in range(len(vectors))]
    exact = FaissIndex.exact(384)
    exact.add(ids, vectors)
    return ids, vectors, queries, exact


@pytest.mark.slow
def test_measure_ann_of_exact_against_itself(clustered):
    _, _, queries, exact = clustered
    result = measure_ann(exact, exact, queries, k=10)
    assert result["recall"] == 1.0
    assert result["queries"] == len(queries) and result["k"] == 10
    assert result["p99_ms"] >= result["p50_ms"] > 0
    assert result["qps"] > 0


@pytest.mark.slow
def test_faiss_hnsw_recall_at_10_on_clustered_vectors(clustered):
    """HNSW vs exact: recall@10 >= 0.95 at the default efSearch, and it rises with efSearch."""
    ids, vectors, queries, exact = clustered
    hnsw = FaissIndex.hnsw(384)  # m=32, ef_construction=200, ef_search=128
    hnsw.add(ids, vectors)
    chosen = measure_ann(hnsw, exact, queries, k=10)
    assert chosen["recall"] >= 0.95
    hnsw.ef_search = 10
    assert measure_ann(hnsw, exact, queries, k=10)["recall"] <= chosen["recall"]


def test_ivfpq_recall_grows_with_nprobe():
    """More lists probed, more true neighbours found; PQ's coding loss caps it below 1."""
    vectors = clustered_vectors(3000, 64, clusters=30, seed=0)
    queries = clustered_vectors(100, 64, clusters=30, seed=1)
    ids = [f"v{i}" for i in range(len(vectors))]
    exact = FaissIndex.exact(64)
    exact.add(ids, vectors)
    index = FaissIndex.ivfpq(64, nlist=32, m=16, nbits=6, nprobe=1)
    index.add(ids, vectors)
    truth = [[i for i, _ in row] for row in exact.search(queries, 10)]
    recalls = []
    for nprobe in (1, 4, 32):
        index.nprobe = nprobe
        recalls.append(measure_ann(index, exact, queries, 10, exact_ids=truth)["recall"])
    assert recalls[0] < recalls[-1]
    assert recalls == sorted(recalls)
    assert recalls[-1] < 1.0  # all lists scanned: what is missing is PQ's coding loss


@pytest.mark.slow
def test_measure_indexes_tunes_faiss_to_the_target(clustered):
    _, vectors, queries, _ = clustered
    report = measure_indexes(
        vectors[:2000],
        queries,
        10,
        indexes=["faiss-exact", "faiss-hnsw"],
        faiss_hnsw={"m": 16, "ef_construction": 64},
    )
    hnsw = report["indexes"]["faiss-hnsw"]
    assert report["n"] == 2000 and report["queries"] == {"tune": 50, "report": 50}
    assert hnsw["reached_target"]
    # The chosen efSearch is the first that reaches 0.95 on the tuning half; the curve goes
    # CURVE_PAST_TARGET steps further (or to the ladder's end) for the recall-latency plot.
    curve = hnsw["tuning"]
    first = next(i for i, point in enumerate(curve) if point["recall"] >= 0.95)
    assert curve[first]["ef_search"] == hnsw["ef_search"]
    past = EF_LADDER.index(hnsw["ef_search"]) + 1 + CURVE_PAST_TARGET
    assert len(curve) == min(past, len(EF_LADDER))
    assert hnsw["bytes_per_vector"] > 384 * 4  # raw float32 plus the graph's links


def test_measure_indexes_refuses_vectors_that_are_not_normalised():
    vectors = np.ones((100, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="L2-normalised"):
        measure_indexes(vectors, vectors[:10], indexes=["faiss-exact"])


def test_ivfpq_defaults_keep_39_training_points_per_list():
    assert _ivfpq_defaults(100_000, 384) == {"nlist": 1024, "m": 48, "nbits": 8, "nprobe": 1}
    assert _ivfpq_defaults(2000, 32)["nlist"] * 39 <= 2000
