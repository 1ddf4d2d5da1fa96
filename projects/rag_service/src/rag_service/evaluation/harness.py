"""Evaluate a run on a judged dataset, keep the result as JSON, compare two results fairly.

A results file (`"schema": "rag-eval/1"`) holds everything a later comparison needs: the config
that produced the run, which dataset and how many queries, the mean of each metric and every
query's score. Comparing two systems then needs no re-run, and because per-query scores are kept,
the comparison is PAIRED: on the queries both files scored, with a randomisation test and a
bootstrap interval of the mean difference (significance.py). Queries only one file has are
listed, never silently averaged in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rag_service.evaluation.dataset import BeirDataset
from rag_service.evaluation.metrics import DEFAULT_METRICS, Evaluation, evaluate
from rag_service.evaluation.runs import Run
from rag_service.evaluation.significance import paired_bootstrap_ci, paired_randomization_test
from rag_service.fileio import replace_text

__all__ = [
    "DEFAULT_METRICS",
    "SCHEMA",
    "ResultsError",
    "Run",
    "compare",
    "evaluate",
    "evaluate_run",
    "format_comparison",
    "format_per_query",
    "load_results",
    "per_query_rows",
    "results_document",
    "save_results",
]

SCHEMA = "rag-eval/1"
COMPARISON_SCHEMA = "rag-eval-compare/1"


class ResultsError(ValueError):
    """A results file that is not a readable rag-eval/1 document; names the file and field."""


def results_document(
    evaluation: Evaluation, dataset: Mapping[str, Any], config: Mapping[str, Any]
) -> dict[str, Any]:
    """The rag-eval/1 JSON object for one evaluation (plain dicts, floats and strings)."""
    return {
        "schema": SCHEMA,
        "config": dict(config),
        "dataset": dict(dataset),
        "metrics": dict(evaluation.means),
        "per_query": {q: dict(row) for q, row in evaluation.per_query.items()},
        "missing_from_run": list(evaluation.missing_from_run),
    }


def evaluate_run(
    run: Run,
    dataset: BeirDataset,
    config: Mapping[str, Any] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    query_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score `run` on the dataset's queries that have a relevant document; a results document.

    Queries with no relevant document would score 0 for every system and only dilute the mean,
    so they are left out here and counted in `dataset.skipped_no_relevant`. `query_ids` narrows
    the evaluation to a split (a dev or test list); ids the dataset does not judge raise.
    """
    judged = dataset.judged_queries()
    if query_ids is not None:
        unknown = sorted(set(query_ids) - set(dataset.qrels))
        if unknown:
            raise ValueError(f"query ids not in dataset {dataset.name!r}: {unknown[:10]}")
        wanted = set(query_ids)
        judged = [q for q in judged if q in wanted]
        considered = len(wanted)
    else:
        considered = len(dataset.qrels)
    if not judged:
        raise ValueError(f"dataset {dataset.name!r} has no query with a relevant document")
    qrels = {q: dataset.qrels[q] for q in judged}
    evaluation = evaluate({q: run[q] for q in judged if q in run}, qrels, metrics)
    info = {
        "name": dataset.name,
        "documents": len(dataset.corpus),
        "queries": len(judged),
        "skipped_no_relevant": considered - len(judged),
        "problems": list(dataset.problems),
    }
    return results_document(evaluation, info, config or {})


def save_results(results: Mapping[str, Any], path: Path | str) -> Path:
    """Validate and write a results document as indented JSON (atomically)."""
    path = Path(path)
    _check_results(results, str(path))
    text = json.dumps(results, indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
    replace_text(path, text + "\n")
    return path


def load_results(path: Path | str) -> dict[str, Any]:
    """Read a results file; ResultsError names the file and the missing or bad field."""
    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: results file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path}: not a JSON results file ({error})") from None
    _check_results(results, str(path))
    return results


def _check_results(results: Any, where: str) -> None:
    if not isinstance(results, Mapping):
        raise ResultsError(f"{where}: a results document must be a JSON object")
    if results.get("schema") != SCHEMA:
        raise ResultsError(f"{where}: field 'schema' is {results.get('schema')!r}, not {SCHEMA!r}")
    for name in ("config", "dataset", "metrics", "per_query"):
        if not isinstance(results.get(name), Mapping):
            raise ResultsError(f"{where}: field {name!r} is missing or not an object")
    metrics = set(results["metrics"])
    for query_id, row in results["per_query"].items():
        if not isinstance(row, Mapping) or set(row) != metrics:
            raise ResultsError(
                f"{where}: per_query[{query_id!r}] must hold exactly the metrics {sorted(metrics)}"
            )
        for metric, value in row.items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ResultsError(f"{where}: per_query[{query_id!r}][{metric!r}] = {value!r}")


def per_query_rows(
    results: Mapping[str, Any], metrics: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One row per query, `{"query": id, metric: value, ...}`, sorted by query id."""
    names = list(metrics or results["metrics"])
    missing = [m for m in names if m not in results["metrics"]]
    if missing:
        raise KeyError(f"metrics not in these results: {missing}")
    return [
        {"query": query_id, **{m: row[m] for m in names}}
        for query_id, row in sorted(results["per_query"].items())
    ]


def format_per_query(
    results: Mapping[str, Any], metrics: Sequence[str] | None = None, digits: int = 4
) -> str:
    """A plain-text table of per-query scores with the means as the last line."""
    names = list(metrics or results["metrics"])
    rows = per_query_rows(results, names)
    width = max([len("query"), len("mean"), *(len(r["query"]) for r in rows)])
    columns = [max(len(m), digits + 2) for m in names]
    lines = [
        "  ".join(
            [f"{'query':<{width}}", *(f"{m:>{c}}" for m, c in zip(names, columns, strict=True))]
        )
    ]
    for row in rows:
        cells = (f"{row[m]:>{c}.{digits}f}" for m, c in zip(names, columns, strict=True))
        lines.append("  ".join([f"{row['query']:<{width}}", *cells]))
    means = (f"{results['metrics'][m]:>{c}.{digits}f}" for m, c in zip(names, columns, strict=True))
    lines.append("  ".join([f"{'mean':<{width}}", *means]))
    return "\n".join(lines)


def compare(
    results_a: Mapping[str, Any],
    results_b: Mapping[str, Any],
    metrics: Sequence[str] | None = None,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired comparison of two results documents on the queries both of them scored.

    For each metric: both means on the common queries, their difference (a - b), the two-sided
    randomisation p-value and a bootstrap interval of the mean difference. Queries present in
    only one document are listed (`only_in_a`, `only_in_b`); different dataset names are warned
    about in `warnings`. Raises ValueError when no query or no requested metric is shared.
    """
    _check_results(results_a, "results_a")
    _check_results(results_b, "results_b")
    shared_metrics = [m for m in results_a["metrics"] if m in results_b["metrics"]]
    names = list(metrics) if metrics is not None else shared_metrics
    absent = [m for m in names if m not in shared_metrics]
    if absent or not names:
        raise ValueError(
            f"metrics {absent or names} are not in both results (shared: {shared_metrics})"
        )
    queries_a, queries_b = set(results_a["per_query"]), set(results_b["per_query"])
    common = sorted(queries_a & queries_b)
    if not common:
        raise ValueError("the two results share no query: nothing to compare")
    warnings = []
    name_a, name_b = results_a["dataset"].get("name"), results_b["dataset"].get("name")
    if name_a != name_b:
        warnings.append(f"different datasets: {name_a!r} vs {name_b!r}")
    compared: dict[str, dict[str, float]] = {}
    for metric in names:
        a = [results_a["per_query"][q][metric] for q in common]
        b = [results_b["per_query"][q][metric] for q in common]
        interval = paired_bootstrap_ci(a, b, n_resamples, confidence, seed)
        compared[metric] = {
            "mean_a": math.fsum(a) / len(a),
            "mean_b": math.fsum(b) / len(b),
            "difference": interval.mean_difference,
            "p_value": paired_randomization_test(a, b, n_resamples, seed),
            "ci_low": interval.low,
            "ci_high": interval.high,
        }
    return {
        "schema": COMPARISON_SCHEMA,
        "a": {"config": dict(results_a["config"]), "dataset": name_a},
        "b": {"config": dict(results_b["config"]), "dataset": name_b},
        "common_queries": len(common),
        "only_in_a": sorted(queries_a - queries_b),
        "only_in_b": sorted(queries_b - queries_a),
        "n_resamples": n_resamples,
        "confidence": confidence,
        "seed": seed,
        "warnings": warnings,
        "metrics": compared,
    }


def format_comparison(comparison: Mapping[str, Any], digits: int = 4) -> str:
    """A plain-text summary of `compare`'s output, one line per metric."""
    level = round(100 * comparison["confidence"])
    lines = [f"{comparison['common_queries']} common queries"]
    for side in ("a", "b"):
        only = comparison[f"only_in_{side}"]
        if only:
            lines.append(f"{len(only)} queries only in {side.upper()}: {', '.join(only[:10])}")
    lines.extend(f"warning: {w}" for w in comparison["warnings"])
    header = f"{'metric':<12} {'A':>8} {'B':>8} {'A-B':>8} {'p':>8}  {level}% CI of A-B"
    lines.append(header)
    for metric, row in comparison["metrics"].items():
        lines.append(
            f"{metric:<12} {row['mean_a']:>8.{digits}f} {row['mean_b']:>8.{digits}f} "
            f"{row['difference']:>+8.{digits}f} {row['p_value']:>8.{digits}f}  "
            f"[{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]"
        )
    return "\n".join(lines)
