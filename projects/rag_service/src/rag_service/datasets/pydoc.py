"""The "pydoc" judged set: developer questions over Python's own documentation.

The questions (`pydoc_questions.jsonl`, shipped as package data) were written for this project
by reading the documents of `documentation_corpus()` and phrased the way an engineer types into
a search box, mostly NOT in the documents' words, so that neither lexical nor dense retrieval
gets them for free. Each names every document that helps: grade 2 = it answers the question,
grade 1 = relevant or a partial answer. About a third are in the "dev" split (every third
question: the only split any tuning, such as a hybrid fusion weight, may look at); the rest are
"test".

Two conventions keep the grades consistent, because the corpus repeats itself:
- documents with the same text (`topic:if` and `topic:else`, `random.choice` and
  `random.Random.choice`) get the same grade, so a retriever is never penalised for a coin flip
  between identical texts (unless the module itself matters: `random.choice` is no answer to a
  question that asks for something cryptographically safe);
- a reference chapter that contains a focused topic word for word (`topic:compound` holds
  `topic:try`, `topic:specialnames` holds `topic:customization`) is graded 1 wherever the focused
  topic is judged at all: it contains the answer, buried in thousands of other words.

Relevance names document ids, so one set scores every chunking strategy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag_service.corpus.documents import documentation_corpus
from rag_service.datasets.jsonl import Unique, UniqueIds, read_objects, where_of
from rag_service.evaluation.dataset import BeirDataset, CorpusEntry

QUESTIONS_FILE = "pydoc_questions.jsonl"
SPLITS = ("dev", "test")
GRADES = (1, 2)
_FIELDS = frozenset({"id", "query", "relevant", "split"})


class QuestionFileError(ValueError):
    """The question file is malformed; the message names the file, the line and the field."""


@dataclass(frozen=True)
class Question:
    """One judged query: grade 2 = the document answers it, 1 = relevant or partial."""

    id: str
    query: str
    relevant: dict[str, int]
    split: str


def _parse_record(record: dict, where: str) -> Question:
    qid, query, relevant, split = (record[k] for k in ("id", "query", "relevant", "split"))
    if not isinstance(qid, str) or not qid:
        raise QuestionFileError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(query, str) or not query.strip():
        raise QuestionFileError(f"{where}: {qid}: 'query' must be a non-empty string")
    if split not in SPLITS:
        raise QuestionFileError(f"{where}: {qid}: 'split' must be one of {SPLITS}, got {split!r}")
    if not isinstance(relevant, dict) or not relevant:
        raise QuestionFileError(f"{where}: {qid}: 'relevant' must be a non-empty object")
    for doc_id, grade in relevant.items():
        if type(grade) is not int or grade not in GRADES:
            raise QuestionFileError(
                f"{where}: {qid}: grade of {doc_id!r} must be one of {GRADES}, got {grade!r}"
            )
    if 2 not in relevant.values():
        raise QuestionFileError(f"{where}: {qid}: no document has grade 2 (one must answer it)")
    return Question(qid, query, dict(relevant), split)


def load_questions(path: Path | None = None) -> list[Question]:
    """Every question of the file (default: the shipped one), validated, in file order.

    Ids and queries must be unique: a repeated query would count one judgement twice.
    """
    questions: list[Question] = []
    ids, queries = UniqueIds(QuestionFileError), Unique("query", QuestionFileError)
    where = str(path or QUESTIONS_FILE)
    for line, lineno, record in read_objects(path, QUESTIONS_FILE, _FIELDS, QuestionFileError):
        where = where_of(line)
        question = _parse_record(record, line)
        ids.add(question.id, line, lineno)
        queries.add(" ".join(question.query.lower().split()), line, question.id)
        questions.append(question)
    if not questions:
        raise QuestionFileError(f"{where}: no questions")
    return questions


def pydoc_dataset(split: str | None = None, *, questions_path: Path | None = None) -> BeirDataset:
    """The documentation corpus with the questions of `split` ("dev", "test", None = all).

    A judgement naming a document that is not in the corpus (say, a docstring a Python release
    removed) cannot be retrieved by anything: it is left out of the qrels and REPORTED in
    `problems`, one line per judgement, so the caller sees it instead of a silently lower score.
    `questions_path` replaces the shipped question file (same format).
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    corpus = {doc.id: CorpusEntry(doc.title, doc.text) for doc in documentation_corpus()}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    for question in load_questions(questions_path):
        if split is not None and question.split != split:
            continue
        queries[question.id] = question.query
        judged = {}
        for doc_id, grade in question.relevant.items():
            if doc_id in corpus:
                judged[doc_id] = grade
            else:
                problems.append(f"{question.id}: relevant document {doc_id!r} is not in the corpus")
        qrels[question.id] = judged
    name = "pydoc" if split is None else f"pydoc-{split}"
    return BeirDataset(name=name, corpus=corpus, queries=queries, qrels=qrels, problems=problems)
