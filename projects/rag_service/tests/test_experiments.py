"""BM25, dense and hybrid on a judged set: test queries report, dev queries tune, BEIR folders
with and without a dev split, Lee's self-hits removed."""

from __future__ import annotations

import pytest

from rag_service.evaluation.beir import write_beir
from rag_service.evaluation.dataset import BeirDataset, CorpusEntry
from rag_service.experiments import (
    METHODS,
    beir_set,
    evaluate_methods,
    every_third_as_dev,
    local_set,
    retrieve,
    summary_table,
)

TOPICS = {
    "sort": "Sorting: sorted(iterable, key=None, reverse=False) returns a new sorted list.",
    "json": "JSON: json.dumps serialises objects to a string; json.loads parses one back.",
    "tmp": "Temporary folders: tempfile.TemporaryDirectory is removed when its block ends.",
    "regex": "Regular expressions: re.sub replaces each match of a pattern in a string.",
    "csv": "CSV files: csv.DictReader yields each row of a file as a dictionary by header.",
    "path": "Paths: pathlib.Path joins parts with / and reads files with read_text().",
    "time": "Dates: datetime.now() is the current time; timedelta adds days or hours.",
    "rand": "Randomness: random.choice picks one element; secrets is for passwords.",
}
QUESTIONS = {
    "q1": ("order a list descending", "sort"),
    "q2": ("turn a dict into a json string", "json"),
    "q3": ("scratch directory deleted automatically", "tmp"),
    "q4": ("substitute text matching a pattern", "regex"),
    "q5": ("read spreadsheet rows as dicts", "csv"),
    "q6": ("concatenate file system paths", "path"),
    "q7": ("what time is it now", "time"),
    "q8": ("pick a random item from a list", "rand"),
    "q9": ("parse json text into python objects", "json"),
}


def small_dataset() -> BeirDataset:
    return BeirDataset(
        name="mini",
        corpus={f"doc:{k}": CorpusEntry(k.title(), v) for k, v in TOPICS.items()},
        queries={q: text for q, (text, _) in QUESTIONS.items()},
        qrels={q: {f"doc:{doc}": 2} for q, (_, doc) in QUESTIONS.items()},
    )


@pytest.fixture(scope="module")
def encoder():
    from rag_service.embeddings.encoder import make_encoder

    return make_encoder("fp32")


def test_every_third_judged_query_is_dev():
    dev, test = every_third_as_dev(small_dataset())
    assert dev == ["q1", "q4", "q7"]
    assert test == ["q2", "q3", "q5", "q6", "q8", "q9"]


def test_a_beir_folder_with_a_dev_split_tunes_on_it(tmp_path):
    """qrels/dev.tsv present: its queries tune, qrels/test.tsv's report, no query in both."""
    data = small_dataset()
    for split, ids in (("dev", ["q1", "q2", "q3"]), ("test", ["q4", "q5", "q6", "q7", "q8", "q9"])):
        qrels = {q: data.qrels[q] for q in ids}  # one queries.jsonl for both splits, as in BEIR
        write_beir(BeirDataset(data.name, data.corpus, data.queries, qrels), tmp_path, split)
    judged = beir_set(tmp_path)
    assert judged.dev == ["q1", "q2", "q3"]
    assert judged.test == ["q4", "q5", "q6", "q7", "q8", "q9"]
    assert not judged.notes and set(judged.dataset.queries) == set(QUESTIONS)


def test_a_beir_folder_without_dev_holds_test_queries_out_and_says_so(tmp_path):
    write_beir(small_dataset(), tmp_path, split="test")
    judged = beir_set(tmp_path)
    assert judged.dev == ["q1", "q4", "q7"] and len(judged.test) == 6
    assert "every third test query tunes" in judged.notes[0]
    assert sorted(judged.full_test) == sorted(QUESTIONS)


def test_without_dev_the_untuned_methods_are_also_scored_on_every_test_query(tmp_path):
    """Published BEIR numbers use all test queries; BM25 (tunes nothing) is reported on all 9
    as well as on the 6 held out from tuning."""
    write_beir(small_dataset(), tmp_path, split="test")
    report = evaluate_methods(beir_set(tmp_path), None, methods=("bm25",))
    assert sorted(report["results"]["bm25"]["per_query"]) == sorted(beir_set(tmp_path).test)
    full = report["untuned_on_full_test"]
    assert full["queries"] == 9 and sorted(full["results"]["bm25"]["per_query"]) == sorted(
        QUESTIONS
    )
    assert "on all 9 test queries" in summary_table(report)


def test_lee_runs_never_contain_the_query_itself():
    """Every Lee query is a corpus document: its own hit is dropped before anything scores."""
    judged = local_set("lee")
    runs, _ = retrieve(judged, None, kinds=("bm25",))
    run = runs["bm25"]
    assert set(run) == set(judged.dev) | set(judged.test)
    assert all(q not in {d for d, _ in hits} for q, hits in run.items())
    assert all(0 < len(hits) <= 49 for hits in run.values())  # at most the 49 others


def test_unknown_methods_and_sets_are_refused():
    with pytest.raises(ValueError, match="unknown methods"):
        evaluate_methods(local_set("lee"), None, methods=("bm25", "colbert"))
    with pytest.raises(ValueError, match="unknown local set"):
        local_set("msmarco")


@pytest.mark.slow
def test_every_method_reports_on_test_queries_only_and_tuning_never_sees_them(encoder):
    """Four methods scored on the test queries; the fusion weight depends on dev judgements
    only: rewriting every test judgement changes the scores but not the tuned weight."""
    data = small_dataset()
    dev, test = ["q1", "q4", "q7"], ["q2", "q3", "q5", "q6", "q8", "q9"]
    from rag_service.experiments import JudgedSet

    report = evaluate_methods(JudgedSet(data, dev, test), encoder)
    assert list(report["results"]) == list(METHODS)
    for results in report["results"].values():
        assert sorted(results["per_query"]) == test
        assert results["config"]["split"] == "test"
    assert report["fusion"]["dev_queries"] == 3
    assert set(report["hybrid_vs_best_single"]) == {"hybrid-rrf", "hybrid-score"}
    assert "hybrid-score" in summary_table(report)
    scrambled = BeirDataset(
        data.name, data.corpus, data.queries,
        {**data.qrels, **{q: {"doc:rand": 2} for q in test}},
    )  # fmt: skip
    again = evaluate_methods(JudgedSet(scrambled, dev, test), encoder)
    assert again["fusion"] == report["fusion"]
    assert again["results"]["dense"]["metrics"] != report["results"]["dense"]["metrics"]
