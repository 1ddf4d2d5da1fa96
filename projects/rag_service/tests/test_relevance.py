"""The "I don't know" gate: the threshold chooser, its evaluation, the off-topic question file,
and (slow) MiniLM scoring an on-topic and an off-topic question on either side of the default."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from rag_service.corpus.chunking import chunk_corpus
from rag_service.datasets.offtopic import (
    KINDS,
    OffTopicFileError,
    load_offtopic_questions,
)
from rag_service.datasets.pydoc import load_questions
from rag_service.relevance import (
    DEFAULT_IDK_THRESHOLD,
    choose_idk_threshold,
    evaluate_idk_threshold,
    should_abstain,
    top_scores,
)
from rag_service.retrieval import LexicalRetriever, TextDocument


# -- choose_idk_threshold ----------------------------------------------------------------------
def test_choose_by_hand():
    """20 in-domain scores 0.05..1.0: a 5 % budget allows 1 refusal, so the threshold is the
    2nd smallest score (0.10), which refuses exactly 0.05; off-topic below it are caught."""
    in_domain = [round(0.05 * i, 2) for i in range(1, 21)]
    off_topic = [0.01, 0.04, 0.07, 0.12, 0.9]
    chosen = choose_idk_threshold(in_domain, off_topic, max_false_idk=0.05)
    assert chosen.threshold == pytest.approx(0.10)
    assert chosen.false_idk_rate == pytest.approx(1 / 20)
    assert chosen.catch_rate == pytest.approx(3 / 5)  # 0.01, 0.04, 0.07 < 0.10
    assert (chosen.in_domain, chosen.off_topic, chosen.max_false_idk) == (20, 5, 0.05)
    # a 10 % budget allows 2: the third smallest score
    assert choose_idk_threshold(in_domain, off_topic, 0.10).threshold == pytest.approx(0.15)
    # a zero budget: the lowest in-domain score, which refuses nothing (equal passes)
    zero = choose_idk_threshold(in_domain, off_topic, 0.0)
    assert zero.threshold == pytest.approx(0.05) and zero.false_idk_rate == 0.0


def test_ties_at_the_threshold_are_answered():
    """Three in-domain questions tie at 0.3; refusing is strictly below, so 0.3 refuses none."""
    chosen = choose_idk_threshold([0.3, 0.3, 0.3, 0.8], [0.1, 0.3], max_false_idk=0.25)
    assert chosen.threshold == 0.3
    assert chosen.false_idk_rate == 0.0
    assert chosen.catch_rate == 0.5  # 0.1 caught, 0.3 answered
    assert should_abstain(0.2999, 0.3) and not should_abstain(0.3, 0.3)


def test_choice_is_the_highest_within_budget_by_brute_force():
    """Random scores: the chosen threshold meets the budget, and every higher candidate (each
    larger observed score, and the threshold nudged up) breaks it."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        in_domain = np.round(rng.normal(0.55, 0.1, n), 2)  # rounded: ties happen
        off_topic = rng.normal(0.3, 0.1, 30)
        budget = float(rng.choice([0.0, 0.02, 0.05, 0.1, 0.3]))
        chosen = choose_idk_threshold(in_domain, off_topic, budget)
        assert np.mean(in_domain < chosen.threshold) <= budget + 1e-12
        higher = [s for s in in_domain if s > chosen.threshold] + [chosen.threshold + 1e-9]
        for candidate in higher:
            assert np.mean(in_domain < candidate) > budget
        assert chosen.catch_rate == np.mean(off_topic < chosen.threshold)


def test_evaluate_counts():
    result = evaluate_idk_threshold(0.5, [0.2, 0.5, 0.7, 0.49], [0.1, 0.6, 0.5])
    assert (result.false_idk, result.in_domain, result.caught, result.off_topic) == (2, 4, 1, 3)
    assert result.false_idk_rate == 0.5
    assert result.catch_rate == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("in_domain", "off_topic", "budget", "match"),
    [
        ([], [0.1], 0.05, "in_domain_scores"),
        ([0.5], [], 0.05, "off_topic_scores"),
        ([0.5, float("nan")], [0.1], 0.05, "NaN"),
        ([[0.5, 0.6]], [0.1], 0.05, "1-d"),
        (["high"], [0.1], 0.05, "numbers"),
        ([0.5], [0.1], 1.0, "max_false_idk"),
        ([0.5], [0.1], -0.1, "max_false_idk"),
        ([0.5], [0.1], True, "max_false_idk"),
        ([float("-inf"), 0.2], [0.1], 0.0, "not finite"),
    ],
)
def test_choose_rejects_bad_input(in_domain, off_topic, budget, match):
    with pytest.raises(ValueError, match=match):
        choose_idk_threshold(in_domain, off_topic, budget)


def test_evaluate_and_abstain_reject_bad_thresholds():
    with pytest.raises(ValueError, match="threshold"):
        evaluate_idk_threshold(float("nan"), [0.5], [0.1])
    with pytest.raises(ValueError, match="threshold"):
        evaluate_idk_threshold("0.4", [0.5], [0.1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        should_abstain(0.5, True)  # type: ignore[arg-type]


# -- top_scores --------------------------------------------------------------------------------
def test_top_scores_are_the_best_chunk_and_no_hit_is_minus_infinity():
    """With a real (BM25) retriever: each query's score is its first chunk hit's; a query that
    shares no word with the corpus has no hit at all and scores -inf, so it is always refused."""
    docs = [
        TextDocument("a", "Sorting lists with sorted and list.sort, stable and keyed."),
        TextDocument("b", "Dictionaries map hashable keys to values."),
    ]
    retriever = LexicalRetriever(chunk_corpus(docs, "structure"))
    queries = ["sort a list", "dictionary keys", "zzz qqq"]
    scores = top_scores(retriever, queries)
    hits = retriever.chunk_hits(queries, 1)
    assert scores[0] == hits[0][0][1] and scores[1] == hits[1][0][1]
    assert scores[0] > 0 and scores[1] > 0
    assert scores[2] == -np.inf and should_abstain(scores[2], -1e9)
    with pytest.raises(ValueError, match="single str"):
        top_scores(retriever, "sort a list")
    with pytest.raises(ValueError, match="empty"):
        top_scores(retriever, [])


# -- the off-topic question file ---------------------------------------------------------------
def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def test_offtopic_file_loads_with_unique_ids_and_stratified_splits():
    questions = load_offtopic_questions()
    assert len(questions) == 120
    assert len({q.id for q in questions}) == len(questions)
    assert len({_normal(q.query) for q in questions}) == len(questions)
    per_kind = Counter(q.kind for q in questions)
    assert set(per_kind) == set(KINDS)
    for kind in KINDS:
        splits = Counter(q.split for q in questions if q.kind == kind)
        assert abs(splits["dev"] - splits["test"]) <= 1, (kind, splits)
    dev, test = load_offtopic_questions("dev"), load_offtopic_questions("test")
    assert len(dev) + len(test) == len(questions)
    assert not {_normal(q.query) for q in dev} & {_normal(q.query) for q in test}


def test_no_offtopic_question_is_a_pydoc_question():
    pydoc = {_normal(q.query) for q in load_questions()}
    clashes = [q.query for q in load_offtopic_questions() if _normal(q.query) in pydoc]
    assert clashes == []


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (['{"id": "x", "query": "q", "kind": "tool"}'], "fields"),
        (['{"id": "x", "query": "q", "kind": "poetry", "split": "dev"}'], "kind"),
        (['{"id": "x", "query": "q", "kind": "tool", "split": "train"}'], "split"),
        (['{"id": "x", "query": " ", "kind": "tool", "split": "dev"}'], "query"),
        (
            [
                '{"id": "x", "query": "q one", "kind": "tool", "split": "dev"}',
                '{"id": "x", "query": "q two", "kind": "tool", "split": "dev"}',
            ],
            "duplicate id",
        ),
        (
            [
                '{"id": "x", "query": "Q  one", "kind": "tool", "split": "dev"}',
                '{"id": "y", "query": "q one", "kind": "tool", "split": "test"}',
            ],
            "same query",
        ),
        (["not json"], "not valid JSON"),
        ([], "no questions"),
    ],
)
def test_offtopic_file_errors_name_the_problem(tmp_path, lines, match):
    path = tmp_path / "offtopic.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(OffTopicFileError, match=match):
        load_offtopic_questions(path=path)


def test_offtopic_split_argument_is_checked(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_offtopic_questions("train")
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"id": "o", "query": "q", "kind": "general", "split": "test"}))
    assert [q.id for q in load_offtopic_questions("test", path=path)] == ["o"]
    assert load_offtopic_questions("dev", path=path) == []


# -- MiniLM on real text -----------------------------------------------------------------------
@pytest.mark.slow
def test_minilm_scores_on_topic_above_and_off_topic_below_the_default():
    """MiniLM fp32 over three documents' chunks (the whole corpus takes ~90 s to embed): a
    clearly on-topic question clears the default threshold by a margin, a general-knowledge
    one falls short of it by a margin. Over the full corpus the on-topic score can only rise;
    the off-topic one may too, which is what `measure_idk` measures (bench), not this test."""
    from rag_service.corpus.documents import documentation_corpus
    from rag_service.embeddings.encoder import make_encoder
    from rag_service.retrieval import DenseRetriever

    wanted = {"topic:try", "api:json.dumps", "api:shutil.rmtree"}
    docs = [d for d in documentation_corpus() if d.id in wanted]
    assert len(docs) == len(wanted)
    retriever = DenseRetriever(chunk_corpus(docs, "structure"), make_encoder("fp32"))
    on_topic, off_topic = top_scores(
        retriever,
        [
            "catch two different exception types in the same except clause",
            "what is the capital of Australia",
        ],
    )
    assert on_topic >= DEFAULT_IDK_THRESHOLD + 0.1, on_topic
    assert off_topic < DEFAULT_IDK_THRESHOLD - 0.1, off_topic
