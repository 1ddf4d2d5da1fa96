"""rag_service benchmark: retrieval quality, embedding throughput and ANN indexes, as JSON.

Each measurement stands beside its peer in the same run:
- quality on every local judged set (the documentation questions, Lee's news): BM25, dense
  (MiniLM fp32), hybrid by RRF and by tuned score fusion, with the hybrid's paired
  randomisation p-value against the better single method; chunking strategies compared on the
  documentation set; nDCG@10 per embedding precision (the int8 loss must stay <= 1 point);
- embedding throughput per precision on this machine's cores, beside sentence-transformers'
  `encode` on the same texts;
- approximate indexes on >= 100k real MiniLM vectors: FAISS exact / HNSW / IVF-PQ and pgvector
  HNSW / IVFFlat, recall@10 against exact search, queries/s, p99, build time, bytes per vector;
- generation on grounded documentation prompts: SmolLM2's Q4_1 GGUF in llama.cpp beside the
  same weights dequantised to fp32 in transformers (tokens/s, time to first token, peak memory,
  answer agreement).

Usage: python benchmarks/bench.py --out bench-results/rag_service.json [--quick] [--only A,B]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag_service import offline

offline.apply()

SECTIONS = ("quality", "chunking", "precision", "throughput", "ann", "generation")


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


_CACHE: dict[str, Path] = {}


def _encoder(precision: str) -> Any:
    """An encoder behind the run's embedding cache: the sections embed the same chunks with
    the same precision several times, and only the first costs time (the timed throughput
    section uses bare encoders)."""
    from rag_service.embeddings.cache import CachedEncoder, EmbeddingCache
    from rag_service.embeddings.encoder import make_encoder

    return CachedEncoder(make_encoder(precision), EmbeddingCache(_CACHE["folder"]))


def quality(quick: bool) -> dict[str, Any]:
    from rag_service.experiments import evaluate_methods, local_set, summary_table

    encoder = _encoder("fp32")
    out = {}
    for name in ("pydoc", "lee"):
        _say(f"quality: {name}, every method")
        report = evaluate_methods(local_set(name), encoder, log=_say)
        _say(summary_table(report))
        out[name] = {
            "metrics": {m: r["metrics"] for m, r in report["results"].items()},
            **{k: v for k, v in report.items() if k != "results"},
        }
    return out


def chunking(quick: bool) -> dict[str, Any]:
    from rag_service.corpus.chunking import chunk_stats
    from rag_service.experiments import evaluate_methods, local_set
    from rag_service.retrieval import chunk_dataset

    encoder = _encoder("onnx-int8" if quick else "fp32")
    judged = local_set("pydoc")
    out = {}
    for strategy in ("structure", "fixed", "sentence"):
        _say(f"chunking: {strategy}")
        report = evaluate_methods(judged, encoder, chunking=strategy, methods=("bm25", "dense"))
        out[strategy] = {
            "chunks": chunk_stats(chunk_dataset(judged.dataset, strategy)),
            "metrics": {m: r["metrics"] for m, r in report["results"].items()},
        }
    return out


def precision(quick: bool) -> dict[str, Any]:
    from rag_service.embeddings.encoder import PRECISIONS
    from rag_service.experiments import evaluate_methods, local_set

    out: dict[str, Any] = {}
    for name in ("pydoc", "lee"):
        judged = local_set(name)
        out[name] = {}
        for p in PRECISIONS:
            _say(f"precision: {name}, {p}")
            report = evaluate_methods(judged, _encoder(p), methods=("dense",))
            out[name][p] = report["results"]["dense"]["metrics"]
        fp32 = out[name]["fp32"]["ndcg@10"]
        out[name]["ndcg10_loss_points"] = {
            p: round(100 * (fp32 - out[name][p]["ndcg@10"]), 2) for p in PRECISIONS
        }
    return out


def throughput(quick: bool) -> dict[str, Any]:
    from rag_service.corpus.chunking import chunk_corpus
    from rag_service.corpus.documents import documentation_corpus
    from rag_service.embeddings.throughput import measure_throughput
    from rag_service.retrieval import TextDocument

    documents = [TextDocument(d.id, d.text) for d in documentation_corpus()]
    texts = [c.text for c in chunk_corpus(documents, "structure")]
    _say(f"throughput: {len(texts)} documentation chunks, every precision and the peer")
    return measure_throughput(texts, seconds=10 if quick else 30)


def ann(work: Path, quick: bool) -> dict[str, Any]:
    import numpy as np

    from rag_service.datasets.passages import ann_passages
    from rag_service.index.bench import measure_indexes

    started = time.perf_counter()
    found = ann_passages(minimum=10_000 if quick else 100_000)
    passages = found.passages[:10_000] if quick else found.passages
    queries = found.queries[:200] if quick else found.queries
    _say(f"ann: embedding {len(passages)} passages and {len(queries)} queries (onnx-int8)")
    encoder = _encoder("onnx-int8")
    vectors = np.asarray(encoder.encode(passages), dtype=np.float32)
    query_vectors = np.asarray(encoder.encode(queries), dtype=np.float32)
    embed_s = time.perf_counter() - started
    result = measure_indexes(vectors, query_vectors, k=10, pg_folder=work / "pg", log=_say)
    return {
        "vectors": len(passages),
        "queries": len(queries),
        "dim": int(vectors.shape[1]),
        "sources": found.sources,
        "encoder": "onnx-int8 (all-MiniLM-L6-v2)",
        "embed_s": round(embed_s, 1),
        **result,
    }


def generation(quick: bool) -> dict[str, Any]:
    from rag_service.generation.bench import grounded_prompts, measure_generators
    from rag_service.generation.hf import TransformersGenerator
    from rag_service.generation.llamacpp import LlamaCppGenerator

    prompts = grounded_prompts(count=3 if quick else 8)
    _say(f"generation: {len(prompts)} grounded prompts, 64 new tokens each, greedy")
    # llama.cpp first: the peak-memory figure is the process's high-water mark so far.
    return measure_generators(
        [("llama.cpp Q4_1", LlamaCppGenerator), ("transformers fp32", TransformersGenerator)],
        prompts,
        max_tokens=16 if quick else 64,
        baseline="transformers fp32",
        log=_say,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/rag_service.json"))
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}"
    )
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": os.getloadavg(),
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "sections": only,
    }
    failed: list[str] = []

    def run(name: str, section: Callable[[], dict]) -> None:
        """A failed section is recorded and the others still run."""
        if name not in only:
            return
        started = time.perf_counter()
        try:
            report[name] = section()
        except Exception as error:  # recorded, printed, and reflected in the exit code
            traceback.print_exc()
            report[name] = {"error": f"{type(error).__name__}: {error}"}
            failed.append(name)
        report[name]["section_s"] = round(time.perf_counter() - started, 1)

    with tempfile.TemporaryDirectory(prefix="rag-bench-") as scratch:
        work = Path(scratch)
        # RAG_BENCH_CACHE keeps embeddings between runs (a folder you own); default: this run's.
        _CACHE["folder"] = Path(os.environ.get("RAG_BENCH_CACHE", work / "embeddings"))
        run("quality", lambda: quality(args.quick))
        run("chunking", lambda: chunking(args.quick))
        run("precision", lambda: precision(args.quick))
        run("throughput", lambda: throughput(args.quick))
        run("ann", lambda: ann(work, args.quick))
        run("generation", lambda: generation(args.quick))
    report["failed"] = failed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))
    if failed:
        _say(f"failed: {', '.join(failed)} (see 'error' in {args.out})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
