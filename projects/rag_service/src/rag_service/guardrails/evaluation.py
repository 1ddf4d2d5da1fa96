"""How well the guardrails work, measured on labelled cases.

`evaluate_detector` treats "injection" as the positive class and every other case (benign
questions and passages, texts with personal data) as negative, and reports the false-block
rate on the benign cases separately: that is the cost users feel. Everything is also broken
down per channel, because an injection planted in a retrieved document (indirect) reads
differently from one typed into the question.

`evaluate_pii` scores the recognisers per kind on EXACT spans: a finding counts only if its
kind, start and end equal an expected one, so "found most of the card number" is a miss and a
spurious extra character is a false positive. It runs over every case given, so findings in
benign text count against precision.

`choose_threshold` picks the detector threshold from a grid on the cases it is given: call it
with the dev split only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rag_service.datasets.guardrails import CHANNELS, GuardrailCase
from rag_service.guardrails.injection import InjectionVerdict, score_injection
from rag_service.guardrails.pii import ALL_KINDS, Finding, find_pii

__all__ = ["choose_threshold", "evaluate_detector", "evaluate_pii", "expected_spans"]

Detector = Callable[[str], "InjectionVerdict | bool"]


def _ratio(numerator: int, denominator: int) -> float:
    """0.0 when the denominator is 0 (no predictions / no positives), like scikit-learn's
    zero_division=0; the counts are reported beside every ratio so this is never hidden."""
    return numerator / denominator if denominator else 0.0


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def _flagged(detector: Detector, text: str) -> bool:
    verdict = detector(text)
    if isinstance(verdict, bool):
        return verdict
    if isinstance(verdict, InjectionVerdict):
        return verdict.flagged
    raise TypeError(f"detector must return a bool or an InjectionVerdict, got {verdict!r}")


def _detector_scores(decisions: Sequence[tuple[GuardrailCase, bool]]) -> dict[str, Any]:
    tp = sum(flag for case, flag in decisions if case.label == "injection")
    fn = sum(not flag for case, flag in decisions if case.label == "injection")
    fp = sum(flag for case, flag in decisions if case.label != "injection")
    benign = [flag for case, flag in decisions if case.label == "benign"]
    scores = _prf(tp, fp, fn)
    scores.update(
        n=len(decisions),
        positives=tp + fn,
        benign=len(benign),
        false_blocks=sum(benign),
        false_block_rate=_ratio(sum(benign), len(benign)),
    )
    return scores


def evaluate_detector(cases: Iterable[GuardrailCase], detector: Detector) -> dict[str, Any]:
    """Precision, recall, F1 (injection = positive), the false-block rate on benign cases,
    the same per channel, and the ids of every miss and false block."""
    decisions = [(case, _flagged(detector, case.text)) for case in cases]
    if not decisions:
        raise ValueError("cases is empty: nothing to evaluate")
    result = _detector_scores(decisions)
    result["per_channel"] = {
        channel: _detector_scores([d for d in decisions if d[0].channel == channel])
        for channel in CHANNELS
        if any(d[0].channel == channel for d in decisions)
    }
    result["missed"] = [c.id for c, flag in decisions if c.label == "injection" and not flag]
    result["false_block_ids"] = [c.id for c, flag in decisions if c.label != "injection" and flag]
    return result


def choose_threshold(
    cases: Sequence[GuardrailCase], grid: Sequence[float] | None = None
) -> tuple[float, dict[float, float]]:
    """The threshold with the best F1 of `score_injection` on `cases` (pass the DEV split),
    ties to the HIGHER threshold (fewer false blocks at equal F1), and the F1 of each."""
    if not cases:
        raise ValueError("cases is empty: a threshold needs labelled cases")
    grid = [round(0.05 * i, 2) for i in range(1, 20)] if grid is None else list(grid)
    if not grid or any(not 0.0 <= t <= 1.0 for t in grid):
        raise ValueError(f"grid must be non-empty thresholds in [0, 1], got {grid}")
    scored = [(case, score_injection(case.text)[0]) for case in cases]
    f1 = {
        float(t): _detector_scores([(case, score >= t) for case, score in scored])["f1"]
        for t in grid
    }
    best = max(sorted(f1, reverse=True), key=lambda t: f1[t])  # max keeps the first = highest
    return best, f1


def expected_spans(case: GuardrailCase) -> list[Finding]:
    """The case's listed personal data as findings with offsets: a text listed n times takes
    its first n occurrences, in order."""
    spans, taken = [], {}
    for span in case.pii:
        start = taken.get(span.text, -1)
        start = case.text.index(span.text, start + 1)
        taken[span.text] = start
        spans.append(Finding(span.kind, start, start + len(span.text), span.text, 1.0))
    return spans


def evaluate_pii(
    cases: Iterable[GuardrailCase], kinds: Sequence[str] = ALL_KINDS
) -> dict[str, Any]:
    """Per kind and overall (micro): tp, fp, fn, precision, recall, F1 on exact spans, plus
    every error as (case id, kind, text, "missed" | "spurious")."""
    counts = {kind: [0, 0, 0] for kind in kinds}
    errors: list[tuple[str, str, str, str]] = []
    n = 0
    for case in cases:
        n += 1
        expected = {(f.kind, f.start, f.end): f.text for f in expected_spans(case)}
        found = {(f.kind, f.start, f.end): f.text for f in find_pii(case.text, kinds)}
        for key in expected.keys() | found.keys():
            if key[0] not in counts:
                continue
            if key in expected and key in found:
                counts[key[0]][0] += 1
            elif key in found:
                counts[key[0]][1] += 1
                errors.append((case.id, key[0], found[key], "spurious"))
            else:
                counts[key[0]][2] += 1
                errors.append((case.id, key[0], expected[key], "missed"))
    if n == 0:
        raise ValueError("cases is empty: nothing to evaluate")
    per_kind = {kind: _prf(*values) for kind, values in counts.items()}
    totals = [sum(values[i] for values in counts.values()) for i in range(3)]
    return {"n": n, "per_kind": per_kind, "micro": _prf(*totals), "errors": sorted(errors)}
