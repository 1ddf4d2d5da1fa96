"""Answer evaluation: the cheap metrics on hand-made cases, the labels file, G-Eval's arithmetic
(with a fixed log-probability table at the model boundary), agreement, and one real judge run."""

from __future__ import annotations

import json
import math

import pytest

from rag_service.datasets.answer_labels import AnswerLabelError, load_answer_labels
from rag_service.evaluation.agreement import agreement, cheap_judge, evaluate_judge
from rag_service.evaluation.answers import (
    answer_relevance,
    content_words,
    groundedness,
    split_sentences,
    to_scale,
)
from rag_service.evaluation.geval import (
    RUBRICS,
    GEvalJudge,
    LlamaCppScoreModel,
    judge_messages,
    weighted_score,
)
from rag_service.prompting import Passage

ROTATE = Passage(
    "api:collections.deque.rotate#1",
    "collections.deque.rotate  Rotate the deque n steps to the right (default n=1). "
    "If n is negative, rotates left.",
)


# --- cheap metrics ------------------------------------------------------------------------


def test_a_supported_answer_is_grounded_and_citations_do_not_count_as_support():
    answer = (
        "Call rotate to rotate the deque n steps to the right [api:collections.deque.rotate#1]."
    )
    result = groundedness(answer, [ROTATE])
    assert result.score == 1.0 and len(result.sentences) == 1
    assert "api" not in content_words(result.sentences[0].sentence.split("[")[0])


def test_an_unsupported_sentence_lowers_groundedness_and_is_reported():
    answer = (
        "Rotate the deque n steps to the right. "
        "It is implemented with a doubly linked list of memory blocks written in C."
    )
    result = groundedness(answer, [ROTATE])
    assert result.score == 0.5
    assert result.unsupported == ["It is implemented with a doubly linked list of memory blocks "
                                  "written in C."]  # fmt: skip


def test_repeated_sentences_count_once_and_filler_is_no_claim():
    looped = "The answer is:\n\n" * 5 + "Rotate the deque to the right.\n" * 4
    result = groundedness(looped, [ROTATE])
    assert [s.sentence for s in result.sentences] == ["Rotate the deque to the right."]
    assert groundedness("The answer is:\n\nThe answer is:", [ROTATE]).score == 0.0


def test_nothing_is_supported_without_passages():
    assert groundedness("Rotate the deque to the right.", []).score == 0.0


def test_i_dont_know_is_grounded_but_not_relevant():
    grounded = groundedness("I don't know.", [ROTATE])
    relevant = answer_relevance("rotate a deque", " I don't know. ")
    assert (grounded.score, grounded.abstained) == (1.0, True)
    assert (relevant.score, relevant.abstained) == (0.0, True)


def test_overlap_relevance_rewards_answers_about_the_question():
    on = answer_relevance("rotate elements of a deque", "Use deque.rotate to rotate elements.")
    off = answer_relevance("rotate elements of a deque", "Flask and Django are web frameworks.")
    assert on.score == 1.0 and off.score == 0.0 and on.method == "overlap"


def test_sentences_split_on_punctuation_lines_and_code_fences():
    text = "First one. Second one!\n```python\nx = 1\n```\nThird"
    assert split_sentences(text) == ["First one.", "Second one!", "python", "x = 1", "Third"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: groundedness(3, [ROTATE]), "answer"),
        (lambda: groundedness("x", "a passage"), "cited_passages"),
        (lambda: groundedness("x", [3]), r"cited_passages\[0\]"),
        (lambda: groundedness("x", [ROTATE], threshold=0), "threshold"),
        (lambda: answer_relevance("  ", "x"), "question"),
        (lambda: to_scale(1.5), "value"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(call, field):
    with pytest.raises(ValueError, match=field):
        call()


def test_unit_scores_map_linearly_onto_the_label_scale():
    assert [to_scale(v) for v in (0.0, 0.24, 0.5, 0.76, 1.0)] == [1, 2, 3, 4, 5]


# --- labels -------------------------------------------------------------------------------


def test_shipped_labels_load_and_cover_the_scale():
    labels = load_answer_labels()
    assert 40 <= len(labels) <= 60 + 10
    assert len({label.id for label in labels}) == len(labels)
    assert {label.grounded for label in labels} == {1, 2, 3, 4, 5}
    assert {label.relevant for label in labels} >= {1, 2, 3, 5}
    assert all(label.passages and label.reason for label in labels)
    assert {label.source for label in labels} == {"smollm2-135m-q4_1", "written"}


def _write(tmp_path, record):
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


GOOD = {
    "id": "a", "question_id": "q1", "question": "q?", "answer": "x", "source": "written",
    "passages": [{"id": "p", "text": "t"}], "grounded": 3, "relevant": 4, "reason": "r",
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"grounded": 6}, "grounded"),
        ({"relevant": True}, "relevant"),
        ({"source": "gpt"}, "source"),
        ({"passages": []}, "passages"),
        ({"passages": [{"id": "p"}]}, r"passages\[0\]"),
        ({"answer": " "}, "answer"),
        ({"extra": 1}, "unexpected"),
    ],
)
def test_malformed_labels_are_refused_naming_the_field(tmp_path, change, field):
    assert load_answer_labels(_write(tmp_path, GOOD))[0].grounded == 3
    with pytest.raises(AnswerLabelError, match=field):
        load_answer_labels(_write(tmp_path, {**GOOD, **change}))


# --- G-Eval arithmetic --------------------------------------------------------------------


def test_weighted_score_renormalises_over_score_tokens_and_sums_duplicates():
    logprobs = {"The": math.log(0.5), "4": math.log(0.2), " 4": math.log(0.1), "2": math.log(0.1)}
    result = weighted_score(logprobs, "relevance")
    assert result.method == "weighted" and not result.fallback
    assert result.coverage == pytest.approx(0.4)
    assert result.distribution[4] == pytest.approx(0.75) and result.distribution[2] == 0.25
    assert sum(result.distribution.values()) == pytest.approx(1.0)
    assert result.score == pytest.approx(4 * 0.75 + 2 * 0.25)


def test_argmax_fallback_and_no_score_are_flagged():
    fallback = weighted_score({"The": -0.1, "4/5": -2.0, "3.": -3.0})
    assert (fallback.score, fallback.method, fallback.fallback) == (4.0, "argmax", True)
    nothing = weighted_score({"The": -0.1, "12": -1.0})
    assert (nothing.score, nothing.method, nothing.distribution) == (None, "none", {})


def test_logprobs_must_be_log_probabilities():
    with pytest.raises(ValueError, match="logprobs"):
        weighted_score({"3": 0.5})


class TableModel:
    """A fixed first-token distribution per criterion: the model boundary, nothing else."""

    def __init__(self, table):
        self.table = table
        self.prompts = []

    def score_logprobs(self, messages):
        self.prompts.append(messages[-1]["content"])
        name = next(c for c in self.table if RUBRICS[c].name in messages[-1]["content"])
        return self.table[name]


def test_judge_fills_one_form_per_criterion_and_shows_sources_only_for_groundedness():
    model = TableModel({"groundedness": {"5": -0.1}, "relevance": {"2": -0.3, "3": -0.3}})
    scores = GEvalJudge(model).score("rotate a deque", "Use rotate.", [ROTATE])
    assert scores["groundedness"].score == 5.0 and scores["relevance"].score == 2.5
    grounded_prompt, relevance_prompt = model.prompts
    assert ROTATE.id in grounded_prompt and ROTATE.id not in relevance_prompt
    assert grounded_prompt.endswith("score (1-5):") and relevance_prompt.endswith("score (1-5):")


def test_judge_inputs_are_checked():
    with pytest.raises(ValueError, match="criterion"):
        judge_messages("fluency", "q", "a")
    with pytest.raises(ValueError, match="criteria"):
        GEvalJudge(TableModel({}), criteria=("fluency",))


# --- agreement ----------------------------------------------------------------------------


def test_agreement_is_perfect_for_a_copy_and_counts_unscored_items():
    result = agreement([1, 2, 3, 5], [1.2, 2.0, 3.4, None], round)
    assert result.n == 3 and result.unscored == 1
    assert result.spearman == pytest.approx(1.0) and result.kendall == pytest.approx(1.0)
    assert result.exact == 1.0 and result.within_one == 1.0
    reversed_ = agreement([1, 2, 3], [3.0, 2.0, 1.0], round)
    assert reversed_.spearman == pytest.approx(-1.0) and reversed_.exact == pytest.approx(1 / 3)


def test_cheap_metrics_agree_with_the_labels_better_than_chance():
    """Measured, not assumed: on the shipped labels the deterministic metrics rank answers in
    the labels' order more often than not (rho > 0.3 for both criteria)."""
    report = evaluate_judge(load_answer_labels(), cheap_judge(), on_unit_scale=True)
    for criterion in ("groundedness", "relevance"):
        assert report["criteria"][criterion]["all"]["spearman"] > 0.3


# --- the real judge -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_real_judge_gives_a_distribution_and_a_score_in_range():
    from rag_service.generation.llamacpp import LlamaCppGenerator

    # Relevance only: its prompt has no sources (~300 tokens); a groundedness prompt is ~900
    # tokens even for the shortest item, about 10 s of prompt reading on a busy 2-core machine.
    # The grounded prompt's construction is unit-tested above with a fixed table.
    labels = load_answer_labels()[:2]
    generator = LlamaCppGenerator(context_tokens=2048, logprobs=True)
    try:
        model = LlamaCppScoreModel(generator, top_k=20)
        judge = GEvalJudge(model, criteria=("relevance",))
        for label in labels:
            result = judge.score(label.question, label.answer, label.passages)["relevance"]
            assert result.method == "weighted"
            assert 1.0 <= result.score <= 5.0
            assert sum(result.distribution.values()) == pytest.approx(1.0)
            assert 0.0 < result.coverage <= 1.0
    finally:
        generator.close()
