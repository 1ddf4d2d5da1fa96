"""Results documents (rag-eval/1), the per-query table and the paired comparison."""

from __future__ import annotations

import json

import pytest

from rag_service.evaluation.dataset import BeirDataset, CorpusEntry
from rag_service.evaluation.harness import (
    SCHEMA,
    ResultsError,
    compare,
    evaluate_run,
    format_comparison,
    format_per_query,
    load_results,
    save_results,
)
from rag_service.evaluation.runs import read_trec_run, write_trec_run


def _dataset(n: int = 30) -> BeirDataset:
    corpus = {f"d{i}": CorpusEntry("", f"text {i}") for i in range(n)}
    qrels = {f"q{i:02d}": {f"d{i}": 2, f"d{(i + 1) % n}": 1} for i in range(n)}
    qrels["q_none"] = {"d0": 0}
    queries = {q: f"query {q}" for q in qrels}
    return BeirDataset(name="synthetic", corpus=corpus, queries=queries, qrels=qrels)


def _run(n: int, good: bool) -> dict:
    """good: the grade-2 document first; otherwise it comes third."""
    run = {}
    for i in range(n):
        first = [f"d{i}", "dx", "dy"] if good else ["dx", "dy", f"d{i}"]
        run[f"q{i:02d}"] = [(d, 1.0 - 0.1 * r) for r, d in enumerate(first)]
    return run


def test_results_document_round_trip(tmp_path):
    """evaluate_run -> save -> load gives the same document, with the schema and all parts."""
    dataset = _dataset()
    results = evaluate_run(_run(30, True), dataset, {"method": "bm25"}, ["ndcg@10", "mrr"])
    assert results["schema"] == SCHEMA
    assert results["dataset"]["queries"] == 30
    assert results["dataset"]["skipped_no_relevant"] == 1  # q_none is left out, and counted
    assert results["metrics"]["mrr"] == 1.0
    assert "q_none" not in results["per_query"]
    path = save_results(results, tmp_path / "a.json")
    assert load_results(path) == results
    table = format_per_query(load_results(path))
    assert table.splitlines()[0].split() == ["query", "ndcg@10", "mrr"]
    assert table.splitlines()[-1].split() == [
        "mean",
        f"{results['metrics']['ndcg@10']:.4f}",
        "1.0000",
    ]


def test_evaluate_run_on_a_split():
    """query_ids restricts to a split; an id the dataset does not judge raises."""
    dataset = _dataset()
    results = evaluate_run(_run(30, True), dataset, query_ids=["q00", "q01", "q_none"])
    assert sorted(results["per_query"]) == ["q00", "q01"]
    assert results["dataset"]["skipped_no_relevant"] == 1
    with pytest.raises(ValueError, match="not in dataset"):
        evaluate_run(_run(30, True), dataset, query_ids=["missing"])


def test_compare_is_paired_on_common_queries():
    """Better run vs worse: positive difference, small p, CI above 0; one-sided queries listed."""
    dataset = _dataset()
    good = evaluate_run(_run(30, True), dataset, {"method": "good"}, ["ndcg@10", "mrr"])
    bad = evaluate_run(_run(30, False), dataset, {"method": "bad"}, ["ndcg@10", "mrr"])
    del bad["per_query"]["q05"]
    comparison = compare(good, bad, n_resamples=2000, seed=1)
    assert comparison["common_queries"] == 29
    assert comparison["only_in_a"] == ["q05"] and comparison["only_in_b"] == []
    mrr = comparison["metrics"]["mrr"]
    assert mrr["mean_a"] == 1.0 and mrr["mean_b"] == pytest.approx(1 / 3)
    assert mrr["difference"] == pytest.approx(2 / 3)
    assert mrr["p_value"] < 0.001 and mrr["ci_low"] > 0
    same = compare(good, good, n_resamples=500)
    assert same["metrics"]["ndcg@10"]["p_value"] == 1.0
    text = format_comparison(comparison)
    assert "29 common queries" in text and "only in A: q05" in text


def test_compare_refuses_disjoint_or_mismatched_results():
    """No shared query, or a metric one side lacks, raises; other datasets are warned about."""
    dataset = _dataset()
    a = evaluate_run(_run(30, True), dataset, metrics=["mrr"])
    b = evaluate_run(_run(30, True), dataset, query_ids=["q00"], metrics=["mrr", "map"])
    with pytest.raises(ValueError, match="not in both"):
        compare(a, b, metrics=["map"])
    c = json.loads(json.dumps(a))
    c["per_query"] = {"other": {"mrr": 1.0}}
    with pytest.raises(ValueError, match="share no query"):
        compare(a, c)
    d = json.loads(json.dumps(a))
    d["dataset"]["name"] = "other"
    assert compare(a, d, n_resamples=100)["warnings"] == [
        "different datasets: 'synthetic' vs 'other'"
    ]


def test_load_results_names_the_problem(tmp_path):
    """Missing file, not JSON, wrong schema, or a per-query row missing a metric."""
    with pytest.raises(ResultsError, match="not found"):
        load_results(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ResultsError, match="not a JSON results file"):
        load_results(bad)
    bad.write_text(json.dumps({"schema": "other/1"}))
    with pytest.raises(ResultsError, match="'schema'"):
        load_results(bad)
    document = {
        "schema": SCHEMA,
        "config": {},
        "dataset": {},
        "metrics": {"mrr": 1.0},
        "per_query": {"q1": {}},
    }
    bad.write_text(json.dumps(document))
    with pytest.raises(ResultsError, match=r"per_query\['q1'\]"):
        load_results(bad)


def test_trec_run_round_trip_keeps_tie_order(tmp_path):
    """A TREC run file reads back with the same order, ties included."""
    run = {"q1": [("b", 1.0), ("a", 1.0), ("c", 2.5)], "q2": [("z", 0.5)]}
    write_trec_run(run, tmp_path / "run.txt", tag="bm25")
    assert read_trec_run(tmp_path / "run.txt") == {
        "q1": [("c", 2.5), ("b", 1.0), ("a", 1.0)],
        "q2": [("z", 0.5)],
    }
