"""Off-topic questions: what a Python-documentation assistant is asked but cannot answer.

`offtopic_questions.jsonl` (shipped as package data) was WRITTEN FOR THIS PROJECT by hand; it
is not taken from a public benchmark. Each question is one that a user of an assistant over
`documentation_corpus()` (the language reference topics and 42 standard-library modules) might
type, and that the corpus does NOT answer. They are the negatives for the "I don't know"
threshold (`rag_service.relevance`); the positives are the pydoc questions
(`datasets/pydoc.py`), which the corpus does answer. Five kinds, 120 questions:

- "other_language": other programming languages (JavaScript, Rust, Go, Java, C#, SQL, bash...);
- "tool": software tools (Excel, git, Docker, vim, nginx, CI systems...);
- "general": general knowledge and everyday questions;
- "third_party": Python packages that are not in the standard library (pandas, Django, numpy,
  Flask, PyTorch...): the nearest a real user gets, and the hardest for a Python corpus;
- "near_miss": questions that share Python's words but not its documentation here: pythons
  the snake, "list", "class", "string" outside programming, and standard-library modules the
  corpus does not include (sqlite3, threading, tkinter, pickle, asyncio's functions).

The split is a field, stratified by kind: within each kind, questions alternate dev, test, dev,
... in file order (62 dev, 58 test). A threshold is chosen on dev only; test is for reporting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag_service.datasets.jsonl import Unique, UniqueIds, read_objects, where_of

__all__ = [
    "KINDS",
    "OFFTOPIC_FILE",
    "SPLITS",
    "OffTopicFileError",
    "OffTopicQuestion",
    "load_offtopic_questions",
]

OFFTOPIC_FILE = "offtopic_questions.jsonl"
KINDS = ("other_language", "tool", "general", "third_party", "near_miss")
SPLITS = ("dev", "test")
_FIELDS = frozenset({"id", "query", "kind", "split"})


class OffTopicFileError(ValueError):
    """The off-topic file is malformed; the message names the file, the line and the field."""


@dataclass(frozen=True)
class OffTopicQuestion:
    """A question the documentation corpus does not answer, its kind and its split."""

    id: str
    query: str
    kind: str
    split: str


def _parse_record(record: dict, where: str) -> OffTopicQuestion:
    qid, query, kind, split = (record[k] for k in ("id", "query", "kind", "split"))
    if not isinstance(qid, str) or not qid:
        raise OffTopicFileError(f"{where}: 'id' must be a non-empty string, got {qid!r}")
    if not isinstance(query, str) or not query.strip():
        raise OffTopicFileError(f"{where}: {qid}: 'query' must be a non-empty string")
    if kind not in KINDS:
        raise OffTopicFileError(f"{where}: {qid}: 'kind' must be one of {KINDS}, got {kind!r}")
    if split not in SPLITS:
        raise OffTopicFileError(f"{where}: {qid}: 'split' must be one of {SPLITS}, got {split!r}")
    return OffTopicQuestion(qid, query, kind, split)


def load_offtopic_questions(
    split: str | None = None, *, path: Path | None = None
) -> list[OffTopicQuestion]:
    """The questions of `split` ("dev", "test", None = all), validated, in file order.

    `path` replaces the shipped file (same format). Ids and queries (compared lower-cased,
    whitespace collapsed) must be unique: a repeated question would be counted twice.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    questions: list[OffTopicQuestion] = []
    ids, queries = UniqueIds(OffTopicFileError), Unique("query", OffTopicFileError)
    where = str(path or OFFTOPIC_FILE)
    for line, lineno, record in read_objects(path, OFFTOPIC_FILE, _FIELDS, OffTopicFileError):
        where = where_of(line)
        question = _parse_record(record, line)
        ids.add(question.id, line, lineno)
        queries.add(" ".join(question.query.lower().split()), line, question.id)
        questions.append(question)
    if not questions:
        raise OffTopicFileError(f"{where}: no questions")
    return [q for q in questions if split is None or q.split == split]
