"""Prompt packing, citations and the grounded messages (no model: a word counter stands in)."""

from __future__ import annotations

import pytest

from rag_service.prompting import (
    SYSTEM_PROMPT,
    Passage,
    build_messages,
    extract_citations,
    format_passage,
    pack_passages,
)


def words(text: str) -> int:
    return len(text.split())


def test_packing_keeps_rank_order_skips_what_does_not_fit_and_never_cuts():
    given = [
        Passage("api:json.dumps#1", "Serialize obj to a JSON formatted str.", 0.9),
        Passage("topic:with#2", " ".join(["long"] * 50), 0.8),
        Passage("api:json.loads#3", "Deserialize s to a Python object.", 0.7),
        Passage("api:json.dumps#1", "Serialize obj to a JSON formatted str.", 0.6),
    ]
    packed = pack_passages(given, 20, words)
    assert [p.id for p in packed.included] == ["api:json.dumps#1", "api:json.loads#3"]
    assert packed.dropped == ["topic:with#2"]
    assert packed.tokens == sum(words(format_passage(p)) for p in packed.included) <= 20


@pytest.mark.parametrize("budget", [-1, 1.5, True, "10"])
def test_a_budget_that_is_not_a_count_is_refused(budget):
    with pytest.raises(ValueError, match="budget_tokens"):
        pack_passages([], budget, words)


def test_passages_must_be_passages():
    with pytest.raises(TypeError, match=r"passages\[0\]"):
        pack_passages([("a", "text")], 10, words)


def test_citations_separate_prompt_ids_from_invented_ones():
    answer = (
        "Use json.dumps [api:json.dumps#1]; it returns a str [api:json.dumps#1]. "
        "See also [made-up#9] and [api:json.loads#3]. Lists like [1, 2] are not citations."
    )
    found = extract_citations(answer, ["api:json.dumps#1", "api:json.loads#3"])
    assert found.cited == ["api:json.dumps#1", "api:json.loads#3"]
    assert found.unknown == ["made-up#9"]


def test_messages_put_rules_first_and_the_question_last():
    packed = pack_passages([Passage("a#1", "Text one."), Passage("b#2", "Text two.")], 100, words)
    messages = build_messages("  How?  ", packed)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    user = messages[1]["content"]
    assert user.index("[a#1] Text one.") < user.index("[b#2] Text two.") < user.index("How?")
    assert user.endswith("Question: How?")
    with pytest.raises(ValueError, match="question"):
        build_messages("   ", packed)
