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
  answer agreement);
- relevance: the "I don't know" threshold (pydoc and off-topic questions, dev -> test) and the
  semantic-cache threshold (labelled question pairs, dev -> test);
- service: the whole service (rag-serve in its own process, the llama.cpp server as its child)
  under closed-loop load at 1, 4 and 16 concurrent users (p50/p95/p99, answers/s, per A/B
  variant), beside the same service answering from its exact cache (p99 of a hit);
- the cost case: cost per 1,000 answers of llama.cpp Q4 against transformers fp32 on the same
  instance, beside their answers' groundedness and relevance (part of `generation`);
- answer_quality: cheap answer metrics and the G-Eval judge against hand-labelled answers.

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

SECTIONS = (
    "quality", "chunking", "precision", "throughput", "ann", "generation", "relevance", "service",
    "answer_quality",
)  # fmt: skip


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

    prompts = grounded_prompts(count=3 if quick else 24)
    _say(f"generation: {len(prompts)} grounded prompts, 64 new tokens each, greedy")
    # llama.cpp first: the peak-memory figure is the process's high-water mark so far.
    result = measure_generators(
        [("llama.cpp Q4_1", LlamaCppGenerator), ("transformers fp32", TransformersGenerator)],
        prompts,
        max_tokens=16 if quick else 64,
        baseline="transformers fp32",
        log=_say,
    )
    result["cost_case"] = cost_case(prompts, result, "llama.cpp Q4_1", "transformers fp32")
    return result


def cost_case(
    prompts: list[Any], measured: dict[str, Any], quantized: str, baseline: str
) -> dict[str, Any]:
    """The portfolio's claim, measured: cost per 1,000 answers of the quantized model against
    fp32 on the same 2-vCPU instance, beside the quality of their answers to the same prompts
    (groundedness in the prompt's sources and relevance to the question, paired test)."""
    from rag_service import costs
    from rag_service.evaluation.answers import answer_relevance, groundedness
    from rag_service.evaluation.significance import paired_randomization_test

    runtimes = measured["runtimes"]
    sources = [m[-1]["content"].split("\n\nQuestion: ")[0] for m in prompts]
    questions = [m[-1]["content"].split("\n\nQuestion: ")[-1] for m in prompts]
    out: dict[str, Any] = {"instance": costs.CPU_2VCPU.name, "utilization": 0.6}
    grounded: dict[str, list[float]] = {}
    for name in (quantized, baseline):
        runtime = runtimes[name]
        answers = runtime["answers"]
        grounded[name] = [groundedness(a, [s]).score for a, s in zip(answers, sources, strict=True)]
        relevance = [answer_relevance(q, a).score for q, a in zip(questions, answers, strict=True)]
        per_request = runtime["completion_tokens"] / runtime["prompts"]
        out[name] = {
            "tokens_per_s_end_to_end": runtime["tokens_per_s"],
            "tokens_per_request": per_request,
            "cost_per_1k_usd": costs.cost_per_1k_requests(
                costs.CPU_2VCPU.hourly_price, runtime["tokens_per_s"], per_request, 0.6
            ),
            "groundedness_mean": sum(grounded[name]) / len(answers),
            "relevance_mean": sum(relevance) / len(answers),
        }
    out["savings"] = costs.savings(
        out[quantized]["cost_per_1k_usd"], out[baseline]["cost_per_1k_usd"]
    )
    out["groundedness_p_value"] = paired_randomization_test(grounded[quantized], grounded[baseline])
    out["seed_claim_savings"] = 0.30
    return out


def relevance(quick: bool) -> dict[str, Any]:
    from rag_service.caching.calibration import calibrate_semantic_cache
    from rag_service.relevance import measure_idk

    encoder = _encoder("fp32")
    _say("relevance: 'I don't know' threshold chosen on pydoc/off-topic dev, scored on test")
    idk = measure_idk(encoder, max_false_idk=0.05, log=_say)
    _say("relevance: semantic-cache threshold chosen on dev question pairs, scored on test")
    cache = calibrate_semantic_cache(encoder, max_wrong_hit_rate=0.01)
    return {
        "encoder": "fp32 (all-MiniLM-L6-v2), exact FAISS over structure chunks",
        "idk": idk.as_dict(),
        "semantic_cache": cache.as_dict(),
    }


def answer_quality(quick: bool) -> dict[str, Any]:
    """Cheap metrics and a G-Eval judge (SmolLM2 Q4_1) against the hand-labelled answers."""
    from rag_service.datasets.answer_labels import load_answer_labels
    from rag_service.evaluation.agreement import cheap_judge, evaluate_judge, geval_judge
    from rag_service.evaluation.geval import GEvalJudge, LlamaCppScoreModel
    from rag_service.generation.llamacpp import LlamaCppGenerator

    labels = load_answer_labels()
    if quick:
        labels = labels[::6]
    _say(f"answer_quality: {len(labels)} labelled answers, G-Eval judge SmolLM2 Q4_1")
    result: dict[str, Any] = {"items": len(labels)}
    cheap = evaluate_judge(labels, cheap_judge(), on_unit_scale=True)
    result["cheap_metrics"] = cheap["criteria"]
    generator = LlamaCppGenerator(context_tokens=2048, logprobs=True)
    try:
        started = time.perf_counter()
        judged = evaluate_judge(labels, geval_judge(GEvalJudge(LlamaCppScoreModel(generator))))
        result["geval_smollm2_q4_1"] = judged["criteria"]
        result["geval_s"] = round(time.perf_counter() - started, 1)
    finally:
        generator.close()  # avoids llama-cpp-python's error at interpreter exit
    return result


def service(work: Path, quick: bool) -> dict[str, Any]:
    """rag-serve as a separate process on loopback, loaded by this process's HTTP clients."""
    import asyncio
    import subprocess

    import httpx

    from rag_service.datasets.pydoc import pydoc_dataset
    from rag_service.service.llm_server import free_loopback_port
    from rag_service.service.loadtest import cache_hit_latency, run_level

    port = free_loopback_port()
    env = {
        **os.environ,
        "RAG_PORT": str(port),
        "RAG_DATA_DIR": str(work / "service"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    log_path = work / "service.log"
    levels = {1: 2, 4: 4, 16: 16} if quick else {1: 8, 4: 16, 16: 32}
    questions = sorted(pydoc_dataset("test").queries.values())
    _say(f"service: starting rag-serve on 127.0.0.1:{port} (log {log_path})")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "rag_service.service"], env=env, stdout=log_file,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"rag-serve did not become ready: {log_path.read_text()[-2000:]}"
                )
            time.sleep(0.5)
        result: dict[str, Any] = {"levels": [], "max_tokens": 64}
        offset = 0
        for users, count in levels.items():
            _say(f"service: {users} concurrent users, {count} questions")
            level = asyncio.run(run_level(url, questions[offset : offset + count], users))
            offset += count
            result["levels"].append(level.as_dict())
            _say(f"service: {level.as_dict()}")
        _say("service: one question answered, then asked again 200 times (exact cache)")
        result["cache_hit"] = asyncio.run(
            cache_hit_latency(url, questions[offset], repeats=50 if quick else 200)
        )
        result["cache_hit_p99_target_ms"] = 5.0
        result["cache_hit_p99_met"] = result["cache_hit"]["p99_ms"] <= 5.0
        result["dashboard"] = httpx.get(f"{url}/v1/dashboard/data", trust_env=False).json()
        metrics = httpx.get(f"{url}/metrics", trust_env=False).text
        result["mean_query_embedding_batch"] = next(
            float(line.split()[-1]) for line in metrics.splitlines()
            if line.startswith("rag_embedding_mean_batch ")
        )  # fmt: skip
        return result
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


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
        run("relevance", lambda: relevance(args.quick))
        run("service", lambda: service(work, args.quick))
        run("answer_quality", lambda: answer_quality(args.quick))
    report["failed"] = failed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))
    if failed:
        _say(f"failed: {', '.join(failed)} (see 'error' in {args.out})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
