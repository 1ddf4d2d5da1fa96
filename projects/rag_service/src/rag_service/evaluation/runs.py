"""Runs and judgements as plain Python data, checked once at the boundary.

A run is `dict[query_id, list[(doc_id, score)]]`, best first: what every retriever in this
package returns per query, so a run needs no conversion before it is scored, fused or saved.
Qrels are `dict[query_id, dict[doc_id, grade]]` with integer grades (0 = judged not relevant).

The ranking a metric sees is the list sorted by score, highest first, with a STABLE sort: equal
scores keep the order the retriever gave them. ranx breaks ties by an unstable numba argsort
instead, so on tied scores of documents with different grades the two can rank differently
(tests/test_metrics.py shows both agree to 1e-9 once given the same order). A TREC run file
written here stores ranks that follow the same rule, so it reads back in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path

from rag_service.fileio import replace_text

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, int]]


def check_qrels(qrels: Mapping[str, Mapping[str, int]]) -> None:
    """Raise ValueError naming the query and document of the first non-integer grade.

    Grades are compared as relevance levels (grade > 0 is relevant, linear gain in nDCG), so a
    float or a bool is almost always a parsing slip that would otherwise pass silently.
    """
    for query_id, judged in qrels.items():
        if not isinstance(judged, Mapping):
            raise ValueError(f"qrels[{query_id!r}] must map document ids to grades")
        for doc_id, grade in judged.items():
            if isinstance(grade, bool) or not isinstance(grade, int):
                raise ValueError(
                    f"qrels[{query_id!r}][{doc_id!r}]: grade must be an int, got {grade!r}"
                )


def ranking(results: Sequence[tuple[str, float]], query_id: str = "?") -> list[str]:
    """Document ids of one query's results ordered by score, highest first, ties in input order.

    Raises ValueError for a repeated document (it would be counted twice by every metric) or a
    score that is not a finite number (NaN makes any sort order arbitrary).
    """
    seen: set[str] = set()
    for position, entry in enumerate(results):
        try:
            doc_id, score = entry
        except (TypeError, ValueError):
            raise ValueError(
                f"run[{query_id!r}][{position}]: expected (doc_id, score), got {entry!r}"
            ) from None
        if not isinstance(doc_id, str):
            raise ValueError(f"run[{query_id!r}][{position}]: doc id must be a str, got {doc_id!r}")
        if doc_id in seen:
            raise ValueError(f"run[{query_id!r}]: document {doc_id!r} appears more than once")
        seen.add(doc_id)
        # numbers.Real admits numpy's float32 scores (FAISS returns them); bools are refused.
        if isinstance(score, bool) or not isinstance(score, Real) or not math.isfinite(score):
            raise ValueError(f"run[{query_id!r}][{doc_id!r}]: score must be finite, got {score!r}")
    order = sorted(range(len(results)), key=lambda i: -results[i][1])
    return [results[i][0] for i in order]


def rankings(run: Mapping[str, Sequence[tuple[str, float]]]) -> dict[str, list[str]]:
    """`ranking` for every query of a run (validated)."""
    return {query_id: ranking(results, query_id) for query_id, results in run.items()}


def write_trec_run(run: Mapping[str, Sequence[tuple[str, float]]], path: Path, tag: str) -> None:
    """Write `qid Q0 doc rank score tag` lines (trec_eval's format), atomically.

    Ranks follow `ranking`, so tied scores keep this package's order when read back.
    """
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag must be one word, got {tag!r}")
    lines = []
    for query_id, results in run.items():
        scores = dict(results)
        for rank, doc_id in enumerate(ranking(results, query_id), start=1):
            if any(c.isspace() for c in query_id + doc_id):
                raise ValueError(
                    f"ids in a TREC run cannot contain spaces: {query_id!r} {doc_id!r}"
                )
            lines.append(f"{query_id} Q0 {doc_id} {rank} {float(scores[doc_id])!r} {tag}\n")
    replace_text(Path(path), "".join(lines))


def read_trec_run(path: Path) -> Run:
    """Read a TREC run file: results per query in rank order (ranks, not file order, decide)."""
    path = Path(path)
    ranked: dict[str, list[tuple[int, str, float]]] = {}
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise ValueError(f"{path}:{line_number}: expected 6 fields, got {len(fields)}")
            query_id, _, doc_id, rank, score, _ = fields
            try:
                ranked.setdefault(query_id, []).append((int(rank), doc_id, float(score)))
            except ValueError:
                raise ValueError(f"{path}:{line_number}: rank or score is not a number") from None
    return {
        query_id: [(doc_id, score) for _, doc_id, score in sorted(rows, key=lambda r: r[0])]
        for query_id, rows in ranked.items()
    }
