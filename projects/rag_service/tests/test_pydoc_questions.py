"""The shipped judged question set over the pydoc corpus, and its loader's error handling."""

from __future__ import annotations

import json
import re

import pytest

from rag_service.corpus.documents import documentation_corpus
from rag_service.datasets.pydoc import (
    QuestionFileError,
    load_questions,
    pydoc_dataset,
)


@pytest.fixture(scope="module")
def questions():
    return load_questions()


@pytest.fixture(scope="module")
def corpus_ids() -> set[str]:
    return {d.id for d in documentation_corpus()}


def test_at_least_150_questions_with_unique_ids_and_queries(questions):
    assert len(questions) >= 150
    ids = [q.id for q in questions]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"q\d{3}", i) for i in ids)
    queries = [" ".join(q.query.lower().split()) for q in questions]
    assert len(set(queries)) == len(queries)


def test_every_relevant_document_exists_in_the_corpus(questions, corpus_ids):
    missing = [(q.id, d) for q in questions for d in q.relevant if d not in corpus_ids]
    assert missing == []
    assert pydoc_dataset().problems == []


def test_grades_are_1_or_2_and_every_question_has_an_answer(questions):
    for q in questions:
        assert set(q.relevant.values()) <= {1, 2}, q.id
        assert 2 in q.relevant.values(), q.id


def test_answers_mix_language_reference_and_library_docs(questions):
    """About half the questions are answered by a topic, half by an API docstring."""
    topic = sum(
        any(d.startswith("topic:") and g == 2 for d, g in q.relevant.items()) for q in questions
    )
    api = sum(
        any(d.startswith("api:") and g == 2 for d, g in q.relevant.items()) for q in questions
    )
    assert topic >= 0.35 * len(questions)
    assert api >= 0.35 * len(questions)


def test_dev_is_about_30_percent(questions):
    dev = sum(q.split == "dev" for q in questions)
    assert 0.25 <= dev / len(questions) <= 0.36


def test_dev_and_test_partition_the_questions(questions):
    dev, test, full = pydoc_dataset("dev"), pydoc_dataset("test"), pydoc_dataset()
    assert set(dev.queries).isdisjoint(test.queries)
    assert set(dev.queries) | set(test.queries) == set(full.queries) == {q.id for q in questions}
    assert set(dev.qrels) == set(dev.queries)
    assert set(test.qrels) == set(test.queries)
    assert dev.judged_queries() == sorted(dev.queries)
    assert dev.corpus is not None and len(dev.corpus) == len(full.corpus)
    assert (dev.name, test.name, full.name) == ("pydoc-dev", "pydoc-test", "pydoc")


def test_dataset_carries_the_judgements_and_documents(questions):
    full = pydoc_dataset()
    q = questions[0]
    assert full.queries[q.id] == q.query
    assert full.qrels[q.id] == q.relevant
    doc_id = next(iter(q.relevant))
    assert full.corpus[doc_id].text.strip()


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="split"):
        pydoc_dataset("train")


def _line(**overrides) -> str:
    record = {"id": "q001", "query": "how to sort", "relevant": {"topic:assert": 2}, "split": "dev"}
    record.update(overrides)
    return json.dumps(record)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], "line 1|:1: not valid JSON"),
        ([_line(), _line(query="other")], "duplicate id 'q001'"),
        ([_line(), _line(id="q002", query="How  to SORT")], "same query as q001"),
        ([_line(relevant={"topic:assert": 3})], "grade of 'topic:assert'"),
        ([_line(relevant={"topic:assert": 1})], "no document has grade 2"),
        ([_line(split="train")], "'split' must be one of"),
        ([json.dumps({"id": "q001", "query": "x", "split": "dev"})], "missing \\['relevant'\\]"),
    ],
)
def test_malformed_question_files_are_refused_with_file_and_line(tmp_path, lines, message):
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(QuestionFileError, match=message) as info:
        load_questions(path)
    assert str(path) in str(info.value)


def test_a_judgement_naming_an_unknown_document_is_reported(tmp_path):
    path = tmp_path / "questions.jsonl"
    relevant = {"topic:assert": 2, "api:no.such.thing": 1}
    path.write_text(_line(relevant=relevant) + "\n", encoding="utf-8")
    data = pydoc_dataset(questions_path=path)
    assert data.problems == ["q001: relevant document 'api:no.such.thing' is not in the corpus"]
    assert data.qrels == {"q001": {"topic:assert": 2}}
