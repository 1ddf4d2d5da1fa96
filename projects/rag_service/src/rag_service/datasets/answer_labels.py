"""Answers to documentation questions, labelled by hand for groundedness and relevance.

How the file (`answer_labels.jsonl`, package data) was made, on 2026-12-06:
- **Questions**: 50 of the 132 DEV-split questions of `pydoc_questions.jsonl` (every second one
  in id order), never the test split, so nothing here leaks into the retrieval evaluation.
- **Passages**: what `generation.bench.grounded_prompts` sends: BM25 over structure-aware chunks of
  the documentation corpus, the top 10 packed into 384 words-as-tokens. Passage ids and text are
  stored, so the labels stay valid if the corpus or chunking changes.
- **Answers**: 50 generated once by SmolLM2-135M-Instruct Q4_1 in llama.cpp
  (`LlamaCppGenerator`, temperature 0, max_tokens 64, the grounded system prompt), stored as text
  (`source: "smollm2-135m-q4_1"`), so they do not depend on the build that reads them; plus 10
  answers written by hand (`source: "written"`) to fill the top of the scale and to separate the
  two criteria: correct and cited, correct but uncited or citing an unrelated passage, a correct
  and an incorrect "I don't know.", one with an unsupported second sentence. SmolLM2 alone
  gives almost nothing above 3, and a judge cannot be checked on a scale it never sees.
- **Labels**: by one annotator (the author of the metrics and the judge, so not independent of
  them), reading each answer against the stored passages, with the rubrics of
  `evaluation.geval.RUBRICS` (groundedness and relevance, 1-5) and a one-line reason. One
  annotator means no inter-annotator agreement is known: treat a disagreement of one point as
  noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag_service.datasets.jsonl import UniqueIds, read_objects, where_of
from rag_service.prompting import Passage

LABELS_FILE = "answer_labels.jsonl"
SCALE = (1, 2, 3, 4, 5)
SOURCES = ("smollm2-135m-q4_1", "written")
_FIELDS = frozenset({
    "id", "question_id", "question", "passages", "answer", "source", "grounded", "relevant",
    "reason",
})  # fmt: skip


class AnswerLabelError(ValueError):
    """The labels file is malformed; the message names the file, the line and the field."""


@dataclass(frozen=True)
class AnswerLabel:
    """One labelled answer: the prompt's question and passages, the answer, two 1-5 labels."""

    id: str
    question_id: str
    question: str
    passages: tuple[Passage, ...]
    answer: str
    source: str
    grounded: int
    relevant: int
    reason: str


def _text(record: dict, key: str, where: str) -> str:
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise AnswerLabelError(f"{where}: '{key}' must be a non-empty string")
    return value


def _parse_record(record: dict, where: str) -> AnswerLabel:
    item = _text(record, "id", where)
    where = f"{where}: {item}"
    for key in ("grounded", "relevant"):
        if type(record[key]) is not int or record[key] not in SCALE:
            raise AnswerLabelError(f"{where}: '{key}' must be an integer 1-5, got {record[key]!r}")
    if record["source"] not in SOURCES:
        raise AnswerLabelError(f"{where}: 'source' must be one of {SOURCES}")
    passages = record["passages"]
    if not isinstance(passages, list) or not passages:
        raise AnswerLabelError(f"{where}: 'passages' must be a non-empty list")
    parsed = []
    for position, passage in enumerate(passages):
        if not isinstance(passage, dict) or set(passage) != {"id", "text"}:
            raise AnswerLabelError(f"{where}: passages[{position}] must be {{'id', 'text'}}")
        parsed.append(
            Passage(
                _text(passage, "id", f"{where} passages[{position}]"),
                _text(passage, "text", f"{where} passages[{position}]"),
            )
        )
    return AnswerLabel(
        id=item,
        question_id=_text(record, "question_id", where),
        question=_text(record, "question", where),
        passages=tuple(parsed),
        answer=_text(record, "answer", where),
        source=record["source"],
        grounded=record["grounded"],
        relevant=record["relevant"],
        reason=_text(record, "reason", where),
    )


def load_answer_labels(path: Path | str | None = None) -> list[AnswerLabel]:
    """Every labelled answer of the file (default: the shipped one), validated, in file order;
    ids must be unique."""
    labels: list[AnswerLabel] = []
    ids = UniqueIds(AnswerLabelError)
    where = str(path or LABELS_FILE)
    for line, lineno, record in read_objects(path, LABELS_FILE, _FIELDS, AnswerLabelError):
        where = where_of(line)
        label = _parse_record(record, line)
        ids.add(label.id, line, lineno)
        labels.append(label)
    if not labels:
        raise AnswerLabelError(f"{where}: no labelled answers")
    return labels
