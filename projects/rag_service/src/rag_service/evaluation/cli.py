"""`rag-eval`: retrieval quality on the local judged sets or a BEIR folder, and paired
comparisons of two results files.

A thin layer over `rag_service.experiments` and `rag_service.evaluation.harness`: it parses
options, prints progress and tables, and writes rag-eval/1 JSON files; all the work happens in
functions a notebook can call the same way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rag_service import offline

offline.apply()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Retrieval evaluation: BM25, dense (MiniLM) and hybrid on judged sets; paired tests.",
)

Methods = Annotated[
    str, typer.Option(help="Comma-separated: bm25, dense, hybrid-rrf, hybrid-score.")
]
Precision = Annotated[
    str, typer.Option(help="Embedding precision: fp32, int8, onnx-fp32 or onnx-int8.")
]
Chunking = Annotated[str, typer.Option(help="Chunking strategy: structure, fixed or sentence.")]
Out = Annotated[Path, typer.Option(help="Folder for the results JSON files.")]


def _say(message: str) -> None:
    print(f"[rag-eval] {message}", file=sys.stderr, flush=True)


def _methods(text: str) -> list[str]:
    from rag_service.experiments import METHODS

    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = sorted(set(names) - set(METHODS))
    if unknown or not names:
        raise typer.BadParameter(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    return names


def _encoder(precision: str) -> Any:
    from rag_service.embeddings.encoder import PRECISIONS, make_encoder

    if precision not in PRECISIONS:
        raise typer.BadParameter(f"precision must be one of {', '.join(PRECISIONS)}")
    return make_encoder(precision)


def _write(report: dict[str, Any], out: Path) -> None:
    """One rag-eval/1 file per method (for `rag-eval compare`) and the whole report."""
    from rag_service.evaluation.harness import save_results

    out.mkdir(parents=True, exist_ok=True)
    for method, results in report["results"].items():
        save_results(results, out / f"{report['dataset']}-{method}.json")
    summary = {k: v for k, v in report.items() if k != "results"}
    summary["metrics"] = {m: r["metrics"] for m, r in report["results"].items()}
    (out / f"{report['dataset']}-summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def _run(judged: Any, methods: str, precision: str, chunking: str, out: Path) -> None:
    from rag_service.corpus.chunking import STRATEGIES
    from rag_service.experiments import evaluate_methods, summary_table

    if chunking not in STRATEGIES:
        raise typer.BadParameter(f"chunking must be one of {', '.join(sorted(STRATEGIES))}")
    for problem in judged.dataset.problems[:20]:
        _say(f"problem: {problem}")
    if len(judged.dataset.problems) > 20:
        _say(f"... and {len(judged.dataset.problems) - 20} more problems")
    names = _methods(methods)
    encoder = _encoder(precision) if names != ["bm25"] else None  # BM25 alone needs no model
    report = evaluate_methods(judged, encoder, chunking=chunking, methods=names, log=_say)
    _write(report, out)
    print(summary_table(report))
    _say(f"results in {out}/")


@app.command()
def local(
    datasets: Annotated[str, typer.Option(help="Comma-separated: pydoc, lee.")] = "pydoc,lee",
    methods: Methods = "bm25,dense,hybrid-rrf,hybrid-score",
    precision: Precision = "fp32",
    chunking: Chunking = "structure",
    out: Out = Path("eval-results"),
) -> None:
    """The judged sets shipped with the package: the documentation questions and Lee's news."""
    from rag_service.experiments import local_set

    for name in [d.strip() for d in datasets.split(",") if d.strip()]:
        try:
            judged = local_set(name)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from error
        _run(judged, methods, precision, chunking, out)


@app.command()
def beir(
    folder: Annotated[
        Path, typer.Argument(help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")
    ],
    split: Annotated[str, typer.Option(help="The qrels split to report on.")] = "test",
    dev_split: Annotated[str, typer.Option(help="The qrels split that tunes fusion.")] = "dev",
    methods: Methods = "bm25,dense,hybrid-rrf,hybrid-score",
    precision: Precision = "fp32",
    chunking: Chunking = "structure",
    strict: Annotated[bool, typer.Option(help="Fail on qrels naming unknown ids.")] = False,
    out: Out = Path("eval-results"),
) -> None:
    """A downloaded BEIR dataset (SciFact, NFCorpus, FiQA, ...), read from disk."""
    from rag_service.evaluation.beir import BeirError, load_beir
    from rag_service.experiments import beir_set

    try:
        if strict:
            load_beir(folder, split, strict=True)
        judged = beir_set(folder, split, dev_split)
    except BeirError as error:
        _say(f"error: {error}")
        raise typer.Exit(2) from error
    _run(judged, methods, precision, chunking, out)


@app.command("compare")
def compare_command(
    a: Annotated[Path, typer.Argument(help="Results file A (rag-eval/1 JSON).")],
    b: Annotated[Path, typer.Argument(help="Results file B.")],
    resamples: Annotated[int, typer.Option(help="Randomisation and bootstrap resamples.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """A paired comparison on the queries both files scored: difference, p-value, interval."""
    from rag_service.evaluation.harness import (
        ResultsError,
        compare,
        format_comparison,
        load_results,
    )

    try:
        comparison = compare(load_results(a), load_results(b), n_resamples=resamples, seed=seed)
    except (ResultsError, ValueError) as error:
        _say(f"error: {error}")
        raise typer.Exit(2) from error
    print(format_comparison(comparison))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
