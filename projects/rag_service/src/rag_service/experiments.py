"""BM25, dense and hybrid retrieval on one judged set, scored the same way: what `rag-eval` and
the benchmark run.

A set comes with a dev and a test list of queries. Every method retrieves for all of them; the
score-fusion weight is tuned on the dev queries only and every reported number is on the test
queries, so the hybrid's advantage is never fitted to the queries it is judged on. Reciprocal
rank fusion runs with its usual constants (k = 60, equal weights) and needs no tuning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_service.evaluation.dataset import BeirDataset
from rag_service.evaluation.harness import compare, evaluate_run
from rag_service.evaluation.runs import Run
from rag_service.retrieval import DenseRetriever, LexicalRetriever, chunk_dataset

METHODS = ("bm25", "dense", "hybrid-rrf", "hybrid-score")
UNTUNED = ("bm25", "dense", "hybrid-rrf")
"""Methods with nothing fitted to the judgements (RRF's k = 60 is fixed in advance)."""
DEPTH = 100
"""Documents kept per query: enough for recall@100 and for fusion to see both lists deeply."""


@dataclass
class JudgedSet:
    """A dataset with its split: the dev queries tune, the test queries report."""

    dataset: BeirDataset
    dev: list[str]
    test: list[str]
    exclude_self: bool = False
    notes: list[str] = field(default_factory=list)
    full_test: list[str] = field(default_factory=list)
    """The whole test split when part of it was taken to tune (a BEIR folder without a dev
    split). The methods that tune nothing are also scored on all of it, the query set that
    published BEIR numbers use."""


def every_third_as_dev(dataset: BeirDataset) -> tuple[list[str], list[str]]:
    """A deterministic split for sets that ship none: every third judged query is dev."""
    judged = dataset.judged_queries()
    dev = judged[::3]
    return dev, [q for q in judged if q not in set(dev)]


def local_set(name: str) -> JudgedSet:
    """The judged sets that ship with the package: "pydoc" (questions written for this
    project, with their own dev/test split) and "lee" (Lee's human similarity ratings)."""
    if name == "pydoc":
        from rag_service.datasets.pydoc import pydoc_dataset

        dataset = pydoc_dataset()
        dev = sorted(pydoc_dataset("dev").qrels)
        test = sorted(pydoc_dataset("test").qrels)
        judged = set(dataset.judged_queries())
        return JudgedSet(dataset, [q for q in dev if q in judged], [q for q in test if q in judged])
    if name == "lee":
        from rag_service.datasets.lee import lee_dataset

        dataset = lee_dataset()
        dev, test = every_third_as_dev(dataset)
        return JudgedSet(
            dataset, dev, test, exclude_self=True,
            notes=["every query is a corpus document: its own hit is dropped before scoring"],
        )  # fmt: skip
    raise ValueError(f"unknown local set {name!r}; known: pydoc, lee")


def beir_set(folder: Path | str, split: str = "test", dev_split: str | None = "dev") -> JudgedSet:
    """A BEIR folder: the test split reports; its dev split (when the folder has one) tunes the
    fusion weight, otherwise every third test query is held out for tuning and said so."""
    from rag_service.evaluation.beir import load_beir

    test = load_beir(folder, split)
    qrels_dev = Path(folder) / "qrels" / f"{dev_split}.tsv" if dev_split else None
    if qrels_dev is not None and qrels_dev.exists():
        dev = load_beir(folder, dev_split)
        merged = BeirDataset(
            name=test.name,
            corpus=test.corpus,
            queries={**dev.queries, **test.queries},
            qrels={**dev.qrels, **test.qrels},
            problems=test.problems + dev.problems,
        )
        return JudgedSet(merged, dev.judged_queries(), test.judged_queries())
    dev_ids, test_ids = every_third_as_dev(test)
    note = (
        f"no qrels/{dev_split}.tsv: every third {split} query tunes the fusion weight; the "
        f"methods that tune nothing are also scored on all {len(dev_ids) + len(test_ids)} "
        f"{split} queries (comparable with published numbers)"
    )
    return JudgedSet(test, dev_ids, test_ids, notes=[note], full_test=[*dev_ids, *test_ids])


def _without_self(run: Run) -> Run:
    return {q: [(d, s) for d, s in hits if d != q][:DEPTH] for q, hits in run.items()}


def retrieve(
    judged: JudgedSet,
    encoder: Any,
    *,
    chunking: str = "structure",
    index_factory: Callable[[int], Any] | None = None,
    kinds: Sequence[str] = ("bm25", "dense"),
    log: Callable[[str], None] = lambda message: None,
) -> tuple[dict[str, Run], dict[str, Any]]:
    """The BM25 and/or dense runs over the set's chunks for every judged query, and timings."""
    dataset = judged.dataset
    started = time.perf_counter()
    chunks = chunk_dataset(dataset, chunking)
    timings: dict[str, Any] = {"chunks": len(chunks), "chunk_s": time.perf_counter() - started}
    query_ids = [*judged.dev, *judged.test]
    texts = [dataset.queries[q] for q in query_ids]
    depth = DEPTH + 1 if judged.exclude_self else DEPTH
    runs: dict[str, Run] = {}
    if "bm25" in kinds:
        log(f"{dataset.name}: BM25 over {len(chunks)} chunks")
        started = time.perf_counter()
        lexical = LexicalRetriever(chunks)
        runs["bm25"] = dict(zip(query_ids, lexical.search(texts, depth), strict=True))
        timings["bm25_s"] = time.perf_counter() - started
    if "dense" in kinds:
        log(f"{dataset.name}: embedding {len(chunks)} chunks ({encoder.precision})")
        started = time.perf_counter()
        dense = DenseRetriever(chunks, encoder, index_factory)
        timings["embed_index_s"] = time.perf_counter() - started
        started = time.perf_counter()
        runs["dense"] = dict(zip(query_ids, dense.search(texts, depth), strict=True))
        timings["dense_search_s"] = time.perf_counter() - started
        timings["truncated_queries"] = dense.truncated_queries
    if judged.exclude_self:
        runs = {name: _without_self(run) for name, run in runs.items()}
    return runs, timings


def fuse(judged: JudgedSet, runs: dict[str, Run]) -> tuple[dict[str, Run], dict[str, Any]]:
    """Add the two hybrids: RRF (k = 60, equal weights) and score fusion with the dense share
    tuned on the dev queries."""
    from rag_service.fusion import rrf_runs, score_fusion, tune_weight

    pair = [runs["dense"], runs["bm25"]]
    tuned = tune_weight(judged.dev, pair, judged.dataset.qrels, method="score")
    fused = {
        "hybrid-rrf": rrf_runs(pair, k=60, depth=DEPTH),
        "hybrid-score": score_fusion(pair, tuned.weight, k=DEPTH),
    }
    tuning = {
        "method": "score",
        "metric": tuned.metric,
        "dense_weight": tuned.weight,
        "dev_queries": tuned.dev_queries,
        "dev_scores": {str(w): s for w, s in tuned.dev_scores.items()},
    }
    return fused, tuning


def evaluate_methods(
    judged: JudgedSet,
    encoder: Any,
    *,
    chunking: str = "structure",
    methods: Sequence[str] = METHODS,
    index_factory: Callable[[int], Any] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Every method's rag-eval/1 results on the test queries, the tuning record, and each
    hybrid compared with the better single method (paired randomisation test on nDCG@10)."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    hybrids = [m for m in methods if m.startswith("hybrid")]
    kinds = ("bm25", "dense") if hybrids else tuple(methods)
    runs, timings = retrieve(
        judged, encoder, chunking=chunking, index_factory=index_factory, kinds=kinds, log=log
    )
    tuning: dict[str, Any] = {}
    if hybrids:
        fused, tuning = fuse(judged, runs)
        runs.update(fused)
    config = {
        "chunking": chunking,
        "encoder": getattr(encoder, "model_id", None) if "dense" in kinds else None,
        "precision": encoder.precision if "dense" in kinds else None,
        "depth": DEPTH,
        "split": "test",
        "fusion": tuning,
    }
    results = {
        name: evaluate_run(
            runs[name], judged.dataset, {**config, "method": name}, query_ids=judged.test
        )
        for name in methods
    }
    comparisons = {}
    singles = [m for m in ("bm25", "dense") if m in results]
    if len(singles) == 2:
        better = max(singles, key=lambda m: results[m]["metrics"]["ndcg@10"])
        for hybrid in (m for m in methods if m.startswith("hybrid")):
            compared = compare(results[hybrid], results[better], metrics=["ndcg@10"])
            row = compared["metrics"]["ndcg@10"]
            comparisons[hybrid] = {
                "versus": better,
                "difference": row["difference"],
                "p_value": row["p_value"],
                "ci": [row["ci_low"], row["ci_high"]],
                "at_least_as_good": row["difference"] >= 0,
            }
    report = {
        "dataset": judged.dataset.name,
        "dev_queries": len(judged.dev),
        "test_queries": len(judged.test),
        "notes": judged.notes,
        "timings": timings,
        "fusion": tuning,
        "results": results,
        "hybrid_vs_best_single": comparisons,
    }
    if judged.full_test and set(judged.full_test) != set(judged.test):
        report["untuned_on_full_test"] = {
            "queries": len(judged.full_test),
            "results": {
                name: evaluate_run(
                    runs[name],
                    judged.dataset,
                    {**config, "method": name, "split": "test (all, incl. tuning queries)"},
                    query_ids=judged.full_test,
                )
                for name in methods
                if name in UNTUNED
            },
        }
    return report


def summary_table(report: dict[str, Any], metrics: Sequence[str] = ("ndcg@10", "recall@10",
                  "recall@100", "mrr")) -> str:  # fmt: skip
    """Plain text: one row per method with the mean of each metric on the test queries."""
    lines = [f"{report['dataset']}: {report['test_queries']} test queries "
             f"(fusion tuned on {report['dev_queries']} dev queries)"]  # fmt: skip
    lines.append(f"{'method':<14}" + "".join(f"{m:>12}" for m in metrics))
    for name, results in report["results"].items():
        values = "".join(f"{results['metrics'].get(m, float('nan')):>12.4f}" for m in metrics)
        lines.append(f"{name:<14}{values}")
    full = report.get("untuned_on_full_test")
    if full:
        lines.append(f"on all {full['queries']} test queries (as published numbers are):")
        for name, results in full["results"].items():
            values = "".join(f"{results['metrics'].get(m, float('nan')):>12.4f}" for m in metrics)
            lines.append(f"{name:<14}{values}")
    for hybrid, row in report["hybrid_vs_best_single"].items():
        lines.append(
            f"{hybrid} vs {row['versus']}: nDCG@10 {row['difference']:+.4f} "
            f"(p = {row['p_value']:.4f})"
        )
    return "\n".join(lines)
