"""Labelled cases for the guardrails: benign questions, injection attempts, personal data.

`guardrail_cases.jsonl` (shipped as package data) was WRITTEN FOR THIS PROJECT by hand; it is
not taken from a public benchmark. It is the evidence behind the numbers the guardrails
report, so its shape is validated on load. Three labels:

- "benign": questions a Python developer asks, and passages like the ones the documentation
  corpus returns. Many are deliberately tricky: they say "ignore", "system", "prompt",
  "instructions", "developer mode", "send a POST to https://...", contain `</div>` or
  `<document>` tags or base64, so a detector that keys on single words pays for it. Benign
  cases hold no personal data.
- "injection": attempts to override, extract or hijack, either typed into the question
  (channel "question") or planted in text meant to be retrieved (channel "document":
  indirect injection). Some are obfuscated (zero-width characters, Cyrillic look-alikes,
  leetspeak, base64) and some are paraphrased on purpose, because real attacks are.
- "pii": text with personal data in mixed formats, each expected finding listed as its kind
  and exact substring, and near-misses that must NOT match (Luhn-invalid cards, versions,
  ISO dates, order numbers, IBANs with a wrong check, never-issued SSNs).

A case of any label lists every piece of personal data in its text (an injection may carry an
attacker's address), so a PII evaluation can run over all of them.

Split by id, not by a field: the number in the id ("inj-004" -> 4) decides, and every third
case (numbers 1, 4, 7, ...) is "dev", the rest "test". The detector's threshold is chosen on
the dev cases only; the reported numbers are the test cases'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rag_service.datasets.jsonl import Unique, UniqueIds, read_objects, where_of
from rag_service.guardrails.pii import ALL_KINDS

__all__ = [
    "CASES_FILE",
    "CHANNELS",
    "LABELS",
    "SPLITS",
    "CaseFileError",
    "GuardrailCase",
    "PiiSpan",
    "case_split",
    "load_guardrail_cases",
    "split_cases",
]

CASES_FILE = "guardrail_cases.jsonl"
LABELS = ("benign", "injection", "pii")
CHANNELS = ("question", "document")
SPLITS = ("dev", "test")
_FIELDS = frozenset({"id", "text", "label", "channel", "pii", "note"})
_ID = re.compile(r"(ben|inj|pii)-(\d{3,})")
_PREFIX_LABEL = {"ben": "benign", "inj": "injection", "pii": "pii"}


class CaseFileError(ValueError):
    """The case file is malformed; the message names the file, the line and the field."""


@dataclass(frozen=True)
class PiiSpan:
    """One expected piece of personal data: its kind and the exact text as written."""

    kind: str
    text: str


@dataclass(frozen=True)
class GuardrailCase:
    """One labelled text; `split` follows from the id (see the module docstring)."""

    id: str
    text: str
    label: str
    channel: str
    pii: tuple[PiiSpan, ...]
    note: str

    @property
    def split(self) -> str:
        return case_split(self.id)


def case_split(case_id: str) -> str:
    """ "dev" for ids numbered 1, 4, 7, ... (every third), "test" otherwise."""
    match = _ID.fullmatch(case_id)
    if match is None:
        raise ValueError(f"case_id must look like 'ben-001', 'inj-001' or 'pii-001': {case_id!r}")
    return "dev" if int(match.group(2)) % 3 == 1 else "test"


def _parse_span(raw: object, where: str) -> PiiSpan:
    if not isinstance(raw, dict) or set(raw) != {"kind", "text"}:
        raise CaseFileError(f"{where}: each 'pii' entry must be an object with 'kind' and 'text'")
    if raw["kind"] not in ALL_KINDS:
        raise CaseFileError(f"{where}: pii kind {raw['kind']!r} is not one of {list(ALL_KINDS)}")
    if not isinstance(raw["text"], str) or not raw["text"]:
        raise CaseFileError(f"{where}: pii 'text' must be a non-empty string")
    return PiiSpan(raw["kind"], raw["text"])


def _parse_record(record: dict, where: str) -> GuardrailCase:
    case_id, text, label = record["id"], record["text"], record["label"]
    match = _ID.fullmatch(case_id) if isinstance(case_id, str) else None
    if match is None:
        raise CaseFileError(f"{where}: 'id' must look like 'ben-001', got {case_id!r}")
    if label not in LABELS:
        raise CaseFileError(f"{where}: {case_id}: 'label' must be one of {LABELS}, got {label!r}")
    if _PREFIX_LABEL[match.group(1)] != label:
        raise CaseFileError(f"{where}: {case_id}: the id prefix does not match label {label!r}")
    if record["channel"] not in CHANNELS:
        raise CaseFileError(f"{where}: {case_id}: 'channel' must be one of {CHANNELS}")
    if not isinstance(text, str) or not text.strip():
        raise CaseFileError(f"{where}: {case_id}: 'text' must be a non-empty string")
    if not isinstance(record["note"], str):
        raise CaseFileError(f"{where}: {case_id}: 'note' must be a string")
    if not isinstance(record["pii"], list):
        raise CaseFileError(f"{where}: {case_id}: 'pii' must be a list")
    spans = tuple(_parse_span(span, f"{where}: {case_id}") for span in record["pii"])
    if label == "benign" and spans:
        raise CaseFileError(f"{where}: {case_id}: a benign case must not contain personal data")
    for span in spans:
        if text.count(span.text) < sum(s.text == span.text for s in spans):
            raise CaseFileError(f"{where}: {case_id}: pii text {span.text!r} is not in 'text'")
    return GuardrailCase(case_id, text, label, record["channel"], spans, record["note"])


def load_guardrail_cases(path: Path | None = None) -> list[GuardrailCase]:
    """Every case of the file (default: the shipped one), validated, in file order. Ids and
    texts must be unique (a repeated text would be counted twice)."""
    cases: list[GuardrailCase] = []
    ids, texts = UniqueIds(CaseFileError), Unique("text", CaseFileError)
    where = str(path or CASES_FILE)
    for line, lineno, record in read_objects(path, CASES_FILE, _FIELDS, CaseFileError):
        where = where_of(line)
        case = _parse_record(record, line)
        ids.add(case.id, line, lineno)
        texts.add(case.text, line, case.id)
        cases.append(case)
    if not cases:
        raise CaseFileError(f"{where}: no cases")
    return cases


def split_cases(cases: list[GuardrailCase], split: str) -> list[GuardrailCase]:
    """The cases of one split ("dev" or "test"), in their order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [case for case in cases if case.split == split]
