"""`rag-eval` as a user runs it: local sets, BEIR folders, comparisons, and its errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag_service.evaluation.cli import app
from rag_service.evaluation.dataset import BeirDataset, CorpusEntry
from rag_service.evaluation.harness import evaluate_run, save_results

runner = CliRunner()


def test_bm25_on_lee_writes_results_and_prints_the_table(tmp_path):
    """BM25 alone needs no model: one results file per method, a summary, a table."""
    out = tmp_path / "results"
    result = runner.invoke(
        app, ["local", "--datasets", "lee", "--methods", "bm25", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "lee: 33 test queries" in result.stdout and "bm25" in result.stdout
    saved = json.loads((out / "lee-bm25.json").read_text())
    assert saved["schema"] == "rag-eval/1" and len(saved["per_query"]) == 33
    summary = json.loads((out / "lee-summary.json").read_text())
    assert summary["metrics"]["bm25"]["ndcg@10"] == saved["metrics"]["ndcg@10"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["local", "--datasets", "msmarco"], "unknown local set"),
        (["local", "--datasets", "lee", "--methods", "colbert"], "unknown methods"),
        (["local", "--datasets", "lee", "--chunking", "magic", "--methods", "bm25"], "chunking"),
    ],
)
def test_bad_options_are_usage_errors(arguments, message):
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_beir_folder_is_named(tmp_path):
    result = runner.invoke(app, ["beir", str(tmp_path / "scifact")])
    assert result.exit_code == 2
    assert "scifact" in result.output and "not found" in result.output


def _results(tmp_path, name, ranking):
    data = BeirDataset(
        "mini", {d: CorpusEntry("", d) for d in "abc"}, {"q1": "x", "q2": "y"},
        {"q1": {"a": 1}, "q2": {"b": 1}},
    )  # fmt: skip
    run = {q: [(d, 1.0 / (i + 1)) for i, d in enumerate(ranking)] for q in data.queries}
    return save_results(evaluate_run(run, data, {"method": name}), tmp_path / f"{name}.json")


def test_compare_prints_the_paired_difference(tmp_path):
    a = _results(tmp_path, "a", ["a", "b", "c"])
    b = _results(tmp_path, "b", ["c", "b", "a"])
    result = runner.invoke(app, ["compare", str(a), str(b), "--resamples", "200"])
    assert result.exit_code == 0, result.output
    assert "2 common queries" in result.stdout and "ndcg@10" in result.stdout


def test_compare_refuses_a_file_that_is_not_results(tmp_path):
    a = _results(tmp_path, "a", ["a", "b"])
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "something else"}')
    result = runner.invoke(app, ["compare", str(a), str(broken)])
    assert result.exit_code == 2
    assert "broken.json" in result.output
