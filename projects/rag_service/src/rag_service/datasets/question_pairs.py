"""Labelled question pairs for the semantic cache: can one cached answer serve both?

`question_pairs.jsonl` (shipped as package data) was WRITTEN FOR THIS PROJECT by hand; it is
not taken from a public benchmark (Quora Question Pairs and the like cannot be downloaded
here, and are not about documentation). It holds 75 documentation-style questions, each
cached ("cached") and asked again ("asked") in two or three ways, its `kind`:

- "paraphrase": reworded, and the cached answer serves it (`same` true): "how do I sort a
  list" / "what's the way to put the items of a list in order". Some share few words with
  their question on purpose ("make a UUID" for "generate a unique id");
- "lookalike": shares most of its words but needs another answer (`same` false): "how do I
  sort a list" / "how do I sort a dict by value". These are the pairs a semantic cache gets
  wrong with full confidence, so they are deliberately close;
- "variant" (the first 40 questions only): the same question retyped the way users repeat
  themselves, which exact-match normalisation (case, whitespace) does not catch: "how to sort
  a list in python?", "merge 2 dictionaries python" (`same` true).

190 pairs: 75 paraphrases, 75 look-alikes, 40 variants. The variants were added after a first
measurement with paraphrases and look-alikes only, which found no usable threshold (MiniLM
puts several look-alikes above every paraphrase): they are the traffic a semantic cache can
serve safely, and the set would otherwise not measure it.

Splits keep every question in one split: the questions of a group (the cached one, its
paraphrase, its look-alike, its variant) are all "dev" or all "test", alternating by group
(38 groups and 96 pairs dev, 37 groups and 94 pairs test), so a threshold chosen on dev never
sees a test question. The loader refuses a file in which a question appears in both splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag_service.datasets.jsonl import Unique, UniqueIds, read_objects, where_of

__all__ = [
    "PAIRS_FILE",
    "KINDS",
    "SPLITS",
    "PairFileError",
    "QuestionPair",
    "load_question_pairs",
]

PAIRS_FILE = "question_pairs.jsonl"
SPLITS = ("dev", "test")
KINDS = {"paraphrase": True, "lookalike": False, "variant": True}
"""Each kind of pair, and the `same` label it must carry."""
_FIELDS = frozenset({"id", "cached", "asked", "same", "kind", "split"})


class PairFileError(ValueError):
    """The pair file is malformed; the message names the file, the line and the field."""


@dataclass(frozen=True)
class QuestionPair:
    """A cached question, a new one, and whether the cached answer is right for the new one."""

    id: str
    cached: str
    asked: str
    same: bool
    kind: str
    split: str


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _parse_record(record: dict, where: str) -> QuestionPair:
    pid, cached, asked, same, kind, split = (
        record[k] for k in ("id", "cached", "asked", "same", "kind", "split")
    )
    if not isinstance(pid, str) or not pid:
        raise PairFileError(f"{where}: 'id' must be a non-empty string, got {pid!r}")
    for field, text in (("cached", cached), ("asked", asked)):
        if not isinstance(text, str) or not text.strip():
            raise PairFileError(f"{where}: {pid}: {field!r} must be a non-empty string")
    if _normal(cached) == _normal(asked):
        raise PairFileError(f"{where}: {pid}: 'cached' and 'asked' are the same question")
    if not isinstance(same, bool):
        raise PairFileError(f"{where}: {pid}: 'same' must be true or false, got {same!r}")
    if kind not in KINDS:
        raise PairFileError(f"{where}: {pid}: 'kind' must be one of {tuple(KINDS)}, got {kind!r}")
    if KINDS[kind] is not same:
        raise PairFileError(f"{where}: {pid}: a {kind!r} pair must have 'same' {KINDS[kind]}")
    if split not in SPLITS:
        raise PairFileError(f"{where}: {pid}: 'split' must be one of {SPLITS}, got {split!r}")
    return QuestionPair(pid, cached, asked, same, kind, split)


def load_question_pairs(
    split: str | None = None, *, path: Path | None = None
) -> list[QuestionPair]:
    """The pairs of `split` ("dev", "test", None = all), validated, in file order.

    `path` replaces the shipped file (same format). Refused: a repeated id, a repeated pair
    (in either order), and a question (lower-cased, whitespace collapsed) found in both
    splits, which would let the test split grade a threshold on a question it was chosen on.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    pairs: list[QuestionPair] = []
    ids, seen_pairs = UniqueIds(PairFileError), Unique("pair", PairFileError)
    question_split: dict[str, tuple[str, str]] = {}  # question -> (split, id of first pair)
    where = str(path or PAIRS_FILE)
    for line, lineno, record in read_objects(path, PAIRS_FILE, _FIELDS, PairFileError):
        where = where_of(line)
        pair = _parse_record(record, line)
        ids.add(pair.id, line, lineno)
        seen_pairs.add(frozenset((_normal(pair.cached), _normal(pair.asked))), line, pair.id)
        for question in (pair.cached, pair.asked):
            first = question_split.setdefault(_normal(question), (pair.split, pair.id))
            if first[0] != pair.split:
                raise PairFileError(
                    f"{line}: {pair.id}: question {question!r} is in split {pair.split!r} "
                    f"here but in {first[0]!r} in {first[1]}"
                )
        pairs.append(pair)
    if not pairs:
        raise PairFileError(f"{where}: no pairs")
    return [p for p in pairs if split is None or p.split == split]
