"""The ANN benchmark: every index on the same vectors, tuned to the same recall, measured alike.

For each index - FAISS exact, FAISS HNSW, FAISS IVF-PQ, pgvector HNSW, pgvector IVFFlat - it
records build time, bytes per vector (FAISS: serialised index / n; pgvector: pg_relation_size
of table + ANN index / n), recall@k against FAISS exact, and single-query p50/p99 latency with
the qps that follows. The search dial (efSearch, nprobe, hnsw.ef_search, ivfflat.probes) is
raised step by step on a TUNING half of the queries until recall reaches the target, and the
numbers are then reported on the other half, so the reported recall is not fitted to the
queries it is measured on.

Run it from the command line for a synthetic trial:
    python -m rag_service.index.bench --n 100000 --queries 1000 --out ann.json
The real benchmark passes >= 100k MiniLM embeddings (384-d, L2-normalised).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_service.index.ann import measure_ann
from rag_service.index.base import VectorIndex, as_matrix, check_k
from rag_service.index.faiss_index import FaissIndex

INDEXES = ("faiss-exact", "faiss-hnsw", "faiss-ivfpq", "pgvector-hnsw", "pgvector-ivfflat")
EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1000)
PROBE_LADDER = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CURVE_PAST_TARGET = 2
PG_SETTINGS = {"shared_buffers": "1GB"}
"""So the table and HNSW graph of 100k x 384 (~0.4 GB) are served from PostgreSQL's own cache,
as they would be on a sized server, not re-copied from the OS page cache on every visit."""


def clustered_vectors(
    n: int,
    dim: int = 384,
    *,
    clusters: int = 100,
    spread: float = 0.8,
    seed: int = 0,
    centres_seed: int = 0,
) -> np.ndarray:
    """L2-normalised float32 vectors around `clusters` random centres (for trials and tests).

    Each vector is a unit centre plus Gaussian noise of norm ~`spread`, normalised. Calls with
    the same `centres_seed` share centres, so queries (another `seed`) come from the same
    distribution as the corpus, as real queries do.
    """
    centres = np.random.default_rng(centres_seed).standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng([seed, 1])
    points = centres[rng.integers(clusters, size=n)]
    points = points + spread * rng.standard_normal((n, dim)) / math.sqrt(dim)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)


def measure_indexes(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int = 10,
    *,
    target_recall: float = 0.95,
    indexes: Sequence[str] = INDEXES,
    faiss_hnsw: dict[str, int] | None = None,
    faiss_ivfpq: dict[str, int] | None = None,
    pg_hnsw: dict[str, int] | None = None,
    pg_ivfflat_lists: int = 0,
    dsn: str | None = None,
    pg_folder: Path | str | None = None,
    tune_fraction: float = 0.5,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build, tune and measure each index in `indexes` on the same `vectors`.

    `vectors` (n, dim) and `queries` (q, dim) must be L2-normalised (cosine = inner product, so
    pgvector's cosine and FAISS's inner product rank identically). pgvector runs on `dsn`, or
    on an embedded PostgreSQL started in `pg_folder` (a temporary folder by default) and stopped
    at the end; its tables are dropped either way. Returns a JSON-ready dict.
    """
    k = check_k(k)
    x = as_matrix(vectors, np.asarray(vectors).shape[-1], "vectors")
    q = as_matrix(queries, x.shape[1], "queries")
    _check_normalised(x, "vectors")
    _check_normalised(q, "queries")
    unknown = set(indexes) - set(INDEXES)
    if unknown:
        raise ValueError(f"unknown indexes {sorted(unknown)}; choose from {INDEXES}")
    n_tune = int(round(q.shape[0] * tune_fraction))
    if not 0 < n_tune < q.shape[0]:
        raise ValueError(f"tune_fraction={tune_fraction} leaves no tuning or no reporting queries")
    tune, report = q[:n_tune], q[n_tune:]
    say = log or (lambda message: None)
    ids = [f"v{i}" for i in range(x.shape[0])]
    started = time.perf_counter()

    say(f"exact FAISS on {x.shape[0]} x {x.shape[1]}")
    exact, build_s = _timed(lambda: _built(FaissIndex.exact(x.shape[1]), ids, x))
    truth = {
        "tune": [[item for item, _ in row] for row in exact.search(tune, k)],
        "report": [[item for item, _ in row] for row in exact.search(report, k)],
    }
    bench = _Bench(exact, truth, tune, report, k, target_recall, say)
    results: dict[str, Any] = {}
    if "faiss-exact" in indexes:
        results["faiss-exact"] = {
            "build_s": build_s,
            **_faiss_size(exact, x.shape[0]),
            **bench.measure(exact),
        }
    if "faiss-hnsw" in indexes:
        params = {"m": 32, "ef_construction": 200, **(faiss_hnsw or {})}
        say(f"FAISS HNSW {params}")
        index, build_s = _timed(lambda: _built(FaissIndex.hnsw(x.shape[1], **params), ids, x))
        tuned = bench.tune_and_measure(index, "ef_search", EF_LADDER)
        results["faiss-hnsw"] = {"build_s": build_s, **_faiss_size(index, x.shape[0]), **tuned}
        del index
    if "faiss-ivfpq" in indexes:
        params = {**_ivfpq_defaults(*x.shape), **(faiss_ivfpq or {})}
        say(f"FAISS IVF-PQ {params}")
        index, build_s = _timed(lambda: _built(FaissIndex.ivfpq(x.shape[1], **params), ids, x))
        ladder = tuple(p for p in PROBE_LADDER if p <= params["nlist"])
        tuned = bench.tune_and_measure(index, "nprobe", ladder)
        results["faiss-ivfpq"] = {"build_s": build_s, **_faiss_size(index, x.shape[0]), **tuned}
        del index
    pg_kinds = [name for name in ("pgvector-hnsw", "pgvector-ivfflat") if name in indexes]
    if pg_kinds:
        results.update(
            _measure_pgvector(
                bench, ids, x, pg_kinds, pg_hnsw or {}, pg_ivfflat_lists, dsn, pg_folder
            )
        )
    return {
        "schema": "rag-ann/1",
        "n": int(x.shape[0]),
        "dim": int(x.shape[1]),
        "k": k,
        "queries": {"tune": int(tune.shape[0]), "report": int(report.shape[0])},
        "target_recall": target_recall,
        "latency": "one query per call, single client; qps = queries / summed latency",
        "indexes": results,
        "total_s": time.perf_counter() - started,
    }


class _Bench:
    """The shared ground truth and the tune-then-report procedure."""

    def __init__(
        self,
        exact: FaissIndex,
        truth: dict[str, list[list[str]]],
        tune: np.ndarray,
        report: np.ndarray,
        k: int,
        target: float,
        say: Callable[[str], None],
    ) -> None:
        self.exact, self.truth, self.tune, self.report = exact, truth, tune, report
        self.k, self.target, self.say = k, target, say

    def measure(self, index: VectorIndex) -> dict[str, Any]:
        return measure_ann(index, self.exact, self.report, self.k, exact_ids=self.truth["report"])

    def tune_and_measure(
        self, index: VectorIndex, knob: str, ladder: Sequence[int]
    ) -> dict[str, Any]:
        """Smallest knob value on the ladder whose tuning recall reaches the target (else the
        best one seen), then the report-set measurement at that value.

        The tuning curve goes `CURVE_PAST_TARGET` steps beyond the chosen value, so the
        recall-vs-latency plot shows what more recall would cost."""
        curve = []
        chosen = None
        steps_past = 0
        for value in ladder:
            if chosen is not None:
                if steps_past == CURVE_PAST_TARGET:
                    break
                steps_past += 1
            setattr(index, knob, value)
            point = measure_ann(index, self.exact, self.tune, self.k, exact_ids=self.truth["tune"])
            curve.append({knob: value, **{key: point[key] for key in ("recall", "p50_ms", "qps")}})
            self.say(
                f"  {knob}={value}: recall {point['recall']:.4f}, p50 {point['p50_ms']:.3f} ms"
            )
            if chosen is None and point["recall"] >= self.target:
                chosen = value
        reached = chosen is not None
        if chosen is None:
            chosen = max(curve, key=lambda entry: entry["recall"])[knob]
        setattr(index, knob, chosen)
        return {
            knob: chosen,
            "reached_target": reached,
            **self.measure(index),
            "tuning": curve,
        }


def _measure_pgvector(
    bench: _Bench,
    ids: list[str],
    x: np.ndarray,
    kinds: list[str],
    hnsw_params: dict[str, int],
    ivfflat_lists: int,
    dsn: str | None,
    pg_folder: Path | str | None,
) -> dict[str, Any]:
    """pgvector HNSW and IVFFlat on the same vectors, each in its own table."""
    from rag_service.index.pgvector_index import embedded_postgres

    if dsn is not None:
        return _pgvector_runs(bench, ids, x, kinds, hnsw_params, ivfflat_lists, dsn, {})
    if pg_folder is not None:
        Path(pg_folder).mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=pg_folder, prefix="ann-bench-pg-") as folder,
        embedded_postgres(folder, settings=PG_SETTINGS) as postgres,
    ):
        bench.say(f"embedded PostgreSQL in {folder} with {PG_SETTINGS}")
        return _pgvector_runs(
            bench, ids, x, kinds, hnsw_params, ivfflat_lists, postgres.dsn, PG_SETTINGS
        )


def _pgvector_runs(
    bench: _Bench,
    ids: list[str],
    x: np.ndarray,
    kinds: list[str],
    hnsw_params: dict[str, int],
    ivfflat_lists: int,
    dsn: str,
    settings: dict[str, str],
) -> dict[str, Any]:
    from rag_service.index.pgvector_index import PgVectorIndex

    results: dict[str, Any] = {}
    for name in kinds:
        kind = name.split("-")[1]
        if kind == "hnsw":
            params = {"m": 16, "ef_construction": 64, **hnsw_params}
            knob, ladder = "ef_search", EF_LADDER
        else:
            params = {"lists": ivfflat_lists}
            knob, ladder = "probes", PROBE_LADDER
        table = f"ann_bench_{kind}"
        PgVectorIndex(dsn, table, x.shape[1], kind, **params).drop()  # a leftover of a crash
        index = PgVectorIndex(dsn, table, x.shape[1], kind, **params)
        try:
            bench.say(f"pgvector {kind} {params} {index.build_settings}")
            _, build_s = _timed(lambda index=index: index.add(ids, x))
            sizes = index.size_bytes()
            if kind == "ivfflat":
                ladder = tuple(p for p in ladder if p <= index.params["lists"])
            tuned = bench.tune_and_measure(index, knob, ladder)
            results[name] = {
                "build_s": build_s,
                "copy_s": index.timings.get("copy_s"),
                "index_build_s": index.timings.get("index_build_s"),
                "bytes": sizes["table"] + sizes["index"],
                "bytes_per_vector": (sizes["table"] + sizes["index"]) / x.shape[0],
                "table_bytes": sizes["table"],
                "index_bytes": sizes["index"],
                "params": index.params,
                "build_settings": {**index.build_settings, **settings},
                **tuned,
            }
        finally:
            index.drop()
            index.close()
    return results


def _built(index: FaissIndex, ids: list[str], x: np.ndarray) -> FaissIndex:
    index.add(ids, x)
    return index


def _timed(build: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = build()
    return value, time.perf_counter() - started


def _faiss_size(index: FaissIndex, n: int) -> dict[str, Any]:
    nbytes = index.nbytes()
    return {"bytes": nbytes, "bytes_per_vector": nbytes / n, "params": index.params}


def _ivfpq_defaults(n: int, dim: int) -> dict[str, int]:
    """nlist ~ 4 sqrt(n) rounded to a power of two, but >= 39 training points per list; PQ codes
    of dim/8 bytes (8 dimensions per sub-quantiser) when that divides dim."""
    nlist = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n))))
    while nlist > 1 and n < 39 * nlist:
        nlist //= 2
    m = dim // 8 if dim % 8 == 0 else 1
    return {"nlist": nlist, "m": m, "nbits": 8, "nprobe": 1}


def _check_normalised(x: np.ndarray, what: str, tolerance: float = 1e-3) -> None:
    norms = np.linalg.norm(x, axis=1)
    worst = float(np.max(np.abs(norms - 1.0))) if norms.size else 0.0
    if worst > tolerance:
        raise ValueError(
            f"{what} must be L2-normalised (cosine = inner product); the worst norm is off by "
            f"{worst:.3g}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """A synthetic trial: clustered vectors, every index, JSON to --out (or stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--indexes", nargs="+", default=list(INDEXES), choices=INDEXES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    vectors = clustered_vectors(args.n, args.dim, seed=0)
    queries = clustered_vectors(args.queries, args.dim, seed=1)
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    result = measure_indexes(vectors, queries, args.k, indexes=args.indexes, log=say)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
