"""Checkpoint hints agree with the book and with the scaffold docstrings.

A hint is the shortest thing a stuck learner reads. When it writes a formula in other notation
than the chapter and the docstring (``X^T (p - y) / n`` where both say ``/ S``, the sum of the
sample weights), or recommends what the chapter warns against (cumulative sums of ``y^2``), it
sends the learner the wrong way. These tests hold each hint to the same formula text as the
docstring of a function that holds the checkpoint's solution region and as the book section the
checkpoint names, and check that no hint recommends a method its book section warns against.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache

import pytest

from learn import REPO_ROOT
from learn.manifest import Checkpoint, load_manifest
from learn.regions import find_regions
from learn.scaffold import iter_source_files

BOOK = REPO_ROOT / "book"
LABEL = re.compile(r"^\((?P<label>[^)]+)\)=\s*$", re.MULTILINE)
# The rest of a clause after a negation: "never from factorials" recommends nothing.
NEGATED_CLAUSE = re.compile(r"\b(never|not|avoid|instead of|rather than)\b[^;,.()]*", re.I)


@dataclass(frozen=True)
class SharedFormula:
    """A formula that a checkpoint's hint, docstring and book section must all state."""

    checkpoint: str
    text: str  # as the hint and a docstring write it (backticks and spacing aside)
    book: str  # as the book section writes it (MyST, usually LaTeX)
    section: str | None  # the book label the section starts at; None for the whole page


@dataclass(frozen=True)
class WarnedAgainst:
    """A method the book section warns against, which the checkpoint's hint must not recommend."""

    checkpoint: str
    pattern: str  # a regular expression matching a hint that recommends the method
    warning: str  # the book's warning, which must still be in the section
    section: str


SHARED_FORMULAS = (
    SharedFormula("0.1", "(n - 1) * q / 100", r"(n - 1)\,\frac{q}{100}", "phase0-percentiles"),
    SharedFormula("0.2", "q * total", "the rank of the quantile is $qN$", "phase0-histograms"),
    SharedFormula(
        "0.3",
        "B(k) = a * B(k-1) / (k + a * B(k-1))",
        r"B(k) = \frac{a\,B(k-1)}{k + a\,B(k-1)}",
        "phase0-queueing",
    ),
    SharedFormula(
        "0.4", "bad / total", r"\text{burn rate} = \frac{b / n}{1 - \text{SLO}}", "burn-rate"
    ),
    SharedFormula("0.6", "rps * utilization * 3600", r"r\,u \times 3600", "cost-per-1k"),
    SharedFormula("1.1", "exp(-|z|)", "e^{-|z|}", "phase1-loss-gradient"),
    SharedFormula("1.1", "np.logaddexp(0, z)", "np.logaddexp(0, z)", "phase1-loss-gradient"),
    SharedFormula(
        "1.1",
        "X^T (s * (sigmoid(z) - y)) / S",
        r"\frac{1}{S} X^\top \big(s \odot (\sigma(z) - y)\big)",
        "phase1-loss-gradient",
    ),
    SharedFormula("1.2", "H d = -g", r"H d = -\nabla f", "phase1-newton-step"),
    SharedFormula("1.2", "s * p * (1 - p)", r"s_i\, p_i (1 - p_i)", "phase1-newton-step"),
    SharedFormula(
        "1.3",
        "W_L W_R / W^2 * (mean_L - mean_R)^2",
        r"\frac{W_L W_R}{W^2} (\bar y_L - \bar y_R)^2",
        "phase1-split-search",
    ),
    SharedFormula(
        "1.4", "weighted class proportions", "weighted class proportions", "phase1-leaf-values"
    ),
    SharedFormula(
        "1.5",
        "midpoints between consecutive distinct values",
        "midpoints between consecutive distinct values",
        "phase1-binning",
    ),
    SharedFormula("1.6", "-G / (H + l2)", r"-\frac{G_j}{H_j + \lambda}", None),
    SharedFormula("1.7", "(x - mean) / scale", r"z = (x - \mu)/s", "phase1-feature-pipeline"),
    SharedFormula("1.8", "cumulative sum", "a cumulative sum", "phase1-cost-threshold"),
    SharedFormula("1.9", "loc joined with dots", "loc joined with dots", "phase1-predict-endpoint"),
    SharedFormula("1.10", "503 with the state", "503 with the state", "phase1-readiness"),
    SharedFormula("2.1", "(lsn, seq)", "(lsn, seq)", "phase2-apply-changes"),
    SharedFormula("2.1", "tombstone", "tombstone", "phase2-apply-changes"),
    SharedFormula(
        "2.2",
        "True where the row keeps the rule",
        "True where the row keeps the rule",
        "phase2-contract-rules",
    ),
    SharedFormula("2.2", "never NA", "never NA", "phase2-contract-rules"),
    SharedFormula("2.3", "among the feature rows", "among the feature rows", "phase2-asof-join"),
    SharedFormula(
        "2.3", "feature_ts < entity_ts - ttl", "feature_ts < entity_ts - ttl", "phase2-asof-join"
    ),
    SharedFormula("2.4", "(t - window, t]", "(t - window, t]", "phase2-rolling-rate"),
    SharedFormula("2.5", "with replacement", "with replacement", "phase2-bootstrap"),
    SharedFormula("2.5", "the whole interval", "the whole interval", "phase2-bootstrap"),
)

WARNED_AGAINST = (
    WarnedAgainst(
        "0.3",
        r"factorial|a\s*\^\s*c|a\s*\*\*\s*c",
        "The textbook form with $a^c / c!$ overflows a double",
        "phase0-queueing",
    ),
    WarnedAgainst(
        "0.5",
        r"mean of (the )?per-minute",
        "never as the mean of per-minute ratios",
        "burn-rate",
    ),
    WarnedAgainst(
        "1.2", r"np\.linalg\.inv\b|\binv\(", "rather than `np.linalg.inv`", "phase1-newton-step"
    ),
    WarnedAgainst(
        "1.3",
        r"\by\s*(\^|\*\*)\s*2|\by²|E\[y\^2\]|squares? of (the )?(y|targets?)\b",
        "loses all its digits to cancellation",
        "phase1-split-search",
    ),
    WarnedAgainst(
        "1.7",
        r"\b(all|whole|full|entire) (of )?(the )?data\b",
        "on all the data leaks information",
        "phase1-feature-pipeline",
    ),
    WarnedAgainst("1.8", r"\bon (the )?test\b", "never on test", "phase1-cost-threshold"),
    WarnedAgainst(
        "2.1",
        r"\b(forget|drop|discard|pop)s?\b[^;.]*\bkey",
        "must not simply forget the key",
        "phase2-apply-changes",
    ),
    WarnedAgainst(
        "2.2",
        r"\berror text|\berror=",
        "Give each check a name and no error",
        "phase2-contract-rules",
    ),
    WarnedAgainst("2.3", r"\bnearest\b", "never the nearest row in time", "phase2-asof-join"),
    WarnedAgainst(
        "2.4",
        r"\bsched(uled)?[ _](time|dep)",
        "never by its scheduled time",
        "phase2-rolling-rate",
    ),
    WarnedAgainst(
        "2.5",
        r"\boverlap|separate intervals",
        "never by checking whether two separate intervals overlap",
        "phase2-bootstrap",
    ),
)


def normalised(text: str) -> str:
    """Text without backticks and with single spaces: markup and line breaks do not count."""
    return " ".join(text.replace("`", "").split())


def checkpoint(cid: str) -> Checkpoint:
    """The manifest entry of `cid`; a KeyError names an id that a table above mistyped."""
    return load_manifest().checkpoint(cid)


def book_section(cid: str, label: str | None) -> str:
    """The checkpoint's book page, from ``(label)=`` to the next label (the page for None)."""
    text = (BOOK / f"{checkpoint(cid).book_doc}.md").read_text(encoding="utf-8")
    if label is None:
        return text
    starts = {m["label"]: m.start() for m in LABEL.finditer(text)}
    assert label in starts, f"checkpoint {cid}: no ({label})= in the book page"
    following = [pos for pos in starts.values() if pos > starts[label]]
    return text[starts[label] : min(following, default=len(text))]


@cache
def solution_docstrings() -> dict[str, tuple[str, ...]]:
    """Checkpoint id -> docstrings of the Python functions that hold its solution regions.

    Found as ``learn start`` finds regions, in the sources of every phase, so a module that is
    renamed or moved is still found.
    """
    found: dict[str, list[str]] = {}
    for phase in load_manifest().phases:
        for rel in iter_source_files(phase, REPO_ROOT):
            if rel.suffix != ".py":
                continue
            text = (REPO_ROOT / rel).read_text(encoding="utf-8")
            if "BEGIN SOLUTION" not in text:
                continue
            functions = [
                node
                for node in ast.walk(ast.parse(text, str(rel)))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            for region in find_regions(text, str(rel)):
                holders = [f for f in functions if f.lineno <= region.first_line <= f.end_lineno]
                innermost = max(holders, key=lambda f: f.lineno, default=None)
                if innermost is not None and (doc := ast.get_docstring(innermost)):
                    found.setdefault(region.checkpoint, []).append(doc)
    return {cid: tuple(docs) for cid, docs in found.items()}


def recommendations(hint: str) -> str:
    """The hint without its negated clauses: what it tells the learner to do."""
    return NEGATED_CLAUSE.sub("", hint)


@pytest.mark.parametrize("formula", SHARED_FORMULAS, ids=lambda f: f"{f.checkpoint}: {f.text}")
def test_hint_docstring_and_book_state_the_same_formula(formula: SharedFormula):
    cp = checkpoint(formula.checkpoint)
    assert normalised(formula.text) in normalised(cp.hint), (
        f"hint {cp.id} does not state {formula.text!r}, as its docstring and book do: {cp.hint}"
    )
    docstrings = solution_docstrings().get(cp.id, ())
    assert any(normalised(formula.text) in normalised(doc) for doc in docstrings), (
        f"no docstring of a function holding a {cp.id} solution region states {formula.text!r}"
    )
    section = book_section(cp.id, formula.section)
    assert normalised(formula.book) in normalised(section), (
        f"{cp.book_doc} ({formula.section or 'whole page'}) does not state {formula.book!r}"
    )


@pytest.mark.parametrize("warned", WARNED_AGAINST, ids=lambda w: f"{w.checkpoint}: {w.pattern}")
def test_no_hint_recommends_what_its_book_section_warns_against(warned: WarnedAgainst):
    cp = checkpoint(warned.checkpoint)
    assert normalised(warned.warning) in normalised(book_section(cp.id, warned.section)), (
        f"{cp.book_doc} no longer warns {warned.warning!r}: revisit this entry"
    )
    match = re.search(warned.pattern, recommendations(cp.hint), flags=re.IGNORECASE)
    assert match is None, (
        f"hint {cp.id} recommends {match.group(0)!r}, which {cp.book_doc} warns against "
        f"({warned.warning!r}): {cp.hint}"
    )


def test_negated_clauses_are_not_recommendations():
    """The filter the previous test relies on: negated advice is dropped, the rest is kept."""
    assert recommendations("use the recursion, never from factorials") == "use the recursion, "
    kept = recommendations("take cumulative sums of y and y^2; not the shortcut")
    assert re.search(r"y\^2", kept), kept


def test_every_python_checkpoint_has_a_documented_solution_function():
    """The formula test can only be as good as this lookup: each id must find its docstrings."""
    python_ids = {f.checkpoint for f in SHARED_FORMULAS}
    missing = sorted(python_ids - solution_docstrings().keys())
    assert missing == [], f"no documented function holds a solution region of {missing}"


def test_hints_are_plain_text():
    """Hints print as they are written: no escapes left over from YAML quoting, no markup."""
    for cp in load_manifest().all_checkpoints():
        assert cp.hint.strip(), f"checkpoint {cp.id} has an empty hint"
        assert "\\" not in cp.hint, f"hint {cp.id} contains a backslash: {cp.hint}"
        assert "`" not in cp.hint, f"hint {cp.id} contains markdown backticks: {cp.hint}"
