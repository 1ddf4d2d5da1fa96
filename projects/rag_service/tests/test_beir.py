"""Reading and writing BEIR folders: round trips, reported problems, and errors that point."""

from __future__ import annotations

import json

import pytest

from rag_service.evaluation.beir import BeirError, load_beir, write_beir
from rag_service.evaluation.dataset import BeirDataset, CorpusEntry


def _dataset() -> BeirDataset:
    return BeirDataset(
        name="tiny",
        corpus={
            "d1": CorpusEntry("Lists", "Lists are mutable sequences."),
            "d2": CorpusEntry("", 'Tuples are immutable; "quoted" text,\ttabs and ünïcode.'),
            "d3": CorpusEntry("Dicts", "Mappings from keys to values.\nSecond line."),
        },
        queries={"q1": "is a list mutable?", "q2": "what maps keys to values"},
        qrels={"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}},
    )


def _write_folder(folder, corpus, queries, qrels_text, split="test"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus), "utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries), "utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / f"{split}.tsv").write_text(qrels_text, "utf-8")
    return folder


CORPUS = [{"_id": "d1", "title": "A", "text": "alpha"}, {"_id": "d2", "text": "beta"}]
QUERIES = [{"_id": "q1", "text": "alpha?"}, {"_id": "q2", "text": "beta?"}]


def test_write_then_load_gives_the_same_dataset(tmp_path):
    """Corpus (titles, tabs, quotes, non-ASCII), queries and graded qrels survive a round trip."""
    original = _dataset()
    folder = write_beir(original, tmp_path / "tiny")
    loaded = load_beir(folder)
    assert loaded.name == "tiny"
    assert loaded.corpus == original.corpus
    assert loaded.queries == original.queries
    assert loaded.qrels == original.qrels
    assert loaded.problems == []
    assert (folder / "qrels" / "test.tsv").read_text("utf-8").splitlines()[0] == (
        "query-id\tcorpus-id\tscore"
    )


@pytest.mark.parametrize("header", [True, False])
def test_qrels_with_and_without_header(tmp_path, header):
    """The header line is optional; the data lines read the same either way."""
    lines = ("query-id\tcorpus-id\tscore\n" if header else "") + "q1\td1\t1\nq2\td2\t2\n"
    dataset = load_beir(_write_folder(tmp_path / "b", CORPUS, QUERIES, lines))
    assert dataset.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}
    assert dataset.corpus["d2"] == CorpusEntry("", "beta")


def test_trec_four_column_qrels_are_read(tmp_path):
    """`qid 0 docid grade` (trec_eval's qrels) loads like BEIR's three columns."""
    dataset = load_beir(_write_folder(tmp_path / "t", CORPUS, QUERIES, "q1 0 d1 1\nq2 0 d2 0\n"))
    assert dataset.qrels == {"q1": {"d1": 1}, "q2": {"d2": 0}}


def test_unknown_ids_are_reported_or_raised_in_strict_mode(tmp_path):
    """Qrels naming a missing document or query: dropped but listed; strict raises naming them."""
    qrels = "q1\td1\t1\nq1\td9\t2\nq7\td1\t1\nq2\td8\t1\n"
    folder = _write_folder(tmp_path / "u", CORPUS, QUERIES, qrels)
    dataset = load_beir(folder)
    assert dataset.qrels == {"q1": {"d1": 1}}
    assert set(dataset.queries) == {"q1"}
    text = "\n".join(dataset.problems)
    assert "d9" in text and "d8" in text and "q7" in text
    assert "q2" in text  # lost its only judgement, so the query was dropped, and said so
    with pytest.raises(BeirError, match="d9") as raised:
        load_beir(folder, strict=True)
    assert "d8" in str(raised.value) and "q7" in str(raised.value)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    """A broken JSON line, or a line without text, is reported with its file and line number."""
    folder = _write_folder(tmp_path / "m", CORPUS, QUERIES, "q1\td1\t1\n")
    with (folder / "corpus.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('\n{"_id": "d3", "text": "gamma"\n')
    with pytest.raises(BeirError, match=r"corpus\.jsonl:4: invalid JSON"):
        load_beir(folder)
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "x"}) + "\n")
    with pytest.raises(BeirError, match=r"corpus\.jsonl:1: field 'text' is missing"):
        load_beir(folder)


def test_bad_qrels_lines_and_duplicates(tmp_path):
    """A non-integer score mid-file and a wrong column count are errors with the line number."""
    folder = _write_folder(tmp_path / "q", CORPUS, QUERIES, "q1\td1\t1\nq2\td2\thigh\n")
    with pytest.raises(BeirError, match=r"test\.tsv:2: score 'high' is not an integer"):
        load_beir(folder)
    (folder / "qrels" / "test.tsv").write_text("q1\td1\n")
    with pytest.raises(BeirError, match=r"test\.tsv:1: expected 3"):
        load_beir(folder)
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1\td1\t2\n")
    dataset = load_beir(folder)
    assert dataset.qrels == {"q1": {"d1": 1}}
    assert any("repeated" in p for p in dataset.problems)


def test_missing_folder_file_or_split_is_a_clear_error(tmp_path):
    """Each missing piece is named; a missing split lists the splits that exist."""
    with pytest.raises(BeirError, match="BEIR folder not found"):
        load_beir(tmp_path / "nowhere")
    folder = _write_folder(tmp_path / "f", CORPUS, QUERIES, "q1\td1\t1\n", split="dev")
    with pytest.raises(BeirError, match=r"test\.tsv: file not found \(splits in .*: dev\)"):
        load_beir(folder)
    (folder / "queries.jsonl").unlink()
    with pytest.raises(BeirError, match=r"queries\.jsonl: file not found"):
        load_beir(folder, split="dev")


def test_duplicate_document_id_names_both_lines(tmp_path):
    """Two corpus lines with one _id: an error naming the id and both lines."""
    corpus = [*CORPUS, {"_id": "d1", "text": "again"}]
    folder = _write_folder(tmp_path / "d", corpus, QUERIES, "q1\td1\t1\n")
    with pytest.raises(BeirError, match=r"corpus\.jsonl:3: duplicate _id 'd1' \(first on line 1\)"):
        load_beir(folder)


def test_queries_outside_the_split_are_not_loaded(tmp_path):
    """queries.jsonl holds every split's queries; only the judged ones belong to this split."""
    dataset = load_beir(_write_folder(tmp_path / "s", CORPUS, QUERIES, "q2\td2\t1\n"))
    assert dataset.queries == {"q2": "beta?"}
